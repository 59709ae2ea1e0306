/**
 * What a process says about a Redis master it reaches through Sentinel:
 * one warning when the master becomes unreachable, one line when a
 * connection reaches it again — naming the new master after a failover —
 * and a reminder every 30 s while it stays unreachable; one warning for an
 * address of the URL that is a plain Redis server, not a Sentinel (ioredis
 * asks the next one without a word). Every connection of
 * the process to the same master (broker, backend, subscribers, blocking
 * connections) shares this state, so a failover is told once, not once per
 * connection every few seconds in ioredis' words ("connect ECONNREFUSED",
 * "All sentinels are unreachable. Retrying from scratch", which ioredis
 * also says when the Sentinels answer and the master they name refuses).
 * Once a connection is up, the Sentinels' `+switch-master` for the master
 * is followed (one subscription per master and process): at a switch every
 * connection to the old master is dropped at once, so the next command goes
 * to the new one rather than to a master the Sentinels are about to demote.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Redis } from "ioredis";
import { CLOSED } from "./redis_failures.ts";
import { followSwitches } from "./redis_sentinel_switch.ts";

const log = getLogger(["celeriac", "redis"]);

/** ioredis' word for a round over the Sentinels that found no master it could connect to. */
const RETRYING = /All sentinels are unreachable\. Retrying/;

/** How often a master that stays unreachable is mentioned again, ms. */
const REMIND_EVERY_MS = 30_000;

/**
 * ioredis' word for a Sentinel address that answered a Sentinel command as
 * a plain Redis server does (an unknown command): the address is no
 * Sentinel (a master's or replica's port in the URL). Group 1: the address.
 */
const NOT_A_SENTINEL =
  /^failed to connect to sentinel (\S+) because ERR unknown command .sentinel/i;

/**
 * ioredis' word for a Sentinel that monitors no master of the name asked
 * (`?master_name=` differs from the Sentinels' `sentinel monitor`).
 * Group 1: the Sentinel's address.
 *
 * @example
 * ```ts
 * import { NO_SUCH_MASTER } from "./redis_sentinel_watch.ts";
 * NO_SUCH_MASTER.exec(
 *   "failed to connect to sentinel 10.0.0.1:26379 because ERR No such master with that name",
 * )?.[1]; // "10.0.0.1:26379"
 * ```
 */
export const NO_SUCH_MASTER =
  /^failed to connect to sentinel (\S+) because ERR No such master with that name/i;

/** Addresses of the URLs already said to be no Sentinel: said once per process. */
const notSentinels = new Set<string>();

/** A master as this process last saw it. */
interface MasterState {
  /** `host:port` of the master the last connection that became ready reached. */
  address?: string;
  /** When it became unreachable (`Date.now()`), while it is. */
  downSince?: number;
  /** When the last warning about it was logged. */
  lastSaid: number;
  /** The first error of the outage, the one that says why. */
  reason?: string;
  /** A Sentinel answered it monitors no master of this name. */
  unknownMaster?: boolean;
  /** Its connections that are up, each with the `host:port` it reached. */
  ready: Map<Redis, string>;
  /** Its connections that were up once and have not ended: the switch subscription's users. */
  users: Set<Redis>;
  /** Ends the subscription to the Sentinels' `+switch-master`, while one runs. */
  unfollow?: () => void;
}

/** `host:port` with an IPv4-mapped IPv6 host as its IPv4 address. */
function plain(address: string): string {
  return address.replace(/^::ffff:/i, "");
}

/** Masters by `<name> via <sentinels>`, shared by the connections of this process. */
const masters = new Map<string, MasterState>();

/** What the "is now" line adds: the writes a failover may lose, and the guard against it. */
const LOST_WRITES = "writes the old master acknowledged after the promotion were discarded " +
  "when it became a replica (set min-replicas-to-write 1 on the masters to have Redis refuse " +
  "them instead: they are then sent again for ?failover_wait=)";

/**
 * The Sentinels announced `to` as the master: every connection up to
 * another address is dropped at once and reconnects through the Sentinels,
 * so the next command goes to `to` (the old master accepts writes until the
 * Sentinels demote it, seconds later, and then discards them). Commands
 * waiting for a reply are sent again after the reconnect.
 */
function switchTo(known: MasterState, name: string, to: string): void {
  const stale = [...known.ready].filter(([, at]) => at !== to).map(([c]) => c);
  if (stale.length === 0) return;
  log.debug(
    "Redis master {name}: the Sentinels switched it to {to}; reconnecting {n} connection(s)",
    {
      name,
      to,
      n: stale.length,
    },
  );
  for (const c of stale) c.disconnect(true);
}

/**
 * Which master a connection reaches: `{ name, sentinels }` of its options.
 *
 * @example
 * ```ts
 * import type { SentinelMaster } from "./redis_sentinel_watch.ts";
 * const master: SentinelMaster = { name: "mymaster", sentinels: [{ host: "10.0.0.1", port: 26379 }] };
 * ```
 */
export interface SentinelMaster {
  /** The master's name (`?master_name=`). */
  name: string;
  /** The Sentinels asked for it. */
  sentinels: { host?: string; port?: number }[];
  /** `?sentinel_username=`; default none. */
  sentinelUsername?: string;
  /** `?sentinel_password=`; default none. */
  sentinelPassword?: string;
}

/**
 * Log a Sentinel connection's outages and failovers once per process and
 * master (see the module's description), instead of each error of each
 * connection. `onError` still receives every error (to remember why a
 * connect failed).
 *
 * @example
 * ```ts ignore
 * watchSentinelMaster(client, { name: "mymaster", sentinels }, 60_000);
 * ```
 *
 * @param client an ioredis connection through Sentinel
 * @param master the master's name and its Sentinels
 * @param failoverWaitMs how long failed commands are sent again (said in the warning)
 */
export function watchSentinelMaster(
  client: Redis,
  master: SentinelMaster,
  failoverWaitMs: number,
): void {
  const key = `${master.name} via ${
    master.sentinels.map((s) => `${s.host ?? "127.0.0.1"}:${s.port ?? 26379}`).sort().join(",")
  }`;
  let state = masters.get(key);
  if (!state) {
    state = { lastSaid: 0, ready: new Map(), users: new Set() };
    masters.set(key, state);
  }
  const known = state;
  client.on("ready", () => {
    const stream =
      (client as unknown as { stream?: { remoteAddress?: string; remotePort?: number } })
        .stream;
    const address = stream?.remoteAddress
      ? plain(`${stream.remoteAddress}:${stream.remotePort}`)
      : "";
    known.ready.set(client, address);
    known.users.add(client);
    known.unfollow ??= followSwitches(master, (to) => switchTo(known, master.name, plain(to)));
    const previous = known.address;
    known.address = address || previous;
    if (known.downSince === undefined) {
      if (previous && address && previous !== address) {
        log.warn("Redis master {name} is now {address} (was {previous}); {lost}", {
          name: master.name,
          address,
          previous,
          lost: LOST_WRITES,
        });
      }
      return;
    }
    const seconds = ((Date.now() - known.downSince) / 1000).toFixed(1);
    known.downSince = undefined;
    known.reason = undefined;
    known.unknownMaster = undefined;
    if (previous && address && previous !== address) {
      log.warn(
        "Redis master {name} is now {address} (was {previous}): the Sentinels failed over; " +
          "connected again after {seconds} s; {lost}",
        { name: master.name, address, previous, seconds, lost: LOST_WRITES },
      );
    } else if (!previous) {
      // Never reached before: the master tried first may have been another one.
      log.info("Redis master {name}{address} reached after {seconds} s of trying", {
        name: master.name,
        address: address ? ` at ${address}` : "",
        seconds,
      });
    } else {
      log.info("Redis master {name}{address} is reachable again after {seconds} s", {
        name: master.name,
        address: address ? ` at ${address}` : "",
        seconds,
      });
    }
  });
  client.on("close", () => known.ready.delete(client));
  client.on("end", () => {
    known.users.delete(client);
    if (known.users.size > 0 || !known.unfollow) return;
    known.unfollow();
    known.unfollow = undefined;
  });
  client.on("sentinelError", (err: Error) => {
    if (NO_SUCH_MASTER.test(err.message)) {
      known.unknownMaster = true;
      known.reason = `the Sentinels monitor no master named "${master.name}" (${err.message}): ` +
        `set ?master_name= to the name in their "sentinel monitor"`;
      return;
    }
    const address = NOT_A_SENTINEL.exec(err.message)?.[1];
    if (address === undefined || notSentinels.has(address)) return;
    notSentinels.add(address);
    log.warn(
      "{address}, a Sentinel of Redis master {name} in the sentinel:// URL, is a Redis server, " +
        "not a Sentinel ({error}): only the other addresses are asked. List the Sentinels' " +
        "addresses (port 26379 by default), not the master's or a replica's",
      { address, name: master.name, error: err.message },
    );
  });
  client.on("error", (err: Error) => {
    // Another connection reaches the master: this one is late to reconnect (its socket to the
    // previous master failed after the failover), not an outage.
    if (known.ready.size > 0) {
      log.debug("Redis master {name}: {error}", { name: master.name, error: err.message });
      return;
    }
    // A first connect to a name no Sentinel monitors fails at once, saying so: nothing to add.
    if (known.address === undefined && known.unknownMaster) {
      log.debug("Redis master {name}: {error}", { name: master.name, error: err.message });
      return;
    }
    const now = Date.now();
    const starting = known.downSince === undefined;
    if (starting) {
      known.downSince = now;
      known.lastSaid = now;
    }
    if (!CLOSED.test(err.message) && !RETRYING.test(err.message)) known.reason ??= err.message;
    const address = known.address ? ` at ${known.address}` : "";
    if (!starting && now - known.lastSaid < REMIND_EVERY_MS) {
      log.debug("Redis master {name}: {error}", { name: master.name, error: err.message });
      return;
    }
    known.lastSaid = now;
    log.warn(
      starting
        ? "Redis master {name}{address} is unreachable ({error}): asking the Sentinels " +
          "for it again; failed commands are sent again for {wait} s (?failover_wait=)"
        : "Redis master {name} still unreachable after {down} s ({error}); asking the Sentinels",
      {
        name: master.name,
        address,
        error: known.reason ?? "its connection closed",
        wait: failoverWaitMs / 1000,
        down: ((now - known.downSince!) / 1000).toFixed(0),
      },
    );
  });
}
