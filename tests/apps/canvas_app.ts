/** Tasks for the canvas tests (tests/canvas_worker_test.ts, the workflow example's twin). */

import { Celery, chain, chord, group } from "../../mod.ts";

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
/**
 * Sends a group whose first member is a chain, then a chord: its meta lists
 * each once, a group of all its members (a chord by its header), as Celery
 * records them.
 */
export const fanOutChains = app.task("c.fan_out_chains", async () => {
  const members = () => [chain(add.s(1, 1), add.s(1)), add.s(5, 5)];
  const g = await group(members()).applyAsync();
  const c = await chord(members(), tsum.s()).applyAsync();
  return [g.id, c.parent!.id];
});
/** Sends a task, then two in one batch (`delayMany`): its meta lists the three, in order. */
export const sendsTasks = app.task("c.sends_tasks", async () => {
  const one = await add.delay(1, 1);
  const many = await add.delayMany([[2, 2], [3, 3]]);
  return [one.id, ...many.map((r) => r.id)];
});
/** Returns the stamp headers it received (Celery ≥ 5.3 canvas stamping). */
export const stamps = app.task("c.stamps", { bind: true }, (ctx, _prev: unknown) => ({
  stamped_headers: ctx.headers.stamped_headers ?? null,
  stamps: ctx.headers.stamps ?? null,
  on: ctx.headers.on ?? null,
}));
/** The `replaced_task_nesting` header it received (0 when absent). */
export const nesting = app.task(
  "c.nesting",
  { bind: true },
  (ctx) => Number(ctx.headers.replaced_task_nesting ?? 0),
);
/** Replaces itself with {@link nesting}: shows the nesting the replacement carries. */
export const byNesting = app.task(
  "c.by_nesting",
  { bind: true },
  (ctx) => ctx.replace(nesting.s()),
);
/** Returns its argument (a chord body that shows its header's results in order). */
export const ident = app.task("c.ident", (xs: unknown) => xs);
/** Replaces itself (Celery's `self.replace`) with a task, a chain or a group. */
export const byTask = app.task(
  "c.by_task",
  { bind: true },
  (ctx, n: number) => ctx.replace(add.s(n, 100)),
);
export const byChain = app.task(
  "c.by_chain",
  { bind: true },
  (ctx, n: number) => ctx.replace(chain(add.s(n, 1), add.s(10))),
);
export const byGroup = app.task(
  "c.by_group",
  { bind: true },
  (ctx, n: number) => ctx.replace(group([add.s(n, 1), add.s(n, 2)])),
);
/** Calls replace() without awaiting it and returns: it is replaced all the same. */
export const byTaskNoAwait = app.task("c.by_task_no_await", { bind: true }, (ctx, n: number) => {
  ctx.replace(add.s(n, 7));
  return -1;
});
/** Catches the replace signal and throws another error: it is replaced all the same. */
export const byTaskRethrown = app.task(
  "c.by_task_rethrown",
  { bind: true },
  async (ctx, n: number) => {
    try {
      return await ctx.replace(add.s(n, 200));
    } catch (e) {
      throw new Error(`wrapped: ${e}`);
    }
  },
);
/** Catches the replace signal and retries past its limit: it is replaced, not failed. */
export const byTaskRetried = app.task(
  "c.by_task_retried",
  { bind: true },
  async (ctx, n: number) => {
    try {
      return await ctx.replace(add.s(n, 300));
    } catch {
      return ctx.retry({ countdown: 0, maxRetries: 0 });
    }
  },
);
