/** Tasks for the worker behaviour tests. */

import { Celery } from "../../mod.ts";

export const app = new Celery();

export const add = app.task("t.add", (a: number, b: number) => a + b);
export const fail = app.task("t.fail", (msg: string): never => {
  throw new TypeError(msg);
});
export const ctxInfo = app.task("t.ctx", { bind: true }, (ctx, tag: string) => ({
  tag,
  id: ctx.id,
  name: ctx.name,
  kwargs: ctx.kwargs,
  retries: ctx.retries,
  custom: ctx.headers["x-custom"] ?? null,
  queue: ctx.deliveryInfo.queue,
  hostname: ctx.hostname,
  aborted: ctx.signal.aborted,
}));
export const slow = app.task("t.slow", async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});
export const slowLate = app.task("t.slow_late", { acksLate: true }, async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});
export const quiet = app.task("t.quiet", { ignoreResult: true }, () => "not stored");
export const tracked = app.task("t.tracked", { trackStarted: true }, async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return "done";
});
export const crash = app.task("t.crash", () => {
  setTimeout(() => {
    throw new Error("unhandled error inside the Web Worker");
  }, 0);
  return new Promise(() => {});
});
export const spawn = app.task("t.spawn", async (n: number) => {
  const child = await add.delay(n, 1);
  return child.id;
});
export const positional = app.task("t.positional", (a: number) => a);
export const env = app.task("t.env", (name: string) => Deno.env.get(name) ?? null);
export const waitAbortable = app.task(
  "t.wait",
  { bind: true },
  (ctx, ms: number) =>
    new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve("finished"), ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve("stopped");
      });
    }),
);
