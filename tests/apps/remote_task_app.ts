/** An app with one local task and one declared with remoteTask (tests/cli_result_task_test.ts). */

import { Celery } from "../../mod.ts";

export const app = new Celery();

export const add = app.task("local.add", (a: number, b: number) => a + b);
export const mul = app.remoteTask("py.mul");
