/**
 * What a process says when its own RESP connections to one Redis drop and
 * come back: the first drop is a warning, the others (a worker holds four
 * `celeriac-watch` connections per queue, plus its consume, store and
 * events connections) are debug lines, and one line says when the last of
 * them is connected again — not a warning and an info line per connection
 * on every Redis restart (a worker on 50 queues said 400 lines).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MAXCLIENTS_ADVICE, MAXCLIENTS_REFUSAL } from "./redis_failures.ts";
import { maxclientsPassed, refusedAtMaxclients } from "./redis_maxclients.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/** A server's dropped connections in this process. */
interface Outage {
  /** The connections that dropped and are not connected again (nor closed). */
  readonly down: Set<object>;
  /** How many dropped, by role. */
  readonly roles: Map<string, number>;
  /** When the first dropped (`Date.now()`). */
  readonly since: number;
  /** Whether one of them connected again. */
  reconnected: boolean;
}

/** Outages by server label (the URL, password masked). */
const outages = new Map<string, Outage>();

/**
 * A connection dropped and is reconnecting: a warning when it is the first
 * of its server's in this process, else a debug line.
 *
 * @example
 * ```ts ignore
 * connectionDropped("redis://127.0.0.1:6379/0", this, "consume", "closed the connection");
 * ```
 *
 * @param label the server (URL, password masked)
 * @param conn the connection (its identity)
 * @param role its role, for the line (`consume`, `wait`, `result store`, ...)
 * @param error why it dropped
 */
export function connectionDropped(label: string, conn: object, role: string, error: string): void {
  let outage = outages.get(label);
  const first = !outage;
  if (!outage) {
    outage = { down: new Set(), roles: new Map(), since: Date.now(), reconnected: false };
    outages.set(label, outage);
  }
  outage.down.add(conn);
  outage.roles.set(role, (outage.roles.get(role) ?? 0) + 1);
  const line = "Redis {role} connection {url}: {error}; reconnecting";
  if (first) log.warn(line, { role, url: label, error });
  else log.debug(line, { role, url: label, error });
}

/**
 * A reconnect attempt failed: a debug line, but a warning with what to
 * change when Redis refuses it at `maxclients` and that starts the server's
 * `maxclients` episode (redis_maxclients.ts: once an episode, whether a
 * reconnect or a watcher's wait met the refusal first). The reconnect loops
 * of a worker's connections are refused hundreds of times; the commands
 * waiting on them only see the connection down.
 *
 * @example
 * ```ts ignore
 * reconnectFailed("redis://127.0.0.1:6379/0", this, "wait", "ERR max number of clients reached");
 * ```
 *
 * @param label the server (URL, password masked)
 * @param conn the connection (its identity)
 * @param role the connection's role, for the line
 * @param error why the attempt failed
 */
export function reconnectFailed(label: string, conn: object, role: string, error: string): void {
  if (MAXCLIENTS_REFUSAL.test(error) && refusedAtMaxclients(label, conn)) {
    log.warn(
      "Redis {role} connection {url}: {error}: Redis refuses new connections. {advice}; " +
        "reconnecting",
      { role, url: label, error, advice: MAXCLIENTS_ADVICE },
    );
    return;
  }
  log.debug("Redis {role} connection {url}: {error}", { role, url: label, error });
}

/**
 * A connection is connected (again), or closed: once the last of its
 * server's that dropped is, one line says so with how many and how long.
 * A connection refused at `maxclients` leaves the server's episode.
 *
 * @example
 * ```ts ignore
 * connectionBack("redis://127.0.0.1:6379/0", this, "consume", true);
 * ```
 *
 * @param label the server
 * @param conn the connection
 * @param role its role
 * @param connected true when it connected again, false when it was closed
 */
export function connectionBack(
  label: string,
  conn: object,
  role: string,
  connected: boolean,
): void {
  maxclientsPassed(label, conn);
  const outage = outages.get(label);
  // Not dropped (its first connect): nothing to say.
  if (!outage?.down.delete(conn)) return;
  outage.reconnected ||= connected;
  if (outage.down.size > 0) {
    if (connected) {
      log.debug("Redis {role} connection {url}: connected again", { role, url: label });
    }
    return;
  }
  outages.delete(label);
  if (!outage.reconnected) return;
  const roles = [...outage.roles].map(([r, n]) => n > 1 ? `${r} ×${n}` : r).join(", ");
  log.info("Redis connections to {url} connected again after {seconds} s ({roles})", {
    url: label,
    seconds: ((Date.now() - outage.since) / 1000).toFixed(1),
    roles,
  });
}
