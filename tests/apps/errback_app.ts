/**
 * Errbacks both ways, for tests/interop_errbacks_test.ts and
 * tests/chord_errbacks_test.ts: `eb.fail` fails (`eb.add` and `eb.tsum`
 * make chords of it);
 * `eb.old` is an old-style errback (`request, exc, traceback`, called
 * in-process by the worker whose task failed; `eb.raiser` is one that
 * throws); `eb.new` is a bound
 * one-argument errback (sent as a message with the failed task's id; it
 * records its parent, root and group ids too). Both record their call in the Redis list their signature names.
 */

import { Redis } from "ioredis";
import { Celery, type ErrbackRequest } from "../../mod.ts";

export const app = new Celery();

let redis: Redis | null = null;

function connection(): Redis {
  return redis ??= new Redis(Deno.env.get("INTEROP_MARKER_REDIS") ?? "redis://127.0.0.1:6379/0");
}

async function mark(key: string, record: Record<string, unknown>): Promise<void> {
  await connection().rpush(key, JSON.stringify(record));
}

/** The state stored for a task in the Redis result backend (the worker's). */
async function stored(id: string): Promise<string> {
  const meta = await connection().get(`celery-task-meta-${id}`);
  return meta === null ? "PENDING" : JSON.parse(meta).status;
}

export const fail = app.task("eb.fail", (why: string): never => {
  const err = new Error(why);
  err.name = "ValueError";
  throw err;
});

export const add = app.task("eb.add", (a: number, b: number) => a + b);

export const tsum = app.task("eb.tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));

export const old = app.task(
  "eb.old",
  async (request: ErrbackRequest, exc: unknown, traceback: string | null, marker: string) =>
    mark(marker, {
      by: "ts",
      style: "old",
      failed: request.id,
      name: request.name,
      args: request.args,
      exc: exc instanceof Error ? `${exc.name}: ${exc.message}` : String(exc),
      traceback: typeof traceback === "string",
      stored: await stored(request.id),
      ids: [request.parentId, request.rootId, request.group],
    }),
);

/** Old-style errback that records its call, then throws `RuntimeError("errback broke")`. */
export const raiser = app.task(
  "eb.raiser",
  async (request: ErrbackRequest, _exc: unknown, _traceback: string | null, marker: string) => {
    await mark(marker, { by: "ts", style: "raiser", failed: request.id });
    const err = new Error("errback broke");
    err.name = "RuntimeError";
    throw err;
  },
);

export const fresh = app.task(
  "eb.new",
  { bind: true },
  (ctx, failed: string) =>
    mark(String(ctx.kwargs.marker_key), {
      by: "ts",
      style: "new",
      failed,
      parent: ctx.parentId,
      root: ctx.rootId,
      group: ctx.group,
    }),
);

/** Sends `eb.noop` (never consumed by the test), then fails: the failure lists it as a child. */
export const failAfterSend = app.task("eb.fail_after_send", async (why: string): Promise<never> => {
  await app.sendTask("eb.noop", [], { queue: "eb-noop-never-consumed" });
  const err = new Error(why);
  err.name = "ValueError";
  throw err;
});
