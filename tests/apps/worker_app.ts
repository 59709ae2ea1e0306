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
/** Runs (STARTED stored) until the file at `path` exists; returns "done". */
export const gated = app.task("t.gated", { trackStarted: true }, async (path: string) => {
  while (!(await Deno.stat(path).then(() => true, () => false))) {
    await new Promise((r) => setTimeout(r, 10));
  }
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
export const size = app.task("t.size", (b: Uint8Array) => b.byteLength);
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

class KeyError extends Error {
  override name = "KeyError";
}

export const retryTwice = app.task("t.retry_twice", { bind: true }, (ctx, n: number) => {
  if (ctx.retries < 2) throw ctx.retry({ countdown: 0.1, exc: new KeyError("transient") });
  return {
    n,
    retries: ctx.retries,
    parentId: ctx.parentId,
    expires: ctx.expires?.toISOString() ?? null,
    custom: ctx.headers["x-custom"] ?? null,
  };
});
export const alwaysRetry = app.task(
  "t.always_retry",
  { bind: true, maxRetries: 1 },
  (ctx, _n: number) => {
    ctx.retry({ countdown: 0.05 });
  },
);
export const retryGivesUp = app.task("t.retry_gives_up", { bind: true }, (ctx) => {
  throw ctx.retry({ countdown: 0, maxRetries: 0, exc: new KeyError("gave up") });
});
export const retryArgs = app.task("t.retry_args", { bind: true }, (ctx, n: number) => {
  if (n < 3) ctx.retry({ args: [n + 1], countdown: 0 });
  return n;
});
export const retrySwallowed = app.task("t.retry_swallowed", { bind: true }, (ctx) => {
  if (ctx.retries > 0) return "second run";
  try {
    ctx.retry({ countdown: 0 });
  } catch {
    // swallowing the signal does not cancel the retry
  }
  return "first run";
});
export const autoretry = app.task(
  "t.autoretry",
  {
    autoretryFor: [TypeError],
    maxRetries: 2,
    retryKwargs: { countdown: 0.05 },
    acksLate: true,
  },
  (why: string): never => {
    throw new TypeError(why);
  },
);
