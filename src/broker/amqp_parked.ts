/**
 * Parking on RabbitMQ. A rejected message is republished (with confirm) to
 * the durable queue `celeriac.parked` with a note in its
 * `x-celeriac-parked` header (reason, queue, task id and name, time,
 * original exchange and routing key), then acknowledged by the caller.
 * RabbitMQ's own dead-lettering would need queue arguments that differ
 * from what Celery declares. {@link ParkedScans.list} reads the queue
 * with `basic.get` and closes its channel, which puts everything back in
 * order; {@link ParkedScans.requeue} republishes to the original queue
 * with an `x-celeriac-redelivered` header (a publisher cannot set AMQP's
 * redelivered flag). A scan holds what it read until its channel closes,
 * so scans run one at a time: one broker's in turn, and different
 * processes' by holding the exclusive queue `celeriac.parked.scan-lock`
 * (see amqp_scan_lock.ts). A message parked twice
 * (its copy written, then its connection closed before the
 * acknowledgement, so it came back and was parked again) has the same
 * park id in both copies (a digest of everything in them but the parking
 * note, see {@link parkId}; two messages that differ in any header do
 * not share it): a listing shows the first only, and a requeue, which
 * reads on past its limit (ten times as many, at most 10,000), moves the
 * first and drops the later ones it meets.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Message } from "../protocol/message.ts";
import { HeldChannel } from "./amqp_channel.ts";
import type { AmqpSession } from "./amqp_connection.ts";
import type { Declarations } from "./amqp_declare.ts";
import {
  fromIncoming,
  parkedCopy,
  type ParkingNote,
  readParkingNote,
  unparkedMessage,
} from "./amqp_message.ts";
import { parkId } from "./amqp_park_id.ts";
import type { AmqpPublisher } from "./amqp_publish.ts";
import { ScanHold } from "./amqp_scan_hold.ts";
import { type ScanWait, untilTurn, withScanLock } from "./amqp_scan_lock.ts";
import { PARKED_QUEUE, parkedQueueDeclaration } from "./amqp_topology.ts";
import type { PublishOutcome } from "./errors.ts";
import type { Delivery, ParkedMessage, Rejection } from "./port.ts";

const log = getLogger(["celeriac", "broker", "amqp"]);

/**
 * Publish a copy of each rejected delivery, with its parking note, to
 * `celeriac.parked` and wait for the confirms; the deliveries themselves
 * are left for the caller to acknowledge. Each copy is written at most
 * once per connection: when the connection is lost part way, the next
 * one writes only the copies not confirmed yet whose delivery `held`
 * still says is held, since a delivery that died with its connection
 * comes back by itself and is parked again, if at all, when it is judged
 * again (a copy written for it meanwhile would be a second one).
 *
 * @example
 * ```ts ignore
 * import { parkRejections } from "./amqp_parked.ts";
 * const written = await parkRejections(publisher, declarations, [{ delivery, reason: "poison" }], () => true);
 * ```
 *
 * @param publisher the broker's publisher
 * @param declarations the broker's declarations
 * @param rejections the deliveries and why they are parked
 * @param held whether a delivery is still held (its connection not lost)
 * @returns the rejections whose copy was written: confirmed, or written on a connection lost before its confirm came
 */
export async function parkRejections(
  publisher: AmqpPublisher,
  declarations: Declarations,
  rejections: readonly Rejection[],
  held: (delivery: Delivery) => boolean,
): Promise<Rejection[]> {
  const now = new Date();
  const ids = await Promise.all(rejections.map(async (r) =>
    await parkId(r.delivery, {
      taskId: r.taskId ?? null,
      queue: r.delivery.queue,
      exchange: r.delivery.exchange,
      routingKey: r.delivery.routingKey,
    }) ?? crypto.randomUUID()
  ));
  const copies = rejections.map((r, i) => ({
    rejection: r,
    outcome: "unsent" as PublishOutcome,
    message: parkedCopy(r.delivery, {
      id: ids[i],
      reason: r.reason,
      queue: r.delivery.queue,
      taskId: r.taskId ?? null,
      taskName: r.taskName ?? null,
      parkedAt: now,
      exchange: r.delivery.exchange,
      routingKey: r.delivery.routingKey,
    }),
  }));
  await publisher.withSession(async (session) => {
    const due = copies.filter((c) => c.outcome !== "sent" && held(c.rejection.delivery));
    if (due.length === 0) return;
    await declarations.queueOnly(session, parkedQueueDeclaration());
    await Promise.all(due.map(async (c) => {
      c.outcome = "unknown";
      await publisher.confirmPublish(session, "", PARKED_QUEUE, c.message);
      c.outcome = "sent";
    }));
  });
  // At debug, as on Redis and KV: the worker that rejected them logs each one at error.
  for (const { rejection: r } of copies.filter((c) => c.outcome === "sent")) {
    log.debug("Parked a message from {queue}: {reason}", {
      queue: r.delivery.queue,
      reason: r.reason,
    });
  }
  return copies.filter((c) => c.outcome !== "unsent").map((c) => c.rejection);
}

/**
 * Read the messages parked when the scan began, oldest first, on a
 * channel of their own (one parked again meanwhile, by a worker refusing
 * it once more, waits for the next scan), until `enough` says so; `visit`
 * decides which to acknowledge, told the copy's park id computed from
 * the copy (`null` without a task id or parking note), shared by the
 * copies of a message parked twice. The rest go back, in order, when the
 * channel closes.
 */
async function scanParked(
  declarations: Declarations,
  session: AmqpSession,
  wait: ScanWait,
  hold: ScanHold,
  enough: () => boolean,
  visit: (message: Message, note: ParkingNote | null, key: string | null) => Promise<boolean>,
): Promise<void> {
  await declarations.queueOnly(session, parkedQueueDeclaration());
  await withScanLock(session, wait, async () => {
    const held = await HeldChannel.open(session);
    /** Read and not acknowledged: back in the queue once the channel closes. */
    let kept = 0;
    try {
      const { messageCount } = await held.channel.checkQueue(PARKED_QUEUE);
      for (let i = 0; i < messageCount && !enough(); i++) {
        const raw = await hold.read(() => held.channel.get(PARKED_QUEUE, { noAck: false }));
        if (raw === false) break;
        kept++;
        const message = fromIncoming(raw).message;
        const note = readParkingNote(message.headers);
        // From the copy itself, not its note's id: a copy parked by an earlier version has a random
        // id, or a digest that leaves out the headers (two messages that differ only there shared it).
        const key = note?.id ? await parkId(message, note) : null;
        if (await visit(message, note, key)) {
          held.channel.ack(raw);
          kept--;
          hold.acknowledged();
        }
      }
    } finally {
      // Before the lock goes: what was read and not acknowledged is back in the queue when the next scan reads it.
      await hold.release(kept, () => held.close());
    }
  });
}

/**
 * The reads of `celeriac.parked` by one broker, one at a time. A scan
 * holds every message it took with `basic.get` until its channel closes:
 * a requeue running beside a listing (the dashboard polls the list every
 * few seconds) would find those messages gone and move none of them, and
 * two requeues could each move one copy of a message parked twice. Scans
 * by other processes wait too: each scan holds the exclusive queue
 * `celeriac.parked.scan-lock` while it runs, and one that finds it held
 * tries again until `waitMs` after the listing or requeue was asked for
 * (not after its turn here came: calls queued behind each other give up
 * together); a call still queued behind this broker's own scan then gives
 * up too. A count takes no lock and does not wait for its turn.
 *
 * @example
 * ```ts ignore
 * import { ParkedScans } from "./amqp_parked.ts";
 * const scans = new ParkedScans(publisher, declarations);
 * for (const p of await scans.list(10)) console.log(p.reason);
 * console.log(await scans.requeue(1000), "moved");
 * ```
 */
export class ParkedScans {
  readonly #publisher: AmqpPublisher;
  readonly #declarations: Declarations;
  /** Park ids this broker moved back (the last {@link MOVED_KEPT}), across its requeues. */
  readonly #moved = new Set<string>();
  readonly #waitMs: number;
  /** What the scan under way holds, for a count beside it. */
  readonly #hold = new ScanHold();
  #last: Promise<unknown> = Promise.resolve();

  /**
   * @param publisher the broker's publisher (its connection handling and confirms)
   * @param declarations the broker's declarations
   * @param options `waitMs`: how long a scan waits for its turn (this
   *   broker's scans ahead and another process's) from when it is asked
   *   for, before it rejects with a `ParkedScanBusyError`; default 30,000
   * @throws {TypeError} when `waitMs` is not a number >= 0
   */
  constructor(
    publisher: AmqpPublisher,
    declarations: Declarations,
    options: { waitMs?: number } = {},
  ) {
    this.#publisher = publisher;
    this.#declarations = declarations;
    this.#waitMs = options.waitMs ?? 30_000;
    if (!(this.#waitMs >= 0)) {
      throw new TypeError(
        `Invalid parkedScanWait ${this.#waitMs / 1000}: use a number of seconds >= 0 (how long a ` +
          "listing or requeue of parked messages waits for another process's)",
      );
    }
  }

  /**
   * Run `fn` once every scan started before it is over, told the deadline
   * of its wait for another process's scan, set now; the wait for this
   * broker's scans ahead ends at that deadline too, and then `fn` never runs.
   */
  #inTurn<T>(fn: (wait: ScanWait) => Promise<T>): Promise<T> {
    const wait = { deadline: performance.now() + this.#waitMs, waitMs: this.#waitMs };
    const ahead = this.#last;
    const run = untilTurn(ahead, wait).then(() => fn(wait));
    // A call that gave up still leaves the next one waiting for the scans ahead of it.
    this.#last = Promise.allSettled([ahead, run]);
    return run;
  }

  /**
   * List parked messages, oldest first (read without removing them); a
   * second copy of a message parked twice is not listed.
   *
   * @param limit at most this many listed
   * @returns the parked messages
   */
  list(limit: number): Promise<ParkedMessage[]> {
    return this.#inTurn((wait) =>
      listParked(this.#publisher, this.#declarations, wait, this.#hold, limit)
    );
  }

  /**
   * How many messages are parked (each copy of a message parked twice
   * counted). It takes no lock and does not wait for a scan: what this
   * broker's scan under way holds is counted (its next read waits for the
   * count's), what another process's holds is not.
   *
   * @returns the depth of `celeriac.parked`
   */
  count(): Promise<number> {
    return this.#publisher.withSession(async (session) => {
      await this.#declarations.queueOnly(session, parkedQueueDeclaration());
      const held = await HeldChannel.open(session);
      try {
        return await this.#hold.count(async () =>
          (await held.channel.checkQueue(PARKED_QUEUE)).messageCount
        );
      } finally {
        await held.close();
      }
    });
  }

  /**
   * Move parked messages (oldest first, among those parked when it
   * began) back to their queues, marked redelivered; one without a queue
   * to go back to stays parked; a second copy of a message parked twice,
   * met after its first was moved, is dropped. It reads on past `limit`
   * (ten times `limit` more, at most 10,000 more), so that a later copy
   * of one it moved is dropped when met in that window; a copy further
   * on stays parked, and a later requeue through this broker drops it too
   * (the park ids of its last 10,000 moves are remembered; another process's
   * requeue does not know them and moves it). Requeues and listings by
   * other processes wait for this one to end (up to their `waitMs`), so two
   * requeues at once move a message parked twice once.
   *
   * @param limit at most this many moved
   * @returns how many moved
   */
  requeue(limit: number): Promise<number> {
    return this.#inTurn((wait) =>
      requeueParked(this.#publisher, this.#declarations, wait, this.#hold, limit, this.#moved)
    );
  }
}

/** List up to `limit` parked messages, oldest first; {@link ParkedScans.list} runs it in turn. */
async function listParked(
  publisher: AmqpPublisher,
  declarations: Declarations,
  wait: ScanWait,
  hold: ScanHold,
  limit: number,
): Promise<ParkedMessage[]> {
  const out: ParkedMessage[] = [];
  const listed = new Set<string>();
  await publisher.withSession(async (session) => {
    out.length = 0;
    listed.clear();
    await scanParked(
      declarations,
      session,
      wait,
      hold,
      () => out.length >= limit,
      (message, note, key) => {
        if (key !== null && listed.has(key)) return Promise.resolve(false);
        if (key !== null) listed.add(key);
        const h = message.headers;
        out.push({
          id: note?.id || String(message.properties.message_id ?? ""),
          reason: note?.reason ?? "parked by another tool (no x-celeriac-parked header)",
          queue: note?.queue ?? "",
          taskId: note?.taskId ?? (typeof h.id === "string" ? h.id : null),
          taskName: note?.taskName ?? (typeof h.task === "string" ? h.task : null),
          parkedAt: note?.parkedAt ?? new Date(0),
        });
        return Promise.resolve(false);
      },
    );
  });
  return out;
}

/** How many moved park ids a broker remembers across its requeues (the oldest are forgotten). */
const MOVED_KEPT = 10_000;

/** Add `key` to `ids`, forgetting the oldest beyond {@link MOVED_KEPT}. */
function remember(ids: Set<string>, key: string): void {
  ids.add(key);
  if (ids.size > MOVED_KEPT) ids.delete(ids.values().next().value!);
}

/**
 * How many parked copies a requeue of `limit` reads at most once it has
 * moved `limit`: `limit` and ten times more, at most 10,000 more. A
 * second copy of a message moved is dropped only when met within it; the
 * rest stay unread (the scan holds what it reads until it ends, hiding it
 * from other processes' listings and counts).
 */
function readAheadWindow(limit: number): number {
  return limit + Math.min(10 * limit, 10_000);
}

/** Move up to `limit` parked messages back to their queues; {@link ParkedScans.requeue} runs it in turn. */
async function requeueParked(
  publisher: AmqpPublisher,
  declarations: Declarations,
  wait: ScanWait,
  hold: ScanHold,
  limit: number,
  movedIds: Set<string>,
): Promise<number> {
  let moved = 0;
  // Carried by what this requeue moves: a copy parked again later has another park id than the one moved.
  const requeueId = crypto.randomUUID();
  // `movedIds`: park ids this broker's requeues moved (kept across a reconnection, so that a copy
  // moved whose acknowledgement was lost with its connection is dropped, not moved again, when
  // it is met; and across requeues, so that "requeue one" then "requeue all" moves it once).
  const window = readAheadWindow(limit);
  await publisher.withSession(async (session) => {
    // Read on past `limit`, within the window: a later copy of a message moved here is dropped
    // here, so that a requeue run a few at a time (the dashboard moves one) cannot move it again.
    let read = 0;
    await scanParked(
      declarations,
      session,
      wait,
      hold,
      () => moved >= limit && read >= window,
      async (
        message,
        note,
        key,
      ) => {
        read++;
        if (!note?.queue) {
          log.warn("A parked message has no queue to go back to; it stays parked");
          return false;
        }
        if (key !== null && movedIds.has(key)) {
          log.info("Dropped a second parked copy of task {id} (park {park}): its first went back", {
            id: note.taskId ?? "?",
            park: note.id,
          });
          return true;
        }
        if (moved >= limit) return false;
        await declarations.taskQueue(session, note.queue);
        await publisher.confirmPublish(
          session,
          "",
          note.queue,
          unparkedMessage(message, requeueId),
        );
        if (key !== null) remember(movedIds, key);
        moved++;
        return true;
      },
    );
  });
  return moved;
}
