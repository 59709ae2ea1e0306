/**
 * One subscription per master and process to the Sentinels' `+switch-master`
 * announcements: see {@link followSwitches}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Redis } from "ioredis";

const log = getLogger(["celeriac", "redis"]);

/** Longest pause before the next Sentinel is asked after one failed, ms. */
const MAX_PAUSE_MS = 2000;

/**
 * The Sentinels to ask and how, for {@link followSwitches}.
 *
 * @example
 * ```ts
 * import type { SwitchSource } from "./redis_sentinel_switch.ts";
 * const source: SwitchSource = { name: "mymaster", sentinels: [{ host: "10.0.0.1", port: 26379 }] };
 * ```
 */
export interface SwitchSource {
  /** The master's name (`?master_name=`). */
  name: string;
  /** The Sentinels, asked in turn: the next one when the one followed fails. */
  sentinels: { host?: string; port?: number }[];
  /** `?sentinel_username=`; default none. */
  sentinelUsername?: string;
  /** `?sentinel_password=`; default none. */
  sentinelPassword?: string;
}

/**
 * Follow the Sentinels' `+switch-master` announcements for one master: one
 * connection to one Sentinel, subscribed; when that Sentinel fails (its
 * connection closes), the next one of the list is subscribed to, every
 * Sentinel in turn, at most {@link MAX_PAUSE_MS} apart. ioredis' own
 * `failoverDetector` is not used (see redis_ioredis.ts).
 *
 * @example
 * ```ts ignore
 * const stop = followSwitches({ name: "mymaster", sentinels }, (to, from) => {
 *   console.log(`now ${to}, was ${from}`);
 * });
 * stop();
 * ```
 *
 * @param source the master's name and its Sentinels
 * @param switched called with the new master's and the old one's `host:port`, as the
 *   Sentinels name them, at each announcement for this master
 * @returns a function that ends the subscription
 */
export function followSwitches(
  source: SwitchSource,
  switched: (to: string, from: string) => void,
): () => void {
  let stopped = false;
  let conn: Redis | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let turn = 0;
  let failures = 0;
  const subscribe = () => {
    timer = undefined;
    if (stopped) return;
    const at = source.sentinels[turn++ % source.sentinels.length]!;
    const host = at.host ?? "127.0.0.1";
    const port = at.port ?? 26379;
    const c = new Redis({
      host,
      port,
      username: source.sentinelUsername,
      password: source.sentinelPassword,
      lazyConnect: true,
      // A failed Sentinel is not waited for: the next one is asked.
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectTimeout: MAX_PAUSE_MS,
    });
    conn = c;
    c.on("error", (err: Error) => {
      log.debug("Sentinel {host}:{port} (followed for master {name}): {error}", {
        host,
        port,
        name: source.name,
        error: err.message,
      });
    });
    c.on("message", (_channel: string, text: string) => {
      const [name, fromHost, fromPort, toHost, toPort] = text.split(" ");
      if (name === source.name && toPort !== undefined) {
        switched(`${toHost}:${toPort}`, `${fromHost}:${fromPort}`);
      }
    });
    c.once("end", () => {
      if (conn === c) conn = undefined;
      if (stopped) return;
      failures++;
      timer = setTimeout(subscribe, Math.min(100 * 2 ** Math.min(failures, 5), MAX_PAUSE_MS));
    });
    c.connect()
      .then(() => stopped ? undefined : c.subscribe("+switch-master"))
      .then(() => failures = 0)
      .catch(() => c.disconnect());
  };
  subscribe();
  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    conn?.disconnect();
  };
}
