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
 * What {@link followSwitches} reports, each `host:port` as the Sentinels
 * name it.
 *
 * @example
 * ```ts
 * import type { SwitchEvents } from "./redis_sentinel_switch.ts";
 * const events: SwitchEvents = {
 *   switched: (to, from) => console.log(`now ${to}, was ${from}`),
 *   current: (at) => console.log(`master at ${at}`),
 * };
 * ```
 */
export interface SwitchEvents {
  /** A Sentinel announced that a replica replaced the master (`+switch-master`). */
  switched(to: string, from: string): void;
  /**
   * The master a Sentinel names each time the subscription starts (first,
   * and on another Sentinel after the one followed failed): an announcement
   * made while none was followed is missed, this tells its outcome.
   */
  current(at: string): void;
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
 * const stop = followSwitches({ name: "mymaster", sentinels }, {
 *   switched: (to) => console.log(`now ${to}`),
 *   current: () => {},
 * });
 * stop();
 * ```
 *
 * @param source the master's name and its Sentinels
 * @param events what to call on an announcement and on each (re)subscription
 * @returns a function that ends the subscription
 */
export function followSwitches(source: SwitchSource, events: SwitchEvents): () => void {
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
        events.switched(`${toHost}:${toPort}`, `${fromHost}:${fromPort}`);
      }
    });
    c.once("end", () => {
      if (conn === c) conn = undefined;
      if (stopped) return;
      failures++;
      timer = setTimeout(subscribe, Math.min(100 * 2 ** Math.min(failures, 5), MAX_PAUSE_MS));
    });
    c.connect()
      .then(() => c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", source.name))
      .then(async (addr) => {
        if (stopped) return;
        await c.subscribe("+switch-master");
        failures = 0;
        if (Array.isArray(addr) && addr.length === 2) events.current(`${addr[0]}:${addr[1]}`);
      })
      .catch(() => c.disconnect());
  };
  subscribe();
  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    conn?.disconnect();
  };
}
