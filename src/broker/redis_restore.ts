/**
 * kombu's restore sweep on Redis: messages unacknowledged for longer than
 * the visibility timeout go back to the front of their queues, marked
 * redelivered, with their delivery count raised; entries that cannot be
 * read, and messages whose exchange routes to no queue, are parked; one
 * routed to several queues goes to the first of them by name, with one
 * warning per sweep counting them (the entry does not say which queue it was
 * taken from). The
 * `unacked_mutex` lock keeps Celeriac's and Python's sweeps apart.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../protocol/envelope.ts";
import { pyJsonDumps, pyJsonLoads } from "../protocol/json.ts";
import { DELIVERY_COUNT_HEADER } from "./port.ts";
import type { RedisScope } from "./redis_commands.ts";
import { priorityList } from "./redis_keys.ts";
import { parkRaw } from "./redis_parked.ts";
import { route } from "./redis_publish.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/**
 * How long the restore lock (`unacked_mutex`) lives without renewal, in
 * milliseconds. A sweeping consumer renews it every third of that, so a
 * consumer killed mid-sweep holds restores up for at most this long
 * (kombu sets it for 300 s and never renews it).
 *
 * @example
 * ```ts
 * import { RESTORE_LOCK_MS } from "@celeriac/celeriac/transports";
 * RESTORE_LOCK_MS; // 5000
 * ```
 */
export const RESTORE_LOCK_MS = 5000;

/**
 * kombu's `restore_visible`: put back every message that has been
 * unacknowledged for longer than the visibility timeout, at the front of
 * its queue and marked redelivered. Guarded by `unacked_mutex` so that
 * Celeriac and Python workers never sweep at the same time; the lock
 * lives {@link RESTORE_LOCK_MS} and is renewed while this sweep runs, so
 * a consumer killed mid-sweep delays restores by seconds, not minutes.
 *
 * @example
 * ```ts ignore
 * import { restoreVisible } from "./redis_restore.ts";
 * const restored = await restoreVisible(scope, 3600);
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param visibilitySeconds the visibility timeout
 * @returns how many messages were restored (0 when another sweep holds the lock)
 */
export async function restoreVisible(
  scope: RedisScope,
  visibilitySeconds: number,
): Promise<number> {
  const client = scope.client;
  const token = crypto.randomUUID().replaceAll("-", "");
  const mutex = scope.k("unacked_mutex");
  const got = await client.set(mutex, token, "PX", RESTORE_LOCK_MS, "NX");
  if (got !== "OK") return 0;
  let restored = 0;
  const spread = new Map<string, Spread>();
  const renew = setInterval(() => {
    client.celeriacRenew(mutex, token, String(RESTORE_LOCK_MS)).catch(() => {});
  }, RESTORE_LOCK_MS / 3);
  try {
    const ceiling = Date.now() / 1000 - visibilitySeconds;
    const tags = await client.zrevrangebyscore(scope.k("unacked_index"), ceiling, 0);
    for (const tag of tags) restored += await restoreOne(scope, tag, spread);
  } finally {
    clearInterval(renew);
    if (spread.size > 0) warnSpread([...spread.values()]);
    await client.celeriacUnlock(mutex, token);
  }
  if (restored > 0) log.info("Restored {n} unacknowledged message(s)", { n: restored });
  return restored;
}

/** Messages of a sweep restored to one of the several queues their exchange and key route to. */
interface Spread {
  exchange: string;
  routingKey: string;
  /** The queues routed to, by name; the first got the messages. */
  queues: string[];
  count: number;
  /** The first message's task id. */
  id: string;
}

/** How many routes a sweep's warning names; the rest are counted. */
const ROUTES_NAMED = 5;

/** One warning for a sweep's messages restored to one of several queues. */
function warnSpread(spread: Spread[]): void {
  const routes = spread.slice(0, ROUTES_NAMED).map((r) =>
    `${r.count} to ${r.queues[0]} of ${r.queues.join(", ")} (exchange ` +
    `${JSON.stringify(r.exchange)}, routing key ${JSON.stringify(r.routingKey)})`
  );
  if (spread.length > ROUTES_NAMED) routes.push(`${spread.length - ROUTES_NAMED} more route(s)`);
  // The entry ([message, exchange, routing key], kombu's) does not say which queue it was
  // taken from: with several routed to, it may have left its own.
  log.warn(
    "Restored {count} unacknowledged task(s) (the first {id}) to the first by name of the " +
      "queues their exchange routes them to: {routes}. The unacked entry does not say which " +
      "queue a task was taken from, so it may have left another; bind each routing key to one " +
      "queue to have its messages restored there",
    {
      count: spread.reduce((n, r) => n + r.count, 0),
      id: spread[0].id,
      routes: routes.join("; "),
    },
  );
}

async function restoreOne(
  scope: RedisScope,
  tag: string,
  spread: Map<string, Spread>,
): Promise<number> {
  const value = await scope.client.hget(scope.k("unacked"), tag);
  if (value === null) {
    await scope.client.zrem(scope.k("unacked_index"), tag);
    return 0;
  }
  let env: Envelope;
  let exchange: string;
  let routingKey: string;
  try {
    const [rawEnv, ex, rk] = pyJsonLoads(value) as [unknown, string, string];
    env = decodeEnvelope(pyJsonDumps(rawEnv));
    exchange = String(ex ?? "");
    routingKey = String(rk ?? "");
    if (env.undecodable !== undefined) throw new Error(env.undecodable);
  } catch (err) {
    await parkRaw(scope, tag, value, "", `unreadable unacked entry: ${(err as Error).message}`);
    return 0;
  }
  const queues = routingKey === "" ? [] : await route(scope, exchange, routingKey);
  if (queues.length === 0) {
    // kombu would push it to a list named after the routing key, which no consumer may read.
    const reason = `unacknowledged message not restored: exchange ${JSON.stringify(exchange)} ` +
      `routes routing key ${JSON.stringify(routingKey)} to no queue`;
    await parkRaw(scope, tag, encodeEnvelope(env, env.deliveryInfo, tag, true), "", reason);
    return 0;
  }
  const restores = Number(env.headers[DELIVERY_COUNT_HEADER]) || 0;
  env.headers = { ...env.headers, [DELIVERY_COUNT_HEADER]: restores + 1 };
  const raw = encodeEnvelope(env, env.deliveryInfo, tag, true);
  // The script moves the entry, so one queue gets it (kombu pushes it to each): the first by
  // name, not by SMEMBERS's order (arbitrary), so the same route always restores to the same.
  const sorted = queues.length > 1 ? [...queues].sort() : queues;
  const moved = await scope.client.celeriacRestore(
    scope.k("unacked_index"),
    scope.k("unacked"),
    scope.k(priorityList(sorted[0], env.properties.priority)),
    tag,
    value,
    raw,
    "front",
  );
  if (moved === 1 && sorted.length > 1) {
    const key = `${exchange}\u0000${routingKey}`;
    const seen = spread.get(key);
    if (seen) seen.count++;
    else {
      const id = String(env.headers.id ?? tag);
      spread.set(key, { exchange, routingKey, queues: sorted, count: 1, id });
    }
  }
  return moved;
}
