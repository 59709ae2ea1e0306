/**
 * The claiming waits of one Redis taker (redis_take.ts): a
 * {@link ClaimWatcher} per queue list, each blocking on a connection of its
 * own (a `RespConnection` on a single server, an ioredis duplicate through
 * Sentinel or Cluster), the claims they made, and the return of claims to
 * their queues: this broker's own on close, and abandoned ones (not renewed
 * for {@link CLAIM_LEASE_SECONDS}) on every restore sweep.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  CLAIM_LEASE_SECONDS,
  claimedList,
  type ClaimLink,
  claimList,
  CLAIMS_KEY,
  ClaimWatcher,
  ioredisClaimLink,
  respClaimLink,
  WaitFailures,
} from "./redis_claims.ts";
import type { RedisScope } from "./redis_commands.ts";
import type { Redis } from "ioredis";
import { duplicateRedis } from "./redis_connection.ts";
import { closeWait } from "./sleep.ts";
import { maskPassword } from "./errors.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/** What a wait claimed: the list, and the element with its wait's epoch (if still unread). */
export interface Won {
  /** The queue list whose watcher claimed. */
  readonly list: string;
  /** The element and the epoch its wait was sent with; null when read already. */
  readonly claim: { raw: string; epoch: number } | null;
}

/**
 * The claim watchers of one taker, by queue list (created on first wait).
 *
 * @example
 * ```ts ignore
 * import { ClaimWatchers } from "./redis_watchers.ts";
 * const watchers = new ClaimWatchers(scope);
 * const won = await watchers.waitAny(["celery"], AbortSignal.timeout(5000), 0);
 * await watchers.close();
 * ```
 */
export class ClaimWatchers {
  readonly #scope: RedisScope;
  readonly #watchers = new Map<string, ClaimWatcher>();
  /** The watchers' failed waits (each cause is warned about once per episode). */
  readonly #failures: WaitFailures;
  /** This broker's id in its claim lists (see redis_claims.ts). */
  readonly id: string = crypto.randomUUID().replaceAll("-", "").slice(0, 16);

  /** @param scope the broker's connection and key prefix */
  constructor(scope: RedisScope) {
    this.#scope = scope;
    // The label of the server's RespConnections (resp_outages.ts: one maxclients episode).
    this.#failures = new WaitFailures(maskPassword(scope.rawUrl));
  }

  /**
   * Messages claimed so far by the watchers of `lists` (those not watched
   * yet claimed none), or by every watcher when `lists` is null.
   *
   * @param lists queue lists, or null for all
   * @returns the count
   */
  claims(lists: readonly string[] | null): number {
    let n = 0;
    if (lists === null) { for (const w of this.#watchers.values()) n += w.claims; }
    else for (const l of lists) n += this.#watchers.get(l)?.claims ?? 0;
    return n;
  }

  /**
   * Wait until a watcher of `lists` claims a message (or 1 s passes, or
   * `signal` aborts; already aborted, it sends no wait and resolves null).
   *
   * @param lists queue lists to wait on
   * @param signal ends the wait
   * @param epoch remembered with what a new wait claims (see `ClaimWatcher.wait`)
   * @returns the list that claimed and its claim, or null
   */
  async waitAny(lists: readonly string[], signal: AbortSignal, epoch: number): Promise<Won | null> {
    // Aborted already (a shutdown during the take script before it): no wait is sent. Its abort
    // event is gone, so a wait sent now would hold the take (and a warm shutdown) for its 1 s.
    if (signal.aborted) return null;
    const waits = lists.map((l) => {
      const w = this.#watcher(l);
      return w.wait(epoch).then((claimed) => claimed ? l : null);
    });
    const { promise: aborted, resolve } = Promise.withResolvers<null>();
    const onAbort = () => resolve(null);
    signal.addEventListener("abort", onAbort, { once: true });
    let won: string | null;
    try {
      won = await Promise.race([...waits, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    if (won === null || signal.aborted) return null;
    return { list: won, claim: this.#watchers.get(won)!.takeClaimed() };
  }

  #watcher(list: string): ClaimWatcher {
    let w = this.#watchers.get(list);
    if (!w) {
      const s = this.#scope;
      const member = claimList(this.id, list);
      const keys = [s.k(list), s.k(member), s.k(CLAIMS_KEY), member] as const;
      let link: ClaimLink;
      if (s.resp) {
        link = respClaimLink(s.resp.connection({ name: "celeriac-watch", role: "wait" }), ...keys);
      } else {
        const conn = duplicateRedis(s.client, s.rawUrl, "celeriac-watch", true) as unknown as Redis;
        conn.on("error", () => {});
        link = ioredisClaimLink(conn, s.rawUrl, ...keys);
      }
      w = new ClaimWatcher(link, undefined, this.#failures);
      this.#watchers.set(list, w);
    }
    return w;
  }

  /**
   * Put claims back at the front of their queues: this broker's own (on
   * close: they stay registered, renewed now, for a sweep after
   * {@link CLAIM_LEASE_SECONDS} to return what a wait the server has not
   * seen closed yet still claims), or every claim not renewed for that long.
   *
   * @param own this broker's claims, rather than abandoned ones
   * @returns how many messages moved
   */
  async returnClaims(own: boolean): Promise<number> {
    const s = this.#scope;
    const cutoff = String(Date.now() / 1000 - CLAIM_LEASE_SECONDS);
    const members = own
      ? [...this.#watchers.keys()].map((l) => claimList(this.id, l))
      : await s.client.zrangebyscore(s.k(CLAIMS_KEY), "-inf", cutoff);
    // A sweep returns a claim only if it is still stale when the script runs: its waiter may
    // have renewed it since, and claimed a message it handed out early.
    const mode = own ? ["keep", String(Date.now() / 1000)] : ["stale", cutoff];
    let moved = 0;
    for (const member of members) {
      const list = claimedList(member);
      if (list === null) continue;
      moved += await s.client.celeriacReturnClaim(
        s.k(member),
        s.k(list),
        s.k(CLAIMS_KEY),
        member,
        ...mode,
      );
    }
    if (moved > 0) log.info("Returned {n} claimed message(s) to their queues", { n: moved });
    return moved;
  }

  /**
   * Stop watching `lists` (their queue is no longer consumed): once the wait
   * under way on each has ended (within a second), its connection closes and
   * what it claimed goes back to the front of the list, unregistered. Without
   * this a wait sent before the queue was cancelled claims the next message
   * sent to it, which stays out of the queue until a sweep returns it
   * {@link CLAIM_LEASE_SECONDS} later.
   *
   * @param lists queue lists no longer waited on (those not watched are skipped)
   * @returns how many messages moved
   */
  async release(lists: readonly string[]): Promise<number> {
    const s = this.#scope;
    let moved = 0;
    for (const list of lists) {
      const w = this.#watchers.get(list);
      if (!w) continue;
      this.#watchers.delete(list);
      await w.settled();
      w.close();
      const member = claimList(this.id, list);
      moved += await s.client.celeriacReturnClaim(
        s.k(member),
        s.k(list),
        s.k(CLAIMS_KEY),
        member,
      );
    }
    if (moved > 0) log.info("Returned {n} claimed message(s) to their queues", { n: moved });
    return moved;
  }

  /**
   * Stop waiting and put this broker's claims back in their queues (see
   * {@link ClaimWatchers.returnClaims}).
   */
  async close(): Promise<void> {
    for (const w of this.#watchers.values()) w.close();
    // A server that stopped answering is waited for CLOSE_WAIT_MS at most: the claims it did
    // not return are returned by another broker's sweep once their lease ran out.
    await closeWait(
      this.returnClaims(true).catch((err) =>
        log.warn("Could not return claimed messages: {error}", { error: (err as Error).message })
      ),
    );
    this.#watchers.clear();
  }
}
