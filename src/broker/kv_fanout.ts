/**
 * Broadcasts in Deno KV: a broadcast is kept for a minute under
 * `["fanout", exchange, seq, id]` so that subscribers of every process
 * sharing the database read it; a subscriber lists the exchange when the
 * database changes (at most every 100 ms, at least every second) and hands
 * over each broadcast made since it subscribed, once. Replies to remote
 * control calls are not broadcasts in KV: see kv_replies.ts.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Message } from "../protocol/message.ts";
import { commitAtomic } from "./kv_store.ts";
import { decodeDelivery, nextSeq, type StoredMessage } from "./kv_message.ts";
import { type KvScope, SAFETY_RECHECK_MS } from "./kv_moves.ts";
import { broadcastProblem, keyText } from "./kv_entry_check.ts";

const log = getLogger(["celeriac", "broker", "kv"]);

/** How long a broadcast stays readable by subscribers that are slow to look. */
const FANOUT_TTL_MS = 60_000;
/** Subscribers look for broadcasts at most this often, however busy the database is. */
const FANOUT_POLL_MIN_MS = 100;

/**
 * Keep a broadcast (encoded with `encodeMessage`) for subscribers to read,
 * and wake them.
 *
 * @example
 * ```ts ignore
 * import { keepBroadcast } from "./kv_fanout.ts";
 * await keepBroadcast(scope, "celeryev", encodeMessage(event, "celeryev", "task.succeeded"));
 * ```
 *
 * @param scope the broker's database and namespace
 * @param exchange the exchange
 * @param stored the encoded message
 */
export async function keepBroadcast(
  scope: KvScope,
  exchange: string,
  stored: StoredMessage,
): Promise<void> {
  await commitAtomic(
    scope.kv.atomic().set(
      scope.k("fanout", exchange, nextSeq(), crypto.randomUUID()),
      { message: stored, at: Date.now() },
      { expireIn: FANOUT_TTL_MS },
    ),
  );
  scope.shared.notify();
}

/**
 * Read the broadcasts on `exchange` made from now on until `signal` aborts
 * or `open()` turns false; a malformed one is logged (naming its key) once
 * and skipped. A failed look is logged (once until a look succeeds) and
 * tried again at the next change: reading stops only with `signal` or
 * `open()`. Resolves when reading stops.
 *
 * @example
 * ```ts ignore
 * import { watchBroadcasts } from "./kv_fanout.ts";
 * void watchBroadcasts(scope, "celeryev", (m) => console.log(m.headers), signal, () => true);
 * ```
 *
 * @param scope the broker's database and namespace
 * @param exchange the exchange
 * @param onMessage called with each broadcast
 * @param signal stops reading
 * @param open whether the broker is still open
 */
export function watchBroadcasts(
  scope: KvScope,
  exchange: string,
  onMessage: (message: Message) => void,
  signal: AbortSignal,
  open: () => boolean,
): Promise<void> {
  const since = Date.now();
  const seen = new Set<string>();
  const prefix = scope.k("fanout", exchange);
  const look = async () => {
    const listed = new Set<string>();
    for await (const entry of scope.kv.list<{ message: StoredMessage; at: number }>({ prefix })) {
      const id = String(entry.key[entry.key.length - 1]);
      listed.add(id);
      if (seen.has(id)) continue;
      // sent before this reader began: skipped unread, malformed or not
      const at = (entry.value as { at?: unknown } | null)?.at;
      if (typeof at === "number" && at < since) continue;
      const problem = broadcastProblem(entry.value);
      seen.add(id);
      try {
        if (problem !== null) throw new TypeError(problem);
        onMessage(decodeDelivery({ tag: id, queue: "", message: entry.value.message }));
      } catch (err) {
        log.error("Ignored a malformed broadcast {key} on {exchange}: {error}", {
          key: keyText(entry.key),
          exchange,
          error: (err as Error).message,
        });
      }
    }
    for (const id of seen) if (!listed.has(id)) seen.delete(id);
  };
  let failed = "";
  const loop = async () => {
    while (!signal.aborted && open()) {
      const version = scope.shared.version;
      try {
        await look();
        failed = "";
      } catch (err) {
        if (String(err) !== failed && !signal.aborted && open()) {
          log.error("Cannot read broadcasts on {exchange}, trying again: {error}", {
            exchange,
            error: String(err),
          });
        }
        failed = String(err);
      }
      await new Promise((r) => setTimeout(r, FANOUT_POLL_MIN_MS));
      await scope.shared.changed(version, SAFETY_RECHECK_MS, signal);
    }
  };
  return loop().catch((err) =>
    log.error("Stopped reading broadcasts on {exchange}: {error}", {
      exchange,
      error: String(err),
    })
  );
}
