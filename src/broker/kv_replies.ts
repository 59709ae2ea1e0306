/**
 * Replies to remote-control calls in Deno KV. A reply is published to the
 * exchange `reply.celery.pidbox` with the calling process's routing key; it
 * is kept under `["reply", routingKey, seq, id]` for a minute (Deno KV's
 * `expireIn`) and the call reads and deletes what its key holds. A reply
 * that comes after its call returned (a worker slower than the call's
 * timeout), or to a caller that died, expires unread: it is neither a queue
 * message nor a queue depth counter that nothing would take or delete.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Message } from "../protocol/message.ts";
import type { Subscription } from "./port.ts";
import { deleteKvKeys } from "./kv_delete.ts";
import { FailureStreak } from "./failure_streak.ts";
import { sleep } from "./sleep.ts";
import { commitAtomic } from "./kv_store.ts";
import { decodeDelivery, nextSeq, type StoredMessage } from "./kv_message.ts";
import { type KvScope, SAFETY_RECHECK_MS } from "./kv_moves.ts";

const log = getLogger(["celeriac", "broker", "kv"]);

/** How long a reply stays readable; one its call did not read by then is deleted by Deno KV. */
export const REPLY_TTL_MS = 60_000;

/**
 * Keep a remote-control reply (encoded with `encodeMessage`) for the call
 * whose routing key it names, and wake the readers.
 *
 * @example
 * ```ts ignore
 * import { keepReply } from "./kv_replies.ts";
 * await keepReply(scope, "oid.ticket", encodeMessage(reply, "reply.celery.pidbox", "oid.ticket"));
 * ```
 *
 * @param scope the broker's database and namespace
 * @param routingKey the routing key of the call's replies
 * @param stored the encoded reply
 */
export async function keepReply(
  scope: KvScope,
  routingKey: string,
  stored: StoredMessage,
): Promise<void> {
  await commitAtomic(
    scope.kv.atomic().set(
      scope.k("reply", routingKey, nextSeq(), crypto.randomUUID()),
      stored,
      { expireIn: REPLY_TTL_MS },
    ),
  );
  scope.shared.notify();
}

/**
 * What {@link subscribeReplies} needs of the broker.
 *
 * @example
 * ```ts ignore
 * const host: RepliesHost = { scope, closed: () => broker.closed, run: (fn) => broker.track(fn()) };
 * ```
 */
export interface RepliesHost {
  /** The broker's database and namespace. */
  readonly scope: KvScope;
  /** Whether the broker was closed. */
  closed(): boolean;
  /** Run work the broker's close waits for. */
  run<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * Read the replies kept for `routingKey` until `signal` aborts: each is
 * deleted, then handed to `onMessage`, once. Reads when the database changes
 * and at least every second; the subscription's `flush` reads at once (a
 * call at its deadline). A failed read (a locked or full disk) is read
 * again after a pause (100 ms, doubling up to a second), logged once per
 * streak of failures and once when reads succeed again: reading stops only
 * when `signal` aborts or the broker closes. Then what was kept for the key
 * is deleted.
 *
 * @example
 * ```ts ignore
 * const sub = await subscribeReplies(host, "oid.ticket", (m) => replies.push(m), signal);
 * await sub.flush?.();
 * ```
 *
 * @param host the broker
 * @param routingKey the routing key of the replies (checked by the caller)
 * @param onMessage called with each reply
 * @param signal stops reading
 * @returns the subscription
 */
export function subscribeReplies(
  host: RepliesHost,
  routingKey: string,
  onMessage: (message: Message) => void,
  signal: AbortSignal,
): Promise<Subscription> {
  const { scope } = host;
  const prefix = scope.k("reply", routingKey);
  const read = async (handOver: boolean) => {
    const entries: Deno.KvEntry<StoredMessage>[] = [];
    for await (const e of scope.kv.list<StoredMessage>({ prefix })) entries.push(e);
    await deleteKvKeys(scope.kv, entries.map((e) => e.key));
    if (!handOver) return;
    for (const e of entries) {
      try {
        const tag = String(e.key[e.key.length - 1]);
        onMessage(decodeDelivery({ tag, queue: routingKey, message: e.value }));
      } catch (err) {
        log.error("Ignored a malformed reply on {key}: {error}", {
          key: routingKey,
          error: (err as Error).message,
        });
      }
    }
  };
  // One read at a time, so that a flush and the loop never hand over a reply twice.
  let reading = Promise.resolve();
  const readNext = (handOver: boolean) =>
    reading = reading.then(() => read(handOver), () => read(handOver));
  const failures = new FailureStreak({
    failing: (error) =>
      log.error("Cannot read replies on {key}, trying again: {error}", { key: routingKey, error }),
    recovered: (failed) =>
      log.info("Reading replies on {key} again after {failed} failed read(s)", {
        key: routingKey,
        failed,
      }),
  }, { maxMs: SAFETY_RECHECK_MS });
  const loop = async () => {
    while (!signal.aborted && !host.closed()) {
      const version = scope.shared.version;
      try {
        await readNext(true);
      } catch (err) {
        if (signal.aborted || host.closed()) return;
        await sleep(failures.failed(err), signal);
        continue;
      }
      failures.succeeded();
      await scope.shared.changed(version, SAFETY_RECHECK_MS, signal);
    }
  };
  const flush = async () => {
    if (signal.aborted || host.closed()) return;
    await host.run(() => readNext(true));
  };
  host.run(() =>
    loop()
      .then(() => host.closed() ? undefined : readNext(false))
      .catch((err) => {
        if (host.closed()) return;
        log.warn("Cannot delete the replies left on {key}; they expire within a minute: {error}", {
          key: routingKey,
          error: String(err),
        });
      })
  );
  return Promise.resolve({ flush });
}
