/**
 * Broadcasts in Deno KV: a broadcast is kept for a minute under
 * `["fanout", exchange, seq, id]` so that subscribers of every process
 * sharing the database read it; a subscriber looks at the exchange when the
 * database changes (at most every 100 ms, at least every second) and hands
 * over each broadcast made since it subscribed, once.
 *
 * A look lists only the keys from a second behind the newest broadcast it
 * handed over (its cursor) onwards, not the minute of broadcasts kept.
 * `seq` (`nextSeq()`) grows within a process, and across the processes of
 * one host only as their common clock does: it is taken when the commit is
 * queued, so a broadcast of another process can become visible after one
 * with a larger `seq` (by the commit's wait, normally milliseconds; longer
 * while another process holds the file's write lock), and a clock set back
 * gives smaller ones. The second of overlap, deduplicated by key, covers
 * the usual wait; every 10 s a look lists every kept broadcast, so one
 * committed later still than that is handed over then (and a malformed key
 * outside the `seq` order is logged). Replies to remote control calls are
 * not broadcasts in KV: see kv_replies.ts.
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
/** How far behind its cursor a subscriber lists again, by default (ms of `seq`). */
const FANOUT_OVERLAP_MS = 1_000;
/** How often a subscriber lists every kept broadcast, by default. */
const FANOUT_SWEEP_MS = 10_000;
/** Microseconds per millisecond: `seq` counts microseconds. */
const SEQ_PER_MS = 1000n;

/**
 * Options of {@link watchBroadcasts}.
 *
 * @example
 * ```ts
 * const options: WatchBroadcastsOptions = { overlapMs: 1_000, sweepMs: 10_000 };
 * ```
 */
export interface WatchBroadcastsOptions {
  /**
   * How far behind the newest broadcast handed over (by `seq`, in ms) each
   * look lists again, for broadcasts committed after one with a larger
   * `seq`; default 1,000.
   */
  overlapMs?: number;
  /**
   * How often (ms) a look lists every kept broadcast, for those committed
   * later than the overlap covers; default 10,000 (the first one that long
   * after subscribing).
   */
  sweepMs?: number;
}

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
 * and skipped. A look lists the keys from `overlapMs` behind the newest
 * broadcast handed over, and every `sweepMs` all of them; each broadcast
 * is handed over once. A failed look is logged (once until a look
 * succeeds) and tried again at the next change: reading stops only with
 * `signal` or `open()`. Resolves when reading stops.
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
 * @param options the overlap and sweep periods; defaults above
 */
export function watchBroadcasts(
  scope: KvScope,
  exchange: string,
  onMessage: (message: Message) => void,
  signal: AbortSignal,
  open: () => boolean,
  options: WatchBroadcastsOptions = {},
): Promise<void> {
  const overlap = BigInt(Math.max(0, Math.trunc(options.overlapMs ?? FANOUT_OVERLAP_MS))) *
    SEQ_PER_MS;
  const sweepMs = options.sweepMs ?? FANOUT_SWEEP_MS;
  const since = Date.now();
  /** The ids handed over or logged, until a sweep no longer lists them. */
  const seen = new Set<string>();
  const prefix = scope.k("fanout", exchange);
  const seqAt = prefix.length;
  /** The newest `seq` handed over, never past the clock of the look that read it. */
  let cursor = BigInt(since) * SEQ_PER_MS;
  let nextSweep = since + sweepMs;
  const look = async () => {
    const sweep = Date.now() >= nextSweep;
    const now = BigInt(Date.now()) * SEQ_PER_MS;
    const selector = sweep ? { prefix } : { prefix, start: [...prefix, cursor - overlap] };
    const listed = new Set<string>();
    for await (const entry of scope.kv.list<{ message: StoredMessage; at: number }>(selector)) {
      const id = String(entry.key[entry.key.length - 1]);
      if (sweep) listed.add(id);
      if (seen.has(id)) continue;
      // sent before this reader began: skipped unread, malformed or not
      const at = (entry.value as { at?: unknown } | null)?.at;
      if (typeof at === "number" && at < since) continue;
      const problem = broadcastProblem(entry.value);
      seen.add(id);
      const seq = entry.key[seqAt];
      if (problem === null && typeof seq === "bigint" && seq > cursor) {
        cursor = seq < now ? seq : now;
      }
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
    if (!sweep) return;
    for (const id of seen) if (!listed.has(id)) seen.delete(id);
    nextSweep = Date.now() + sweepMs;
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
