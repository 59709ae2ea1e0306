/** Tasks for the routing and annotation tests: annotations set in the app's configuration. */

import { Celery } from "../../mod.ts";

export const app = new Celery({
  taskAnnotations: [
    { "r.sleep": { timeLimit: 1 } },
    (name) => name === "r.add" ? { priority: 3 } : null,
  ],
});

export const add = app.task("r.add", (a: number, b: number) => a + b);
export const sleep = app.task("r.sleep", async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});
export const mul = app.task("r.mul", (a: number, b: number) => a * b);
