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
/** A task with its own priority, time limit and serializer: the defaults of its signatures' sends. */
export const urgent = app.task(
  "r.urgent",
  { priority: 7, timeLimit: 30, serializer: "msgpack" },
  (a: number, b: number) => a + b,
);
/** Fails with a ValueError. */
export const fail = app.task("r.fail", (why: string): never => {
  throw Object.assign(new Error(why), { name: "ValueError" });
});
/** An errback: gets the failed task's id. */
export const noted = app.task("r.noted", (failedId: string) => `noted ${failedId}`);
