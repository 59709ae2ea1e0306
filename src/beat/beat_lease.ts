/**
 * One beat's view of the schedule store's lease: the fencing token it
 * holds, until when it may send under it, when to renew it, and the leader
 * it stands by for; and what it says when it takes, loses or takes again
 * the lease. Asks the store nothing: the beat loop does, and reports here.
 *
 * @module
 */

import { lazyLogger } from "../client/lazy_logger.ts";
import type { LeaseInfo } from "../broker/schedule_store.ts";

const log = lazyLogger(["celeriac", "beat"]);

/**
 * The lease as one beat holds it, fed with the store's answers.
 *
 * @example
 * ```ts
 * import { BeatLease } from "./beat_lease.ts";
 * const lease = new BeatLease("beat-1", 15_000);
 * const asked = Date.now();
 * lease.acquired(7, asked); // beat-1 leads with fencing token 7
 * lease.isLeader; // true, for 90% of the lease time after `asked`
 * lease.renewAt; // asked + 5_000
 * ```
 */
export class BeatLease {
  readonly #hostname: string;
  readonly #leaseMs: number;
  #token: number | null = null;
  #validUntil = 0;
  /** When this beat last asked for the lease it got (taken or renewed). */
  #renewedAt = 0;
  #renewAt = 0;
  /** The leader this beat last said it stands by for. */
  #standingBy: string | null = null;

  /**
   * No lease held yet.
   *
   * @param hostname the beat's id in the lease and in logs
   * @param leaseMs how long a lease lasts without renewal, in ms
   */
  constructor(hostname: string, leaseMs: number) {
    this.#hostname = hostname;
    this.#leaseMs = leaseMs;
  }

  /** Whether this beat holds the lease now (and may send). */
  get isLeader(): boolean {
    return this.#token !== null && Date.now() < this.#validUntil;
  }

  /** The fencing token this beat last got, even if its lease has run out since; or `null`. */
  get token(): number | null {
    return this.#token;
  }

  /** When to ask the store to renew the lease. */
  get renewAt(): number {
    return this.#renewAt;
  }

  /** Whether to ask the store for the lease at `now`: none held, or time to renew it. */
  due(now: number): boolean {
    return this.#token === null || now >= this.#renewAt;
  }

  /**
   * The store's answer to a request for the lease made at `asked`: the
   * fencing token got, or `null` when another beat holds it.
   */
  acquired(token: number | null, asked: number): void {
    if (token === null) {
      if (this.#token !== null) {
        log.warn("beat: {hostname} lost the lease", { hostname: this.#hostname });
      }
      this.#token = null;
      return;
    }
    if (this.#token !== null && this.#token !== token) this.#warnGap(token, asked);
    if (this.#token !== token) {
      log.info("beat: {hostname} is the leader (fencing token {token})", {
        hostname: this.#hostname,
        token,
      });
    }
    this.#token = token;
    this.#renewedAt = asked;
    this.#standingBy = null;
    // The server's lease outlives ours: it started counting after we asked.
    this.#validUntil = asked + this.#leaseMs * 0.9;
    this.#renewAt = asked + this.#leaseMs / 3;
  }

  /** Say which beat leads when it is not the one last said (`held`: the store's lease, if any). */
  standBy(held: LeaseInfo | null): void {
    if (held && held.holder !== this.#standingBy) {
      log.info(
        "beat: {leader} leads (fencing token {token}); {hostname} stands by to take over " +
          "if its lease runs out",
        { leader: held.holder, token: held.token, hostname: this.#hostname },
      );
    }
    this.#standingBy = held?.holder ?? this.#standingBy;
  }

  /**
   * The store refused a run under this beat's token, which is stale: it stops sending.
   *
   * @returns now: when the loop wakes next, to stand by or take the lease again
   */
  lost(): number {
    log.warn("beat: {hostname} lost the lease (fencing token {token} is stale): stops sending", {
      hostname: this.#hostname,
      token: this.#token,
    });
    this.#token = null;
    return Date.now();
  }

  /** Forget the token (its lease ran out, or was released). */
  drop(): void {
    this.#token = null;
  }

  /**
   * Warn that this beat's own lease ran out before it renewed it (a step blocked: a publish
   * hanging on a stalled broker, a slow store) and that it now leads under a new token: for
   * the gap, no beat held the lease (another could have taken over and sent).
   */
  #warnGap(token: number, asked: number): void {
    const held = asked - this.#renewedAt;
    log.warn(
      "beat: {hostname} did not renew its lease (fencing token {old}) for {held} s, longer " +
        "than the lease time {lease} s (a step blocked: a publish hanging on a stalled broker, " +
        "a slow store): it ran out, and no beat held the lease for about {gap} s; {hostname} " +
        "leads again with fencing token {token} (a run is recorded under its token before it " +
        "is sent: none is sent twice)",
      {
        hostname: this.#hostname,
        old: this.#token,
        token,
        held: (held / 1000).toFixed(1),
        lease: this.#leaseMs / 1000,
        gap: (Math.max(0, held - this.#leaseMs) / 1000).toFixed(1),
      },
    );
  }
}
