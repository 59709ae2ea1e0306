/**
 * Taking messages from Redis: one atomic script call (redis_take_script.ts) takes a batch and
 * records it in `unacked` / `unacked_index` (reconciling a take whose
 * reply was lost), malformed elements are parked, and while the queues are
 * empty the taker waits by claiming (redis_watchers.ts, redis_claims.ts), riding out a
 * Redis outage by retrying every {@link RECONNECT_POLL_MS} ms. A message
 * the wait claims is handed out at once, its take script following it
 * (redis_early.ts, redis_deferred_take.ts, redis_take_stash.ts; recorded, riding out an
 * outage, by redis_take_record.ts): an idle worker starts a task one Redis round trip sooner.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { decodeEnvelope, type Envelope } from "../protocol/envelope.ts";
import { closeWait, sleep, untilAborted } from "./sleep.ts";
import { DEFAULT_OUTAGE_LIMIT } from "./outage.ts";
import type { Delivery } from "./port.ts";
import { BrokerConnectionError } from "./errors.ts";
import type { RedisScope } from "./redis_commands.ts";
import { rotatedLists } from "./redis_keys.ts";
import { claimList } from "./redis_claims.ts";
import { ackClaim, type ClaimAckTaker } from "./redis_claim_ack.ts";
import { EarlyDeliveries } from "./redis_early.ts";
import { RECONNECT_POLL_MS, recordTake, type RecordTaker } from "./redis_take_record.ts";
import { DeferredTake } from "./redis_deferred_take.ts";
import { toDelivery } from "./redis_bodies.ts";
import { TakeScript } from "./redis_take_script.ts";
import { ClaimWatchers } from "./redis_watchers.ts";
import { TakeStash } from "./redis_take_stash.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/**
 * One broker's takes: its claim watchers (one blocked connection per
 * list: without ioredis on a single server, see `respClaimLink`) and its
 * take record. It keeps no delivery's raw envelope (parking
 * reads it back from the `unacked` entry, see `envelopeOfUnacked`).
 *
 * @example
 * ```ts ignore
 * import { RedisTaker } from "./redis_take.ts";
 * const taker = new RedisTaker(scope, closing, (left) => settler.requeue(left));
 * const deliveries = await taker.take(["celery"], 10, AbortSignal.timeout(5000));
 * await taker.close();
 * ```
 */
export class RedisTaker {
  readonly #scope: RedisScope;
  readonly #watchers: ClaimWatchers;
  #rotation = 0;
  /** The take script: its record, sequence ids, a take whose reply was lost. */
  readonly #script: TakeScript;
  /**
   * Claims counted (over every watcher) before the last take that found
   * every list empty; null when the last take may have left messages.
   */
  #emptyAt: number | null = null;
  /** Deliveries handed out before their take script replied (see {@link RedisTaker.#handOut}). */
  readonly #early = new EarlyDeliveries();
  /** The take script sent after an early hand-out, until its reply is handled. */
  #background: Promise<void> | null = null;
  /** That take script before it is sent: see {@link RedisTaker.#sendDeferred}. */
  readonly #deferred = new DeferredTake(() => this.#sendDeferred());
  /** What that take took beside the early delivery: the take that sent it returns it. */
  readonly #stash: TakeStash;

  /** When a take script last failed to reach Redis (`Date.now()`), 0 once one ran since. */
  #downSince = 0;

  /** What recording an early hand-out needs (see `recordTake`). */
  readonly #recordTaker: RecordTaker;

  /** What acknowledging a lone early hand-out from its claim list needs (see `ackClaim`). */
  readonly #claimAckTaker: ClaimAckTaker = {
    early: this.#early,
    claimKey: (list) => this.#scope.k(claimList(this.#watchers.id, list)),
    emptyBehind: (lists) => this.#script.emptyBehind(lists),
    emptied: (claimedBefore) => this.#emptyAt = claimedBefore,
    record: (early, list, claimedBefore, lists) =>
      recordTake(this.#recordTaker, early, [], 2, list, claimedBefore, lists),
  };

  /**
   * @param scope the broker's connection and key prefix
   * @param closing aborted when the broker closes
   * @param putBack puts recorded deliveries back at the front of their queues, in the order given
   * @param outageLimit seconds the take script of an early hand-out is retried while Redis is
   *   unreachable (default `DEFAULT_OUTAGE_LIMIT`); then settling the delivery fails
   */
  constructor(
    scope: RedisScope,
    closing: AbortSignal,
    putBack: (deliveries: Delivery[]) => Promise<void>,
    outageLimit: number = DEFAULT_OUTAGE_LIMIT,
  ) {
    this.#scope = scope;
    this.#stash = new TakeStash(putBack);
    this.#watchers = new ClaimWatchers(scope);
    this.#script = new TakeScript(scope, this.#watchers.id, this.#early);
    this.#recordTaker = {
      script: this.#script,
      early: this.#early,
      stash: this.#stash,
      closing,
      limitMs: outageLimit * 1000,
      rotate: () => this.#rotation++,
      emptied: (claimedBefore) => this.#emptyAt = claimedBefore,
    };
  }

  /**
   * Take up to `max` messages atomically, waiting while the queues are
   * empty, and while Redis is unreachable (retrying every 100 ms until it is
   * back or `signal` aborts).
   */
  async take(queues: readonly string[], max: number, signal: AbortSignal): Promise<Delivery[]> {
    this.#sendDeferred(max);
    if (this.#background) {
      // Recording the last early hand-out (repeating its take while Redis is unreachable).
      await untilAborted(this.#background, signal);
      if (signal.aborted) {
        this.#stash.putBackAfter(this.#background);
        return [];
      }
    }
    if (this.#stash.size > 0) return this.#stash.take(max);
    // The last take emptied every list and nothing was claimed since: wait first (a message
    // queued meanwhile ends the wait at once). Not after the record of an early hand-out that
    // read its claim list alone, unless every list was found empty right behind it: that record
    // left the queues unread, and a burst queued behind the early message is taken up to max at
    // once, not claimed one message per wait.
    if (this.#emptyAt !== null && this.#emptyAt === this.#watchers.claims(null)) {
      const early = await this.#waitAny(rotatedLists(queues, this.#rotation), signal, max);
      if (early) return early;
    }
    this.#emptyAt = null;
    while (!signal.aborted) {
      const unsure = this.#script.unsure;
      const lists = unsure?.lists ?? rotatedLists(queues, this.#rotation);
      const first = unsure?.first ?? null;
      const claims = this.#watchers.claims(lists);
      const claimedBefore = this.#watchers.claims(null);
      let got: Delivery[];
      let taken: number;
      try {
        [got, taken] = await this.#script.run(lists, max, first, signal);
      } catch (err) {
        if (!(err instanceof BrokerConnectionError)) throw err;
        // Ride out the outage here, as the AMQP transport does: retry soon after Redis is back.
        if (this.#downSince === 0) {
          this.#downSince = Date.now();
          log.warn("Redis is unreachable ({error}); taking again as soon as it is back", {
            error: err.message,
          });
        }
        await sleep(RECONNECT_POLL_MS, signal);
        continue;
      }
      if (this.#downSince !== 0) {
        log.info("Redis is back after {seconds} s: taking again", {
          seconds: ((Date.now() - this.#downSince) / 1000).toFixed(1),
        });
        this.#downSince = 0;
      }
      if (got.length > 0) {
        this.#rotation++;
        if (taken < max) this.#emptyAt = claimedBefore;
        return got;
      }
      if (this.#watchers.claims(lists) === claims) {
        const early = await this.#waitAny(lists, signal, max);
        if (early) return early;
      }
    }
    return [];
  }

  /**
   * Whether the last take script failed to reach Redis and none ran since:
   * a take now rides out an outage (a Cluster take over several queues does
   * not wait for it once another queue's take returned).
   */
  get unreachable(): boolean {
    return this.#downSince !== 0;
  }

  /**
   * Wait for the record of those of `deliveries` handed out early (sending
   * their take script if it waits): see `EarlyDeliveries.settleable`.
   *
   * @param deliveries deliveries this taker handed out
   * @param parking keep those acknowledged at intake ({@link RedisTaker.ackedAtIntake})
   * @returns a promise of those left to settle, or null when none waits
   */
  settleable(
    deliveries: readonly Delivery[],
    parking = false,
  ): Promise<readonly Delivery[]> | null {
    if (this.#early.size > 0) this.#sendDeferred();
    return this.#early.settleable(deliveries, parking);
  }

  /**
   * Whether `delivery` was acknowledged at intake, straight from its claim
   * list: see `EarlyDeliveries.ackedAtIntake`.
   *
   * @param delivery a delivery this taker handed out
   * @returns true when it was
   */
  ackedAtIntake(delivery: Delivery): boolean {
    return this.#early.ackedAtIntake(delivery);
  }

  /**
   * Whether one of `deliveries` was handed out early and is not recorded yet.
   *
   * @param deliveries deliveries this taker handed out
   * @returns true when one of them waits for its take script
   */
  handedOutEarly(deliveries: readonly Delivery[]): boolean {
    return this.#early.waiting(deliveries);
  }

  /**
   * Acknowledge deliveries handed out early and not recorded yet right
   * behind their take script (sent now if it waits), on its connection:
   * see `EarlyDeliveries.ackBehindTake`.
   *
   * @param deliveries deliveries to acknowledge
   * @param index the `unacked_index` key
   * @param unacked the `unacked` key
   * @returns the deliveries left to acknowledge the usual way, once recorded
   */
  ackBehindTake(
    deliveries: readonly Delivery[],
    index: string,
    unacked: string,
  ): Promise<readonly Delivery[]> {
    const resp = this.#scope.resp;
    if (!resp || this.#early.size === 0) return Promise.resolve(deliveries);
    const lone = this.#deferred.claim;
    // An LREM matches only a text that is its bytes: not so with U+FFFD (not valid UTF-8).
    if (lone !== null && this.#early.size === 1 && deliveries.includes(lone.early.delivery)) {
      if (!lone.early.raw.includes("\uFFFD")) {
        // Straight from its claim list (see `ackClaim`): the take script goes only if need be.
        this.#deferred.take();
        const { done, left } = ackClaim(this.#claimAckTaker, resp, lone, deliveries);
        this.#background = done.finally(() => this.#background = null);
        return this.#background.then(left);
      }
    }
    // Framed in this turn, in this order: the take script (unless out already), then the acks.
    this.#sendDeferred();
    const record = this.#script.recordKey;
    return this.#early.ackBehindTake(resp, deliveries, index, unacked, record);
  }

  /**
   * Deliveries a take recorded that were not handed out yet (the taker is
   * closing): for the broker to put back in their queues.
   *
   * @returns them; the taker keeps none afterwards
   */
  async leftOver(): Promise<Delivery[]> {
    this.#sendDeferred();
    // Each waited for CLOSE_WAIT_MS at most: a server that stopped answering. What a record
    // took after that stays unacknowledged, and a put-back retrying ends as the broker closes.
    if (this.#background) await closeWait(this.#background);
    return await this.#stash.leftOver();
  }

  /**
   * A wait ended with a claimed element. Hand it out at once, before the take
   * script that records it in `unacked` replies, when the claim is surely
   * still in its claim list: its wait was sent while no take was under way
   * and no take was sent since, so no take can have taken it. The take
   * script (sent by the next take: the one that would have followed the
   * wait, up to its max beside this element, this claim list first; by a settling, its timer or
   * closing: this claim list alone) goes out once the delivery is on its way
   * ({@link RedisTaker.#sendDeferred}); its reply gives the delivery its
   * recorded tag, and its other messages are the next take's. Settling the
   * delivery waits for that record ({@link RedisTaker.settleable}).
   */
  #handOut(
    claim: { raw: string; epoch: number } | null,
    list: string,
    lists: string[],
    max: number,
  ): Delivery[] | null {
    // max >= 2: the take (its claim list first) surely takes this element, as at most one
    // claim older than it can be left in that list.
    if (claim === null || claim.epoch < 0 || claim.epoch !== this.#script.sent || max < 2) {
      return null;
    }
    if (this.#script.unsure !== null || this.#early.has(claim.raw)) return null;
    let env: Envelope;
    try {
      env = decodeEnvelope(claim.raw);
    } catch {
      return null; // the take script parks it
    }
    if (env.deliveryTag === "") return null;
    const d = toDelivery(env, list, env.deliveryTag);
    const early = this.#early.add(claim.raw, d);
    const claimedBefore = this.#watchers.claims(null);
    // Sent by the next take, it takes this element and up to that take's max beside (which that
    // take returns; at least 2 in all, see above); sent by a settling, the timer or closing, only
    // this claim list (this element and at most one older claim): no take may come for long (the
    // consume loop may sleep with its ETA limit or backlog reached), and the queues' messages
    // stay there for any worker rather than recorded and held out of sight (and restored after
    // the visibility timeout).
    this.#deferred.defer(
      (next) =>
        (next !== null
          ? recordTake(this.#recordTaker, early, lists, Math.max(2, next + 1), list, claimedBefore)
          : recordTake(this.#recordTaker, early, [], 2, list, claimedBefore, lists))
          .finally(() => this.#background = null),
      { early, list, lists, claimedBefore },
    );
    return [d];
  }

  /**
   * Send the take script of an early hand-out, unless sent already. It waits
   * until the delivery is on its way (the next take, or the first settling
   * of the delivery, sends it; at the latest `RECORD_WITHIN_MS` after
   * the hand-out): on a busy host, the write that wakes Redis can cost the
   * thread its CPU for as long as Redis runs.
   *
   * @param next the max of the take that sends it (which returns what the
   *   script takes beside the early delivery, up to that max); null when a
   *   settling, the timer or closing sends it: the early delivery's claim
   *   list alone
   */
  #sendDeferred(next: number | null = null): void {
    const send = this.#deferred.take();
    if (send !== null) this.#background = send(next);
  }

  /**
   * Wait until a watcher of `lists` claims a message (or 1 s passes); hand
   * the claimed message out at once when it can be ({@link #handOut}).
   *
   * @returns the delivery handed out, or null when a take must follow
   */
  async #waitAny(
    lists: string[],
    signal: AbortSignal,
    max: number,
  ): Promise<Delivery[] | null> {
    // -1: a wait sent while a take is under way is never handed out early.
    const won = await this.#watchers.waitAny(
      lists,
      signal,
      this.#script.running ? -1 : this.#script.sent,
    );
    if (won === null) return null;
    return this.#handOut(won.claim, won.list, lists, max);
  }

  /**
   * Stop waiting on `queues` (no longer consumed): the record of an early
   * hand-out from one is sent and waited for first (it reads their claim
   * lists), then their claims go back to their queues (see
   * `ClaimWatchers.release`).
   *
   * @param queues queues no longer taken from
   */
  async release(queues: readonly string[]): Promise<void> {
    this.#sendDeferred();
    if (this.#background) await closeWait(this.#background);
    await this.#watchers.release(rotatedLists(queues, 0));
  }

  /**
   * Put claims back at the front of their queues (see `ClaimWatchers.returnClaims`).
   *
   * @param own this broker's claims, rather than abandoned ones
   * @returns how many messages moved
   */
  returnClaims(own: boolean): Promise<number> {
    return this.#watchers.returnClaims(own);
  }

  /** Stop waiting and put this broker's claims back in their queues. */
  async close(): Promise<void> {
    this.#deferred.stop();
    this.#sendDeferred();
    if (this.#background) await closeWait(this.#background);
    this.#early.rejectAll(
      new BrokerConnectionError(this.#scope.rawUrl, undefined, {
        reason: "the broker closed before the take was recorded",
        hint: "Settle deliveries before closing the broker",
        transient: false,
      }),
    );
    await this.#watchers.close();
    // The record only serves this consumer's next take; without this it lingers until it expires.
    // Without a take there is none (and a broker closed while connecting must not wait for Redis).
    // A server that stopped answering is waited for CLOSE_WAIT_MS at most; the record expires.
    if (this.#script.sent === 0) return;
    await closeWait(
      this.#scope.client.del(this.#script.recordKey).catch((err) =>
        log.debug("Could not delete the take record: {error}", { error: (err as Error).message })
      ),
    );
  }
}
