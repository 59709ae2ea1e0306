/**
 * Example tasks, served by `deno run -A worker.ts --app ./examples/tasks.ts`.
 *
 * Broker and backend come from CELERY_BROKER_URL / CELERY_RESULT_BACKEND
 * (or the worker's --broker / --backend flags); without them, the embedded
 * Deno KV store in .celeriac/ is used.
 */

import { Celery } from "../mod.ts";

export const app = new Celery();

/** Adds two numbers. */
export const add = app.task("tasks.add", (a: number, b: number) => a + b);

/** Multiplies; also callable with Python keyword arguments `x=`, `y=`. */
export const mul = app.task("tasks.mul", { params: ["x", "y"] }, (x: number, y: number) => x * y);

/** Fails on purpose: Python sees `builtins.ValueError`. */
export const fail = app.task("tasks.fail", (why: string): never => {
  const err = new Error(why);
  err.name = "ValueError";
  throw err;
});

/** Waits, then answers; reads its context (id, retries, headers, abort signal). */
export const sleep = app.task(
  "tasks.sleep",
  { bind: true },
  async (ctx, ms: number) => {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(t);
        reject(ctx.signal.reason);
      }, { once: true });
    });
    return { id: ctx.id, slept: ms, retries: ctx.retries };
  },
);

/** Echoes its arguments back: shows how values cross the wire. */
export const echo = app.task("tasks.echo", (...args: unknown[]) => args);
