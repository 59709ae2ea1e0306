/**
 * Deliveries a Redis taker hands out early: a message its wait claimed is
 * given to the consumer before the take script that records it in
 * `unacked` replies (redis_take.ts). Until a take records it, settling it
 * waits; a take that does not record it (restored or settled meanwhile)
 * makes it another consumer's, with nothing left to settle. An early
 * acknowledgement goes right behind the take script on the same
 * connection, guarded by {@link ACK_TAKEN_SCRIPT}; a lone one whose take
 * script was not sent yet is acknowledged with an `LREM` of its claim
 * instead (redis_take.ts), and parked afterwards re-encoded, as one
 * acknowledged the usual way is.
 *
 * @module
 */

import type { Delivery } from "./port.ts";
import { ACK_TAKEN_SCRIPT } from "./redis_scripts.ts";
import { RespScript, type RespScripts } from "./resp_scripts.ts";

const ACK_TAKEN = new RespScript(ACK_TAKEN_SCRIPT);

/** A delivery handed out before a take script recorded it. */
export interface Early {
  /** The delivery. */
  readonly delivery: Delivery;
  /** Its element, as the take script finds it. */
  readonly raw: string;
  /**
   * Resolves once a take recorded it (or made it another's); rejects when the taker closes
   * or its take script is not answered within the outage limit.
   */
  readonly recorded: Promise<void>;
  /** The id of the take that records it; -1 until it is sent. */
  seq: number;
}

interface Pending extends Early {
  /** Its `LREM` was sent unanswered (see {@link EarlyDeliveries.lremUnanswered}). */
  lremUnsure: boolean;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * The early deliveries of one taker, by element and by delivery.
 *
 * @example
 * ```ts ignore
 * const early = new EarlyDeliveries();
 * const e = early.add(raw, delivery);
 * early.recorded(raw, tag); // the take script's reply names it: settling may go on
 * await early.settleable([delivery]);
 * ```
 */
export class EarlyDeliveries {
  /**
   * Those waiting for their record, in hand-out order: a few at most (one
   * per wait that claimed, until the take after it), found by comparing
   * elements, not by a `Map` of them, whose lookups hash every element of
   * a take (and the claimed one on an idle worker's round trip) in full.
   */
  readonly #list: Pending[] = [];
  readonly #byDelivery = new Map<Delivery, Pending>();
  /** Early deliveries their take did not record: nothing of them to settle. */
  readonly #gone = new WeakSet<Delivery>();
  #anyGone = false;
  /**
   * Early deliveries acknowledged straight from their claim list, never in
   * `unacked` (see {@link EarlyDeliveries.ackedClaim}): nothing of them to
   * acknowledge, requeue or renew, but parked when rejected.
   */
  readonly #ackedAtIntake = new WeakSet<Delivery>();
  #anyAckedAtIntake = false;
  /**
   * Early deliveries whose take script was given up (not answered within the
   * outage limit), with why: settling them fails at once.
   */
  readonly #givenUp = new WeakMap<Delivery, Error>();
  #anyGivenUp = false;

  /** How many wait for their record. */
  get size(): number {
    return this.#list.length;
  }

  /**
   * Whether an element is handed out and waits for its record.
   *
   * @param raw the element
   * @returns true when it is
   */
  has(raw: string): boolean {
    return this.#find(raw) !== undefined;
  }

  /**
   * Hand out `delivery`, taken from element `raw`.
   *
   * @param raw the element
   * @param delivery the delivery made of it
   * @returns its entry (set its `seq` when its take is sent)
   */
  add(raw: string, delivery: Delivery): Early {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    promise.catch(() => {});
    const e: Pending = {
      delivery,
      raw,
      recorded: promise,
      seq: -1,
      lremUnsure: false,
      resolve,
      reject,
    };
    this.#list.push(e);
    this.#byDelivery.set(delivery, e);
    return e;
  }

  /**
   * A take returned `raw` recorded under `tag`: if it was handed out early,
   * it takes that tag (the script gives a new one to an element whose tag
   * another `unacked` entry holds) and may be settled.
   *
   * @param raw the element
   * @param tag the tag it is recorded under
   * @returns whether it was handed out early (the take must not hand it out again)
   */
  recorded(raw: string, tag: string): boolean {
    const e = this.#find(raw);
    if (!e) return false;
    (e.delivery as { deliveryTag: string }).deliveryTag = tag;
    this.#settle(e, false);
    return true;
  }

  /**
   * The take `seq` replied: its early deliveries it did not record are
   * another consumer's now (restored, or settled by an early acknowledgement
   * whose reply was lost), but for one whose `LREM` went unanswered: that
   * `LREM` removed it, acknowledged at intake (see
   * {@link EarlyDeliveries.lremUnanswered}).
   *
   * @param seq the take's id
   */
  tookAll(seq: number): void {
    for (const e of this.#list.filter((x) => x.seq === seq)) {
      if (e.lremUnsure) this.#ackedClaim(e);
      else this.#settle(e, true);
    }
  }

  /**
   * Whether one of `deliveries` waits for its record.
   *
   * @param deliveries deliveries of this taker
   * @returns true when one does
   */
  waiting(deliveries: readonly Delivery[]): boolean {
    if (this.#byDelivery.size === 0) return false;
    for (const d of deliveries) if (this.#byDelivery.has(d)) return true;
    return false;
  }

  /**
   * Wait for the record of those of `deliveries` handed out early, which
   * acknowledging, parking, requeueing or renewing them must wait for (their
   * `unacked` entries do not exist before); null when none of them waits.
   *
   * @param deliveries deliveries of this taker
   * @param parking keep those acknowledged at intake (see {@link EarlyDeliveries.ackedAtIntake}),
   *   which a park re-encodes; else they are left out, with nothing of them to settle
   * @returns a promise of those left to settle once all are recorded (not
   *   one its take did not record), rejected when the taker closed first or
   *   the take script of one was given up (also before this call: see
   *   {@link EarlyDeliveries.giveUp}); or null
   */
  settleable(
    deliveries: readonly Delivery[],
    parking = false,
  ): Promise<readonly Delivery[]> | null {
    if (this.#anyGivenUp) {
      for (const d of deliveries) {
        const err = this.#givenUp.get(d);
        if (err) return Promise.reject(err);
      }
    }
    let waits: Promise<void>[] | null = null;
    if (this.#byDelivery.size > 0) {
      for (const d of deliveries) {
        const e = this.#byDelivery.get(d);
        if (e) (waits ??= []).push(e.recorded);
      }
    }
    const out = (d: Delivery) => this.#gone.has(d) || (!parking && this.#ackedAtIntake.has(d));
    const left = () => deliveries.filter((d) => !out(d));
    if (waits) return Promise.all(waits).then(left);
    return (this.#anyGone || (!parking && this.#anyAckedAtIntake)) && deliveries.some(out)
      ? Promise.resolve(left())
      : null;
  }

  /**
   * Whether `delivery` was acknowledged at intake, straight from its claim
   * list ({@link EarlyDeliveries.ackedClaim}): no `unacked` entry is its own
   * (one under its tag is another consumer's: the same message routed to
   * another queue), and parking it re-encodes it from what was decoded and
   * leaves `unacked` alone.
   *
   * @param delivery a delivery of this taker
   * @returns true when it was
   */
  ackedAtIntake(delivery: Delivery): boolean {
    return this.#anyAckedAtIntake && this.#ackedAtIntake.has(delivery);
  }

  /**
   * Acknowledge those of `deliveries` that wait for their record without
   * waiting for the take script's reply: call this in the turn the take
   * script was framed in, or after, so that the acknowledgements follow it
   * on its connection. Each is acknowledged only if `unacked` holds its
   * very envelope under its tag, recorded by its own take
   * ({@link ACK_TAKEN_SCRIPT}): one the take gave another tag (and the
   * entry holding its old tag, even with the same envelope), or a take that
   * did not run, is never acknowledged by mistake.
   *
   * @param resp the take script's connection
   * @param deliveries deliveries to acknowledge
   * @param index the `unacked_index` key
   * @param unacked the `unacked` key
   * @param record this consumer's take record (the take script's `seq` and time)
   * @returns the deliveries left to acknowledge the usual way, once recorded
   */
  async ackBehindTake(
    resp: RespScripts,
    deliveries: readonly Delivery[],
    index: string,
    unacked: string,
    record: string,
  ): Promise<readonly Delivery[]> {
    const early: Pending[] = [];
    const rest: Delivery[] = [];
    for (const d of deliveries) {
      const e = this.#byDelivery.get(d);
      if (e && e.seq >= 0) early.push(e);
      else rest.push(d);
    }
    if (early.length === 0) return deliveries;
    const acked = await Promise.all(
      early.map((e) =>
        resp.evalScript(
          ACK_TAKEN,
          [index, unacked, record],
          [e.delivery.deliveryTag, e.raw, String(e.seq)],
          Number,
        ).catch(() => 0)
      ),
    );
    for (let i = 0; i < early.length; i++) if (acked[i] !== 1) rest.push(early[i].delivery);
    return rest;
  }

  /**
   * The `LREM` of `early` from its claim list, before any take script read
   * it, removed the element: acknowledged (a later park of the delivery
   * re-encodes it, see {@link EarlyDeliveries.ackedAtIntake}). One that
   * removed nothing says nothing sure (a claim whose text is not its bytes
   * matches nothing): the take script follows, and decides.
   *
   * @param early the early delivery
   */
  ackedClaim(early: Early): void {
    const e = this.#find(early.raw);
    if (e === early) this.#ackedClaim(e);
  }

  /**
   * The `LREM` of `early` failed unanswered: it may have run. The take
   * script that follows records the element if it did not; if that take
   * finds the element gone, the `LREM` removed it ({@link EarlyDeliveries.tookAll}
   * counts it acknowledged at intake, so a later reject parks it), rather
   * than a sweep: a sweep returns only a claim its waiter has not renewed
   * for the claim lease (30 s), and this one's renewed it before the wait
   * that handed it out, the `LREM` going out within `RECORD_WITHIN_MS` (200 ms)
   * of that (else the take script goes instead). Were it a sweep all the same,
   * a message parked twice is better than one lost.
   *
   * @param early the early delivery
   */
  lremUnanswered(early: Early): void {
    const e = this.#find(early.raw);
    if (e === early) e.lremUnsure = true;
  }

  /**
   * The take script of `early` could not be sent or answered within the
   * outage limit: settling it fails, also when asked for later (an
   * acknowledgement sent behind the take script that failed with it, say):
   * Redis was unreachable for the whole limit already, and the delivery is
   * left where it is, in its claim list (returned at close) or, when the
   * script ran unanswered, in `unacked` (restored after the visibility
   * timeout), rather than retried for another outage limit.
   *
   * @param early the early delivery
   * @param err the reason
   */
  giveUp(early: Early, err: Error): void {
    const e = this.#find(early.raw);
    if (e !== early) return;
    this.#remove(e);
    this.#givenUp.set(e.delivery, err);
    this.#anyGivenUp = true;
    e.reject(err);
  }

  /**
   * The taker closes: settling what still waits for its record fails.
   *
   * @param err the reason
   */
  rejectAll(err: Error): void {
    for (const e of this.#list) e.reject(err);
    this.#list.length = 0;
    this.#byDelivery.clear();
  }

  #find(raw: string): Pending | undefined {
    for (const e of this.#list) if (e.raw === raw) return e;
    return undefined;
  }

  #remove(e: Pending): void {
    const at = this.#list.indexOf(e);
    if (at >= 0) this.#list.splice(at, 1);
    this.#byDelivery.delete(e.delivery);
  }

  #ackedClaim(e: Pending): void {
    this.#ackedAtIntake.add(e.delivery);
    this.#anyAckedAtIntake = true;
    this.#settle(e, false);
  }

  #settle(e: Pending, gone: boolean): void {
    this.#remove(e);
    if (gone) {
      this.#gone.add(e.delivery);
      this.#anyGone = true;
    }
    e.resolve();
  }
}
