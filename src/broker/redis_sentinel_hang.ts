/**
 * A Sentinel connection that stops answering is dropped and reconnected
 * through the Sentinels (ioredis would stay on a hung master after a
 * failover): see {@linkcode reconnectWhenHung}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Command, Redis } from "ioredis";
import { maskPassword } from "./errors.ts";
import { TIMED_OUT } from "./redis_failures.ts";

const log = getLogger(["celeriac", "redis"]);

/**
 * Through Sentinel: a command left without a reply for the command timeout
 * drops the connection and reconnects through the Sentinels, as Celeriac's
 * RESP connections drop a silent one. A master that hangs (paused, or a
 * network that drops its packets) keeps its TCP connections up, so ioredis
 * would stay on it after the Sentinels promoted a replica, every command
 * timing out. The commands still waiting on it fail as a dropped
 * connection's do (`Connection is closed`; some may have run, as in a
 * failover) rather than be sent again after the reconnect, and the ones
 * that timed out are not sent again either: their callers were told.
 *
 * @example
 * ```ts ignore
 * reconnectWhenHung(client, "sentinel://10.0.0.1:26379?master_name=mymaster");
 * ```
 */
export function reconnectWhenHung(client: Redis, rawUrl: string): void {
  const send = client.sendCommand.bind(client);
  let dropping = false;
  client.on("ready", () => dropping = false);
  client.sendCommand = ((command: Command, stream?: never) => {
    const sent = send(command, stream);
    command.promise.catch((err: unknown) => {
      if (dropping || !(err instanceof Error) || !TIMED_OUT.test(err.message)) return;
      if (client.status !== "ready") return;
      dropping = true;
      log.warn("Redis connection {url}: {error}; reconnecting through the Sentinels", {
        url: maskPassword(rawUrl),
        error: `no reply within ${client.options.commandTimeout} ms`,
      });
      // ioredis' own way to fail what waits on a connection it gives up (private in its types).
      (client as unknown as { flushQueue(err: Error, o: { offlineQueue: boolean }): void })
        .flushQueue(
          new Error(`Connection is closed: no reply within ${client.options.commandTimeout} ms`),
          { offlineQueue: false },
        );
      client.disconnect(true);
    });
    return sent;
  }) as typeof client.sendCommand;
}
