// deno-lint-ignore-file no-console
/**
 * The Redis workload: broker in db 14, Redis result backend in db 15, both
 * FLUSHDB'd before each side and at the end. Completion = `DBSIZE` of db 15
 * (nothing but result metas) reaching N.
 *
 * @module
 */

import { Redis } from "ioredis";
import {
  cleanups,
  ENQUEUE_BATCH,
  type Options,
  pythonClient,
  runSide,
  type Side,
  type SideResult,
  SIDES,
} from "./common.ts";
import { app, BENCH_QUEUE, noop } from "./tasks.ts";

/** Redis database of the broker. */
export const BROKER_DB = 14;
/** Redis database of the results. */
export const BACKEND_DB = 15;

/** The server URL with its database replaced by `db`. */
function dbUrl(server: string, db: number): string {
  const url = new URL(server);
  url.pathname = `/${db}`;
  return url.href;
}

/** Count stored metas with status SUCCESS and result 1. */
async function countSuccesses(results: Redis): Promise<number> {
  let cursor = "0";
  let ok = 0;
  do {
    const [next, keys] = await results.scan(cursor, "MATCH", "celery-task-meta-*", "COUNT", 2000);
    cursor = next;
    if (keys.length === 0) continue;
    for (const raw of await results.mget(...keys)) {
      const meta = raw ? JSON.parse(raw) : null;
      if (meta?.status === "SUCCESS" && meta.result === 1) ok++;
    }
  } while (cursor !== "0");
  return ok;
}

/**
 * Run both sides (or `--only` one) on Redis.
 *
 * @example
 * ```ts ignore
 * const { celeriac, celery } = await runRedis(opts);
 * ```
 *
 * @param opts the bench's options
 * @returns the figures of each side that ran
 */
export async function runRedis(opts: Options): Promise<Partial<Record<Side, SideResult>>> {
  const brokerUrl = dbUrl(opts.redis, BROKER_DB);
  const backendUrl = dbUrl(opts.redis, BACKEND_DB);
  const env = { CELERY_BROKER_URL: brokerUrl, CELERY_RESULT_BACKEND: backendUrl };
  app.configure({ broker: brokerUrl, backend: backendUrl });
  const broker = new Redis(brokerUrl);
  const results = new Redis(backendUrl);
  const flush = () => Promise.allSettled([broker.flushdb(), results.flushdb()]);
  cleanups.add(flush);
  const out: Partial<Record<Side, SideResult>> = {};
  try {
    const others = (await broker.client("LIST") as string).split("\n")
      .filter((l) => / db=(14|15) /.test(l)).length - 2;
    console.log(
      `Redis ${opts.redis}: db ${BROKER_DB} = broker, db ${BACKEND_DB} = results; both are FLUSHDB'd ` +
        `before each side and after the bench${
          others > 0 ? ` (WARNING: ${others} other client(s) use them)` : ""
        }.`,
    );
    for (const side of SIDES) {
      if (opts.only && opts.only !== side) continue;
      await flush();
      out[side] = await runSide(side, opts, env, {
        enqueue: async (n) => {
          if (side === "celery") {
            return ((await pythonClient(["enqueue", String(n)], env)) as { seconds: number })
              .seconds;
          }
          const start = performance.now();
          for (let sent = 0; sent < n; sent += ENQUEUE_BATCH) {
            await Promise.all(
              Array.from({ length: Math.min(ENQUEUE_BATCH, n - sent) }, () => noop.delay()),
            );
          }
          return (performance.now() - start) / 1000;
        },
        depth: () => broker.llen(BENCH_QUEUE),
        results: () => results.dbsize(),
        verify: async () => {
          const ok = await countSuccesses(results);
          await results.flushdb();
          return ok;
        },
        call: async () => await (await noop.delay()).get({ timeout: 30_000 }),
      });
    }
  } finally {
    await flush();
    cleanups.delete(flush);
    broker.disconnect();
    results.disconnect();
    await app.close();
  }
  return out;
}
