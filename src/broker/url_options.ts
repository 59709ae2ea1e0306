/**
 * Query options of a broker or backend URL that Celeriac does not read: a
 * typo (`?visibility_timout=10`) would otherwise be ignored without a word.
 * kombu URLs may carry options Celeriac has no use for, so they are named
 * in a warning, not refused (the `kv://` transport, Celeriac's own, refuses
 * them).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { maskPassword } from "./errors.ts";

const log = getLogger(["celeriac", "broker", "url"]);

/** The query options of `redis://`, `rediss://`, `sentinel://` and Cluster URLs Celeriac reads. */
export const REDIS_URL_OPTIONS: readonly string[] = [
  "db",
  "visibility_timeout",
  "global_keyprefix",
  "result_expires",
  "socket_timeout",
  "socket_connect_timeout",
  "failover_wait",
  "master_name",
  "sentinel_password",
  "sentinel_username",
];

/** The query options of `amqp://` and `amqps://` URLs Celeriac reads. */
export const AMQP_URL_OPTIONS: readonly string[] = [
  "ssl",
  "heartbeat",
  "connect_timeout",
  "max_priority",
  "x-max-priority",
  "delivery_limit",
  "quorum_queues",
  "queue_type",
  "exchange_type",
  "delay_queue_type",
];

/** The URLs and options already warned of: a URL is parsed at each connection. */
const warned = new Set<string>();

/**
 * Log a warning, once per URL and option, for each query option of `url`
 * that is not in `known`.
 *
 * @example
 * ```ts ignore
 * warnUnknownOptions("redis://h/0?visibility_timout=10", { visibility_timout: "10" }, REDIS_URL_OPTIONS);
 * // WARNING: URL option visibility_timout of redis://h/0?visibility_timout=10 is ignored: ...
 * ```
 *
 * @param url the URL as given (its password is masked in the warning)
 * @param query its query options
 * @param known the options its transport reads
 */
export function warnUnknownOptions(
  url: string,
  query: Record<string, string>,
  known: readonly string[],
): void {
  for (const key of Object.keys(query)) {
    if (known.includes(key) || warned.has(`${url}\n${key}`)) continue;
    warned.add(`${url}\n${key}`);
    log.warn(
      "URL option {option} of {url} is ignored: Celeriac reads {known} there (a typo?)",
      { option: key, url: maskPassword(url), known: known.join(", ") },
    );
  }
}
