/**
 * Settling a batch of deliveries: park refused messages, store results,
 * publish follow-ups, then acknowledge — in that order, so nothing is
 * acknowledged before its outcome is stored, and a park is announced, and
 * the FAILURE that goes with it stored, once it is written.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ResultBackend, StoreEntry } from "../backend/port.ts";
import type { Broker, Delivery, Publication, PublishTarget, Rejection } from "../broker/port.ts";
import { retryWhileDown } from "../broker/outage.ts";
import type { Task } from "../client/task.ts";
import type { Message } from "../protocol/message.ts";
import type { ExceptionInfo } from "../protocol/result_meta.ts";
import type { ChordJoin } from "./chords.ts";
import { joinChords, publishAll } from "./canvas_send.ts";
import type { Outgoing } from "./follow_ups.ts";
import type { Lifecycle, TaskRejected } from "./lifecycle.ts";
import { failureEntry } from "./result_entries.ts";
import { storedIds } from "./screening.ts";
import { storeResults } from "./store_results.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * What one step of the worker must write to the broker and backend.
 *
 * @example
 * ```ts ignore
 * const batch = new Settlement();
 * batch.stores.push(revokedEntry(req, "revoked"));
 * batch.acks.push(delivery);
 * await settle(batch, io);
 * ```
 */
export class Settlement {
  /** Results to store. */
  readonly stores: StoreEntry[] = [];
  /** Messages to park. */
  readonly rejects: Rejection[] = [];
  /** The `rejected` events of parks, announced once the parks are written ({@link settle}). */
  readonly parked: TaskRejected[] = [];
  /** Deliveries to acknowledge. */
  readonly acks: Delivery[] = [];
  /**
   * The dispatch numbers of the running tasks acknowledged early in
   * {@link Settlement.acks}: told to {@link SettleIo.acksEnded} once the
   * acknowledgement's write ended. Numbers, not deliveries: a settlement
   * under way keeps no message.
   */
  readonly startedAcks: number[] = [];
  /**
   * Deliveries of tasks with early ack that ended before their start was
   * read (an outcome implies it), or never started (revoked, terminated):
   * acknowledged at once, beside the other steps, not after the stores (they
   * were due as the tasks started). Their slots in the take budget are the
   * early-acknowledged ones' (`WorkerState.settle`'s `held`).
   */
  readonly earlyAcks: Delivery[] = [];
  /** Messages to publish (callbacks, chain steps, republished ETA tasks). */
  readonly publishes: Outgoing[] = [];
  /** Chord header members to join once their results are stored. */
  readonly joins: ChordJoin[] = [];
  /**
   * Follow-ups a suppressed duplicate sends again (`duplicateCanvas`): each
   * goes with {@link Settlement.publishes} unless the result backend holds
   * a finished result for its task id (it was sent and ran).
   */
  readonly resends: Outgoing[] = [];
  /** The entries of {@link Settlement.stores} that go with a park, by its delivery. */
  readonly #parkStores = new Map<Delivery, StoreEntry[]>();

  /**
   * Park the delivery of `event` (its reason, task id and name), announced
   * with `event` once written, and, when its task id is known, store a
   * FAILURE with `info` (to its reply queue, when its headers were read) so
   * that its caller does not wait forever.
   *
   * @param event the park's announcement
   * @param info the exception stored for the caller
   */
  park(event: TaskRejected, info: ExceptionInfo): void {
    this.refuse(event);
    if (!event.taskId) return;
    const entry = failureEntry(event.taskId, info, null);
    const replyTo = event.req?.replyTo;
    this.storeWithPark(event.delivery, replyTo === undefined ? entry : { ...entry, replyTo });
  }

  /**
   * Store `entry` if the park of `delivery` (asked for in this settlement)
   * is written: one the broker leaves out (its RabbitMQ connection gone)
   * did not happen, and its message, back, is judged again.
   *
   * @param delivery the delivery parked
   * @param entry what to store for its task
   */
  storeWithPark(delivery: Delivery, entry: StoreEntry): void {
    this.stores.push(entry);
    const list = this.#parkStores.get(delivery);
    if (list) list.push(entry);
    else this.#parkStores.set(delivery, [entry]);
  }

  /**
   * Drop the entries stored with the parks that `written` (what
   * `Broker.reject` resolved with) leaves out.
   *
   * @param written the rejections parked
   */
  keepParked(written: readonly Rejection[]): void {
    if (this.#parkStores.size === 0) return;
    const parked = new Set(written.map((r) => r.delivery));
    const dropped = new Set<StoreEntry>();
    for (const [d, entries] of this.#parkStores) {
      if (!parked.has(d)) { for (const e of entries) dropped.add(e); }
    }
    this.#parkStores.clear();
    if (dropped.size === 0) return;
    const kept = this.stores.filter((e) => !dropped.has(e));
    this.stores.splice(0, this.stores.length, ...kept);
  }

  /**
   * Park the delivery of `event` (nothing stored), announced with `event`
   * once written.
   *
   * @param event the park's announcement
   */
  refuse(event: TaskRejected): void {
    const { delivery, reason, taskId, taskName } = event;
    this.rejects.push({ delivery, reason, taskId, taskName });
    this.parked.push(event);
  }

  /** Whether there is nothing to do. */
  get empty(): boolean {
    return this.stores.length === 0 && this.rejects.length === 0 && this.acks.length === 0 &&
      this.earlyAcks.length === 0 && this.publishes.length === 0 && this.joins.length === 0 &&
      this.resends.length === 0;
  }
}

/**
 * Where a settlement goes.
 *
 * @example
 * ```ts ignore
 * const io: SettleIo = { broker, backend, publish: (m, t) => app.publish(m, t) };
 * ```
 */
export interface SettleIo {
  /** The broker the deliveries came from. */
  readonly broker: Broker;
  /** The result backend; null when results are not stored. */
  readonly backend: ResultBackend | null;
  /** Publishes a message through the app. */
  publish(message: Message, target: PublishTarget): Promise<void>;
  /** Publishes a batch in order through the app's broker, when it can (Redis). */
  publishMany?(batch: readonly Publication[]): Promise<void>;
  /** Told of each follow-up published, with its queue (sends its `task-sent` event); default none. */
  sent?(message: Message, target: PublishTarget, queue: string): Promise<void>;
  /** Seconds a follow-up publish is retried while the broker is down; default 300. */
  readonly outageRetryLimit?: number;
  /**
   * Told the dispatch numbers of {@link Settlement.startedAcks} once the
   * write of their acknowledgements ended (written, or failed). Default none.
   */
  acksEnded?(seqs: readonly number[]): void;
  /** Where parks are announced once written; default nowhere. */
  readonly lifecycle?: Lifecycle;
  /** The worker's tasks, whose old-style errbacks of a failed chord body are called in-process (`CanvasIo.tasks`); default none. */
  readonly tasks?: ReadonlyMap<string, Task<never, unknown>>;
  /** The worker's node name, for such errbacks; default "". */
  readonly hostname?: string;
}

/**
 * Announce parks just written (their `rejected` events: logged, counted
 * in the worker's `parked`, sent as task events): those of `events` whose
 * delivery the broker says it parked, all of them when it said nothing (a
 * broker whose `reject` resolves with `undefined`). One it left out (its
 * RabbitMQ connection gone) comes back and is judged, and announced, again.
 * A listener that throws is logged, not thrown: the parks are written, and
 * what follows them must still be.
 *
 * @example
 * ```ts ignore
 * const written = await broker.reject(rejections);
 * announceParks(lifecycle, events, written);
 * ```
 *
 * @param lifecycle where
 * @param events the announcements of the parks asked for
 * @param written what `Broker.reject` resolved with
 */
export function announceParks(
  lifecycle: Lifecycle,
  events: readonly TaskRejected[],
  written: readonly Rejection[] | void,
): void {
  const parked = written && new Set(written.map((r) => r.delivery));
  for (const e of events) {
    if (!parked || parked.has(e.delivery)) lifecycle.announce(e);
  }
}

/**
 * Write a settlement: park (and announce the parks), store, publish,
 * acknowledge. Each step rides
 * out an outage of its server (retrying with backoff for the outage
 * limit: the transports do it for parking, stores and acknowledgements,
 * this function for follow-up publishes), so the delivery stays
 * unacknowledged until its outcome is written.
 *
 * @example
 * ```ts ignore
 * await settle(batch, io);
 * ```
 *
 * @param s the batch
 * @param io broker, backend and publisher
 */
export async function settle(s: Settlement, io: SettleIo): Promise<void> {
  if (s.earlyAcks.length === 0) return await settleSteps(s, io);
  const early = s.earlyAcks.splice(0);
  // The steps first: a result's store goes out before the acknowledgement, not behind it.
  const steps = settleSteps(s, io);
  const acked = ackEarly(early, io.broker);
  try {
    await steps;
  } finally {
    await acked;
  }
}

/**
 * Acknowledge the deliveries of ended tasks with early ack
 * ({@link Settlement.earlyAcks}); a failure is logged, not thrown: the rest
 * of the settlement does not depend on it, and each message comes back after
 * the visibility timeout, where its stored result keeps it from running again.
 */
async function ackEarly(deliveries: Delivery[], broker: Broker): Promise<void> {
  try {
    await broker.ack(deliveries);
  } catch (err) {
    log.error(
      "Cannot acknowledge {n} ended task(s) with early ack ({error}): they come back after " +
        "the visibility timeout, where a stored result keeps one from running again",
      { n: deliveries.length, error: (err as Error).message },
    );
  }
}

/** {@link settle}'s steps in order: park, store, publish, acknowledge. */
async function settleSteps(s: Settlement, io: SettleIo): Promise<void> {
  if (s.rejects.length) {
    const written = await io.broker.reject(s.rejects);
    if (written) s.keepParked(written);
    if (io.lifecycle) announceParks(io.lifecycle, s.parked, written);
  }
  if (io.backend && s.stores.length) await storeResults(io.backend, s.stores);
  if (s.resends.length) await keepUnsent(s, io.backend, io.outageRetryLimit);
  if (s.publishes.length === 0 && s.joins.length === 0) {
    if (s.acks.length) await ack(s, io);
    return;
  }
  const outage = { limit: io.outageRetryLimit, what: "publish follow-up tasks" };
  const many = io.publishMany?.bind(io);
  const retrying = {
    backend: io.backend,
    publish: (message: Message, target: PublishTarget) =>
      retryWhileDown(() => io.publish(message, target), outage),
    publishMany: many &&
      ((batch: readonly Publication[]) => retryWhileDown(() => many(batch), outage)),
    sent: io.sent?.bind(io),
    tasks: io.tasks,
    hostname: io.hostname,
  };
  await publishAll(s.publishes, retrying);
  if (s.joins.length) await joinChords(s.joins, retrying);
  if (s.acks.length) await ack(s, io);
}

/**
 * Acknowledge the batch's deliveries, taken out of it as they are sent (a
 * settlement kept while its acknowledgement is under way keeps no delivery:
 * those of running tasks acknowledged early would outlive their tasks), then
 * tell {@link SettleIo.acksEnded} of those running tasks.
 */
function ack(s: Settlement, io: SettleIo): Promise<void> {
  const acked = io.broker.ack(s.acks.splice(0));
  const seqs = s.startedAcks.splice(0);
  if (seqs.length === 0 || !io.acksEnded) return acked;
  return acked.finally(() => io.acksEnded!(seqs));
}

/**
 * Move to the publishes the resends whose tasks have no state stored: one
 * with any (finished, STARTED, RETRY, a refusal's FAILURE) was sent before
 * and is not sent twice. Only those with an id from their signature
 * (`Outgoing.frozen`) are looked up.
 */
async function keepUnsent(
  s: Settlement,
  backend: ResultBackend | null,
  outageLimit?: number,
): Promise<void> {
  const resends = s.resends.splice(0);
  const frozen = resends.filter((p) => p.frozen).map((p) => p.taskId);
  const stored = await storedIds(backend, frozen, { limit: outageLimit });
  for (const p of resends) if (!stored.has(p.taskId)) s.publishes.push(p);
}
