/** Tasks for the canvas tests (tests/canvas_worker_test.ts, the workflow example's twin). */

import { Celery, group } from "../../mod.ts";

export const app = new Celery();

export const add = app.task("c.add", (a: number, b: number) => a + b);
export const mul = app.task("c.mul", (a: number, b: number) => a * b);
export const tsum = app.task("c.tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
export const fail = app.task("c.fail", (msg: string): never => {
  const err = new Error(msg);
  err.name = "ValueError";
  throw err;
});
/** Sends a group from inside a task: its meta lists the group as a child. */
export const fanOut = app.task("c.fan_out", async (n: number) => {
  const g = await group(Array.from({ length: n }, (_, i) => add.s(i, i))).applyAsync();
  return g.id;
});
/** Returns the stamp headers it received (Celery ≥ 5.3 canvas stamping). */
export const stamps = app.task("c.stamps", { bind: true }, (ctx, _prev: unknown) => ({
  stamped_headers: ctx.headers.stamped_headers ?? null,
  stamps: ctx.headers.stamps ?? null,
  on: ctx.headers.on ?? null,
}));
