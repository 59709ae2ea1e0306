/**
 * Celeriac tasks used by the interop and worker tests. Broker and backend
 * come from the worker's --broker / --backend flags.
 */

import type { Redis } from "ioredis";
import { Celery, group } from "../../mod.ts";

export const app = new Celery();

export const add = app.task("tasks.add", (a: number, b: number) => a + b);
export const mul = app.task("tasks.mul", { params: ["x", "y"] }, (x: number, y: number) => x * y);
export const echo = app.task("tasks.echo", (...args: unknown[]) => args);
export const greet = app.task(
  "tasks.greet",
  (name: string, greeting = "hello") => `${greeting}, ${name}`,
);
export const fail = app.task("tasks.fail", (why: string): never => {
  const err = new Error(why);
  err.name = "ValueError";
  throw err;
});

/** An error class that leaves `name` as "Error", as most JavaScript error classes do. */
class InsufficientFunds extends Error {}

/** Fails with InsufficientFunds when `amount` exceeds `balance`. */
export const withdraw = app.task("tasks.withdraw", (balance: number, amount: number) => {
  if (amount > balance) throw new InsufficientFunds(`${amount} > ${balance}`);
  return balance - amount;
});

/** Sleeps, ignoring its AbortSignal: for time-limit tests. */
export const nap = app.task("tasks.nap", async (seconds: number) => {
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return seconds;
});

/**
 * Runs until a file exists at `path`, then returns its text: a task that
 * stays STARTED until the test writes the file (looked for every 20 ms).
 * Returns null when the worker aborts it (shutdown, terminate).
 */
export const hold = app.task("tasks.hold", { bind: true }, async (ctx, path: string) => {
  while (!ctx.signal.aborted) {
    try {
      return await Deno.readTextFile(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return null;
});

let markers: Redis | null = null;

/**
 * The marker tasks' Redis connection, opened on first use: ioredis is
 * imported then, not by every worker that loads this app (and each of its Web
 * Workers), most of which never run such a task.
 */
async function markerRedis(): Promise<Redis> {
  if (markers) return markers;
  const { Redis } = await import("ioredis");
  return markers ??= new Redis(Deno.env.get("INTEROP_MARKER_REDIS") ?? "redis://127.0.0.1:6379/0");
}

/**
 * Shared-queue task: records that Celeriac ran it in a Redis list (same as
 * the Python twin). It sleeps only on its first attempt, so that a crash test
 * can kill the worker mid-task and see the restored copy finish quickly.
 */
export const record = app.task(
  "tasks.record",
  { acksLate: true, params: ["n", "marker_key", "sleep_s"] },
  async (n: number, markerKey: string, sleepS: number = 0) => {
    const redis = await markerRedis();
    const attempt = await redis.rpush(`${markerKey}:started`, `ts:${n}`);
    if (sleepS && attempt === 1) await new Promise((r) => setTimeout(r, sleepS * 1000));
    await redis.rpush(markerKey, `ts:${n}`);
    return `ts:${n}`;
  },
);
export const sleep = app.task(
  "tasks.sleep",
  { bind: true },
  (ctx, seconds: number) =>
    new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve("slept"), seconds * 1000);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve("stopped");
      });
    }),
);

async function mark(n: number, key: string, ms: number): Promise<number> {
  const redis = await markerRedis();
  await redis.rpush(`${key}:started`, String(n));
  await new Promise((r) => setTimeout(r, ms));
  await redis.rpush(key, String(n));
  return n;
}

/** Records its start and its end in Redis lists (early acknowledgement). */
export const markEarly = app.task("tasks.mark", mark);
/** Records its start and its end in Redis lists (late acknowledgement). */
export const markLate = app.task("tasks.mark_late", { acksLate: true }, mark);

class KeyError extends Error {
  override name = "KeyError";
}

/** Retries twice (1 s apart would be slow: 0.2 s), then returns how many retries it took. */
export const retryTwice = app.task("tasks.retry_twice", { bind: true }, (ctx, n: number) => {
  if (ctx.retries < 2) throw ctx.retry({ countdown: 0.2, exc: new KeyError("transient") });
  return { n, retries: ctx.retries };
});

/** Always retries; fails with MaxRetriesExceededError on its second attempt. */
export const alwaysRetry = app.task("tasks.always_retry", { bind: true, maxRetries: 1 }, (ctx) => {
  throw ctx.retry({ countdown: 0.1 });
});

/** Chord body for the canvas interop tests. */
export const tsum = app.task("tasks.tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
/** Replaces itself (Celery's `self.replace`) with `tasks.add(n, 100)`. */
export const byTask = app.task(
  "tasks.by_task",
  { bind: true },
  (ctx, n: number) => ctx.replace(add.s(n, 100)),
);
/** Replaces itself with a group: its result is the group's list. */
export const byGroup = app.task(
  "tasks.by_group",
  { bind: true },
  (ctx, n: number) => ctx.replace(group([add.s(n, 1), add.s(n, 2)])),
);
/** A chord header member that says which worker ran it. */
export const who = app.task("tasks.who", (n: number) => `ts:${n}`);
/** A chord body that records each call (to count them) in a Redis list. */
export const collectItems = app.task(
  "tasks.collect",
  async (items: string[], markerKey: string) => {
    const redis = await markerRedis();
    await redis.rpush(markerKey, JSON.stringify({ by: "ts", items }));
    return items.length;
  },
);
