/**
 * When to give the advice for a Redis server at `maxclients` (it refuses
 * new connections): once an episode per server (host and port, whatever
 * the database or options of the URL) in this process, whichever
 * path meets a refusal first — a watcher whose wait's connect is refused
 * (redis_claims.ts) or a dropped connection whose reconnect is refused
 * (resp_outages.ts). Both meet the same refusals in the usual outage, and
 * gave the advice once each.
 *
 * An episode lasts from a server's first refusal until every party refused
 * since (a watcher, a connection) got through again or was closed; the next
 * episode is advised again. Parties never refused (the connections let in
 * at `maxclients`) do not end an episode the others are still in.
 *
 * Single servers only: through Sentinel or Cluster, ioredis reports a
 * connect refused at `maxclients` as `write EPIPE` or `read ECONNRESET` (it
 * writes its handshake before it reads the refusal; Redis has closed by
 * then), and a wait fails with its "max retries per request" error: nothing
 * names `maxclients` to give the advice for.
 *
 * @module
 */

import { serverAddress } from "./redis_url.ts";

/** The parties refused in a server's episode under way, by `host:port` ({@link serverOf}). */
const episodes = new Map<string, Set<object>>();

/**
 * The server a label names, as `host:port`: URLs of one server that differ
 * in database, credentials or options (a broker on db 0 and a result
 * backend on db 1) share its `maxclients`, so its episode. A label that is
 * not a URL (a connection's `host:port`) is that already.
 */
function serverOf(label: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(label)) return label;
  try {
    const { host, port } = serverAddress(new URL(label));
    return `${host}:${port}`;
  } catch {
    return label;
  }
}

/**
 * `party` was refused at `maxclients` by `server`: whether this starts the
 * server's episode, so the advice is to be given now (else it was, in this
 * episode).
 *
 * @example
 * ```ts
 * import { maxclientsPassed, refusedAtMaxclients } from "./redis_maxclients.ts";
 * const server = "redis://127.0.0.1:6379/0";
 * const watcher = {}, connection = {};
 * refusedAtMaxclients(server, watcher); // true: give the advice
 * refusedAtMaxclients(server, connection); // false: given in this episode
 * maxclientsPassed(server, watcher);
 * maxclientsPassed(server, connection); // the episode is over
 * refusedAtMaxclients(server, connection); // true: a new episode
 * maxclientsPassed(server, connection);
 * ```
 *
 * @param server the server's label (its URL, password masked; any URL of the
 *   same host and port is the same server)
 * @param party what was refused (its identity: a watcher, a connection)
 * @returns whether to give the advice now
 */
export function refusedAtMaxclients(server: string, party: object): boolean {
  const key = serverOf(server);
  const episode = episodes.get(key);
  if (episode) {
    episode.add(party);
    return false;
  }
  episodes.set(key, new Set([party]));
  return true;
}

/**
 * `party` got through to `server` (it waited, it connected) or was closed:
 * once no party refused in the server's episode is left, the episode is
 * over. Nothing happens for a party that was not refused.
 *
 * @example
 * ```ts
 * import { maxclientsPassed } from "./redis_maxclients.ts";
 * maxclientsPassed("redis://127.0.0.1:6379/0", {});
 * ```
 *
 * @param server the server's label
 * @param party what got through or was closed
 */
export function maxclientsPassed(server: string, party: object): void {
  const key = serverOf(server);
  const episode = episodes.get(key);
  if (episode?.delete(party) && episode.size === 0) episodes.delete(key);
}
