/**
 * Celeriac tasks used by the interop and worker tests. Broker and backend
 * come from the worker's --broker / --backend flags.
 */

import { Redis } from "ioredis";
import { Celery } from "../../mod.ts";

export const app = new Celery();

export const add = app.task("tasks.add", (a: number, b: number) => a + b);
export const mul = app.task("tasks.mul", { params: ["x", "y"] }, (x: number, y: number) => x * y);
export const echo = app.task("tasks.echo", (...args: unknown[]) => args);
export const fail = app.task("tasks.fail", (why: string): never => {
  const err = new Error(why);
  err.name = "ValueError";
  throw err;
});

/** Sleeps, ignoring its AbortSignal: for time-limit tests. */
export const nap = app.task("tasks.nap", async (seconds: number) => {
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return seconds;
});

let redis: Redis | null = null;

/**
 * Shared-queue task: records that Celeriac ran it in a Redis list (same as
 * the Python twin). It sleeps only on its first attempt, so that a crash test
 * can kill the worker mid-task and see the restored copy finish quickly.
 */
export const record = app.task(
  "tasks.record",
  { acksLate: true, params: ["n", "marker_key", "sleep_s"] },
  async (n: number, markerKey: string, sleepS: number = 0) => {
    redis ??= new Redis(Deno.env.get("INTEROP_MARKER_REDIS") ?? "redis://127.0.0.1:6379/0");
    const attempt = await redis.rpush(`${markerKey}:started`, `ts:${n}`);
    if (sleepS && attempt === 1) await new Promise((r) => setTimeout(r, sleepS * 1000));
    await redis.rpush(markerKey, `ts:${n}`);
    return `ts:${n}`;
  },
);
