/**
 * A beat whose Redis namespace holds state no beat wrote: one key set to a
 * value before the beat starts, its sends counted and its logs captured.
 *
 * @module
 */

import { type LogRecord, reset } from "@logtape/logtape";
import type { Redis } from "ioredis";
import { Beat, Celery } from "../../mod.ts";
import { PUBLISHER } from "../../protocol.ts";
import { captureLogs } from "./logs.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./redis.ts";

/** What {@linkcode withBeatOnKey} hands its callback. */
export interface BeatOnKey {
  /** The namespace's key prefix (`celeriac-test-<label>-<id>:`). */
  ns: string;
  /** A raw client, to change or delete the key while the beat runs. */
  redis: Redis;
  /** The beat, started. */
  beat: Beat;
  /** How many `t.tick` messages it has sent so far (none reach a broker). */
  sent: () => number;
  /** The `celeriac` log records at info and above, in order. */
  logs: LogRecord[];
}

/**
 * Set `ns + key` to `value` in a fresh namespace, start a beat there (one
 * config entry, `t.tick` every 0.2 s, lease time 3 s) and run `fn`; then stop
 * the beat, close its app, delete the namespace's keys and end the log
 * capture.
 *
 * @example
 * ```ts ignore
 * await withBeatOnKey("runs", "oops", { label: "beatwrong", maxInterval: 0.1 }, async (b) => {
 *   await b.redis.del(b.ns + "runs");
 * });
 * ```
 *
 * @param key the key's name after the namespace (`runs`, `entries`, `lease`)
 * @param value the string `SET` there before the beat starts
 * @param options `label` for the namespace's prefix; the beat's `maxInterval` in seconds
 * @param fn what the test does with the running beat
 */
export async function withBeatOnKey(
  key: string,
  value: string,
  options: { label: string; maxInterval: number },
  fn: (b: BeatOnKey) => Promise<void>,
): Promise<void> {
  const logs = await captureLogs("info");
  const ns = uniquePrefix(options.label);
  const redis = await rawRedis();
  await redis.set(ns + key, value);
  const app = new Celery({
    broker: REDIS_URL,
    backend: null,
    beatNamespace: ns,
    beatSchedule: { tick: { task: "t.tick", schedule: 0.2 } },
  });
  let sent = 0;
  app[PUBLISHER] = () => {
    sent++;
    return Promise.resolve();
  };
  const beat = new Beat({ app, leaseTime: 3, maxInterval: options.maxInterval });
  try {
    await beat.start();
    await fn({ ns, redis, beat, sent: () => sent, logs });
  } finally {
    await beat.stop();
    await app.close();
    await redis.quit();
    await deleteKeys(ns);
    await reset();
  }
}
