/** The app of from_code_program.ts: its broker and queue from the environment. */

import { Celery } from "../../mod.ts";

export const app = new Celery({
  broker: Deno.env.get("FROM_CODE_BROKER"),
  backend: null,
  defaultQueue: Deno.env.get("FROM_CODE_QUEUE") ?? "celery",
});

export const add = app.task("t.add", (a: number, b: number) => a + b);
