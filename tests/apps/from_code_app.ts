/** The app of from_code_program.ts: its broker from the environment. */

import { Celery } from "../../mod.ts";

export const app = new Celery({
  broker: Deno.env.get("FROM_CODE_BROKER"),
  backend: null,
});

export const add = app.task("t.add", (a: number, b: number) => a + b);
