/**
 * Waiting for messages on Redis by claiming them, so that Celeriac and
 * Python workers sharing a queue take turns.
 *
 * Python workers wait with `BRPOP`, which takes the message. Redis serves
 * clients blocked on a list in the order they blocked; a waiter that only
 * peeks (a `BLMOVE` of the list onto itself) is served, leaves the message
 * where it was, and the next blocked `BRPOP` takes it — so an idle Celeriac
 * worker never won a message sent one at a time. A Celeriac worker therefore
 * waits with `BLMOVE queue → claim list`: it takes the message in its turn,
 * into a list of its own (`celeriac.claim.<broker id>|<list>`) that its next
 * take reads first, atomically with the `unacked` bookkeeping.
 *
 * A claim is registered in the sorted set `celeriac.claims`, scored with the
 * time its waiter last renewed it: before blocking, unless it did within
 * the last {@link CLAIM_RENEW_MS} ms (a worker answering one task at a time
 * blocks again every millisecond or so, and one renewal a second is enough).
 * A worker that dies between claiming and taking leaves at most one message
 * per list there; any Celeriac worker's restore sweep puts claims older than
 * {@link CLAIM_LEASE_SECONDS} back at the front of their queue (Python
 * workers do not know about claims). A broker closing puts its claims back
 * at once but leaves them registered until such a sweep: the server may see
 * a wait's connection close after the return (a close and a command on
 * another connection are not ordered), and a message that wait claims in
 * between is returned by the sweep, not lost.
 *
 * A waiter blocks on a connection of its own ({@link ClaimLink}): on a
 * single server a `RespConnection` ({@link respClaimLink}), through
 * Sentinel or Cluster an ioredis one ({@link ioredisClaimLink}).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Redis } from "ioredis";
import type { RespConnection } from "./resp_connection.ts";
import { MAXCLIENTS_ADVICE, MAXCLIENTS_REFUSAL } from "./redis_failures.ts";
import { maxclientsPassed, refusedAtMaxclients } from "./redis_maxclients.ts";
import { realFailure } from "./redis_guard.ts";
import { textOrNull } from "./resp_scripts.ts";
import { sleep } from "./sleep.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/** Milliseconds a watcher waits after its first failed wait; doubled up to {@link WAIT_RETRY_MAX_MS}. */
export const WAIT_RETRY_FIRST_MS = 50;
/** The longest a watcher waits between failed waits. */
export const WAIT_RETRY_MAX_MS = 2000;

/** The sorted set of claim lists (prefixed like every key). */
export const CLAIMS_KEY = "celeriac.claims";

/**
 * Seconds after which an abandoned claim goes back to its queue. A live
 * waiter renews its claim before it blocks, at most every
 * {@link CLAIM_RENEW_MS} ms (a wait lasts at most a second).
 */
export const CLAIM_LEASE_SECONDS = 30;

/**
 * Milliseconds within which a waiter that renewed its claim blocks again
 * without renewing it (far below {@link CLAIM_LEASE_SECONDS}).
 *
 * @example
 * ```ts
 * import { CLAIM_RENEW_MS } from "./redis_claims.ts";
 * CLAIM_RENEW_MS; // 1000
 * ```
 */
export const CLAIM_RENEW_MS = 1000;

const CLAIM_PREFIX = "celeriac.claim.";

/**
 * The claim list of broker `id` for `list` (both unprefixed).
 *
 * @param id the broker instance's id
 * @param list the queue list (queue name with its priority suffix)
 * @returns the claim list's name
 */
export function claimList(id: string, list: string): string {
  return `${CLAIM_PREFIX}${id}|${list}`;
}

/**
 * The queue list a claim list belongs to, or `null` for another name.
 *
 * @param claim a claim list's name (unprefixed)
 * @returns the queue list
 */
export function claimedList(claim: string): string | null {
  if (!claim.startsWith(CLAIM_PREFIX)) return null;
  const bar = claim.indexOf("|", CLAIM_PREFIX.length);
  return bar < 0 ? null : claim.slice(bar + 1);
}

/**
 * Move every message of a claim list back to the front of its queue list
 * (newest first, so the oldest is taken first), and unregister the claim.
 * KEYS = claim list, queue list, claims set; ARGV = claims-set member, then
 * a mode and its time (seconds): nothing (a release: unconditional),
 * `keep` and the time (a closing broker: registered as renewed then), or
 * `stale` and the sweep's cutoff (a sweep: nothing changes, 0 returned,
 * unless the claim is still registered at or before the cutoff; a waiter
 * that renewed since the sweep listed it may have handed its claim out
 * early already). Returns how many messages moved.
 */
export const RETURN_CLAIM_SCRIPT = String.raw`
if ARGV[2] == 'stale' then
  local at = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if not at or tonumber(at) > tonumber(ARGV[3]) then return 0 end
end
local n = 0
while true do
  local v = redis.call('LPOP', KEYS[1])
  if not v then break end
  redis.call('RPUSH', KEYS[2], v)
  n = n + 1
end
if ARGV[2] == 'keep' then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return n
`;

/**
 * The connection a {@link ClaimWatcher} blocks on (of its own: nothing else
 * may wait behind its block), with the commands of one claim list.
 *
 * @example
 * ```ts ignore
 * const link: ClaimLink = respClaimLink(conn, "celery", claimList(id, "celery"), "celeriac.claims");
 * ```
 */
export interface ClaimLink {
  /** Register the claim as alive (a `ZADD` of the claims set, now). */
  renew(): Promise<unknown>;
  /**
   * `BLMOVE queue claim RIGHT LEFT 1`, sent right behind a renewal framed
   * before it, on the same connection.
   *
   * @returns the element claimed, or null after the 1 s timeout
   */
  move(): Promise<string | null>;
  /**
   * Close at once: a wait under way ends (rejects) here; the server may
   * still serve it until it sees the close.
   */
  close(): void;
}

/**
 * The {@link ClaimLink} of an ioredis connection (Sentinel, Cluster). A
 * command that failed on the lost connection rejects with the connection's
 * own error (`the connection was lost: connect ECONNREFUSED host:port`),
 * as `guardRedis` (redis_guard.ts) says its failures.
 *
 * @example
 * ```ts ignore
 * const link = ioredisClaimLink(duplicateRedis(client, url, "celeriac-watch"), url, key, claim, claims, member);
 * ```
 *
 * @param conn a connection of its own (it blocks)
 * @param rawUrl its URL, whose connections' last error names why a command failed
 * @param key the queue list (prefixed)
 * @param claim the claim list (prefixed)
 * @param claims the claims set (prefixed)
 * @param member the claim list's member in it (unprefixed)
 * @returns the link
 */
export function ioredisClaimLink(
  conn: Redis,
  rawUrl: string,
  key: string,
  claim: string,
  claims: string,
  member: string,
): ClaimLink {
  // A command ioredis gave up on names the connection's own error, not its "max retries" wording.
  const real = (err: unknown): never => {
    throw realFailure(rawUrl, err);
  };
  return {
    renew: () => conn.zadd(claims, Date.now() / 1000, member).catch(real),
    move: () => conn.blmove(key, claim, "RIGHT", "LEFT", 1).catch(real),
    close: () => conn.disconnect(),
  };
}

/**
 * Milliseconds a failed wait on a {@link respClaimLink} pauses before it
 * reports the failure (an unreachable server must not make a taker spin).
 */
const FAILED_WAIT_PAUSE_MS = 100;

/**
 * The {@link ClaimLink} of a {@link RespConnection} (a single server). The
 * element claimed is decoded as UTF-8 (invalid bytes become U+FFFD, as the
 * take script's reply is decoded). A wait that fails reports it after
 * {@link FAILED_WAIT_PAUSE_MS} ms (sooner when the link closes); a wait sent
 * while the connection reconnects waits for the attempt. Closing drops the
 * connection at once: a blocked `BLMOVE` does not hold up a shutdown.
 *
 * @example
 * ```ts ignore
 * const conn = scripts.connection({ name: "celeriac-watch", role: "wait" });
 * const link = respClaimLink(conn, key, claim, claims, member);
 * ```
 *
 * @param conn a connection of its own (it blocks; give it a reply timeout above 1 s)
 * @param key the queue list (prefixed)
 * @param claim the claim list (prefixed)
 * @param claims the claims set (prefixed)
 * @param member the claim list's member in it (unprefixed)
 * @returns the link
 */
export function respClaimLink(
  conn: RespConnection,
  key: string,
  claim: string,
  claims: string,
  member: string,
): ClaimLink {
  const closing = new AbortController();
  const move = ["BLMOVE", key, claim, "RIGHT", "LEFT", "1"];
  return {
    renew: () => conn.command(["ZADD", claims, String(Date.now() / 1000), member]),
    move: () =>
      conn.command(move, textOrNull).catch(async (err) => {
        await sleep(FAILED_WAIT_PAUSE_MS, closing.signal);
        throw err;
      }),
    close: () => {
      closing.abort();
      void conn.close(0);
    },
  };
}

/**
 * The failed waits of a broker's watchers, shared by them: each cause is
 * warned about once per episode, which lasts from a watcher's failed wait
 * until every watcher that failed has waited again without failing (or was
 * closed). A later episode (Redis at `maxclients` again after its limit was
 * raised, say) is warned about again. A refusal at `maxclients` is warned
 * about once per episode of the server's (redis_maxclients.ts), which a
 * refused reconnect of another connection may have started: its warning
 * gave the advice already.
 *
 * @example
 * ```ts
 * import { WaitFailures } from "./redis_claims.ts";
 * const failures = new WaitFailures("redis://127.0.0.1:6379/0");
 * const watcher = {};
 * failures.failed(watcher, "ERR max number of clients reached"); // true: warn
 * failures.failed(watcher, "ERR max number of clients reached"); // false: warned already
 * failures.recovered(watcher); // true: the episode is over
 * failures.failed(watcher, "ERR max number of clients reached"); // true: a new episode
 * failures.recovered(watcher);
 * ```
 */
export class WaitFailures {
  readonly #server: string;
  readonly #warned = new Set<string>();
  readonly #failing = new Set<object>();

  /**
   * @param server the server's label (its URL, password masked), whose
   *   `maxclients` episodes the watchers share with its connections
   */
  constructor(server: string) {
    this.#server = server;
  }

  /**
   * Count a failed wait of `watcher`.
   *
   * @param watcher the watcher whose wait failed
   * @param cause the failure's message
   * @returns whether `cause` is new in this episode (to be warned about)
   */
  failed(watcher: object, cause: string): boolean {
    this.#failing.add(watcher);
    if (MAXCLIENTS_REFUSAL.test(cause)) return refusedAtMaxclients(this.#server, watcher);
    if (this.#warned.has(cause)) return false;
    this.#warned.add(cause);
    return true;
  }

  /**
   * `watcher` waited without failing, or was closed: once no watcher is
   * failing the episode is over, and its causes are warned about again.
   *
   * @param watcher the watcher
   * @returns whether this ended an episode
   */
  recovered(watcher: object): boolean {
    maxclientsPassed(this.#server, watcher);
    if (!this.#failing.delete(watcher) || this.#failing.size > 0) return false;
    this.#warned.clear();
    return true;
  }
}

/** Waits on one list by claiming its next message. */
export class ClaimWatcher {
  readonly #link: ClaimLink;
  readonly #renewEvery: number;
  /** When the last renewal was sent (`performance.now()`); -Infinity before the first. */
  #renewedAt = -Infinity;
  #inflight: Promise<boolean> | null = null;
  #claims = 0;
  /** The element the last wait claimed, with the epoch its wait was sent in (see {@link ClaimWatcher.takeClaimed}). */
  #claimed: { raw: string; epoch: number } | null = null;
  /** Milliseconds before the next wait after a failed one; 0 after a wait that did not fail. */
  #retryIn = 0;
  readonly #failures: WaitFailures;
  readonly #closing = new AbortController();

  /**
   * @param link the connection it blocks on, with its list's commands
   * @param renewEvery milliseconds within which a wait does not renew
   *   again (default {@link CLAIM_RENEW_MS}; 0 renews before every wait)
   * @param failures the failed waits of a broker's watchers, shared by them so that each
   *   cause is warned about once per episode (default: this watcher's own, on a server
   *   of its own)
   */
  constructor(
    link: ClaimLink,
    renewEvery = CLAIM_RENEW_MS,
    failures = new WaitFailures(`watcher ${crypto.randomUUID()}`),
  ) {
    this.#link = link;
    this.#renewEvery = renewEvery;
    this.#failures = failures;
  }
  /**
   * Messages claimed so far. A taker compares it before and after a take:
   * a claim that landed while its take script ran (a wait left in flight by
   * an aborted take) is taken at once instead of after the next 1 s wait.
   */
  get claims(): number {
    return this.#claims;
  }

  /**
   * The element the last wait claimed and the `epoch` that wait was sent
   * with, once: the next call returns null (until another wait claims).
   *
   * @returns the claimed element and its wait's epoch, or null
   */
  takeClaimed(): { raw: string; epoch: number } | null {
    const c = this.#claimed;
    this.#claimed = null;
    return c;
  }

  /**
   * Resolves true when a message was claimed, false after a 1 s timeout or an error.
   * After a failed wait the next one is sent {@link WAIT_RETRY_FIRST_MS} ms later, doubling
   * up to {@link WAIT_RETRY_MAX_MS} while they keep failing (a server refusing connections
   * at `maxclients` is not asked again at once, over and over).
   *
   * @param epoch remembered with what this wait claims ({@link ClaimWatcher.takeClaimed})
   *   when it sends a new wait; a wait already in flight keeps the epoch it was sent with
   */
  wait(epoch = 0): Promise<boolean> {
    if (this.#inflight) return this.#inflight;
    this.#inflight =
      (this.#retryIn ? sleep(this.#retryIn, this.#closing.signal) : Promise.resolve())
        .then(() => this.#closing.signal.aborted ? false : this.#send(epoch))
        .finally(() => this.#inflight = null);
    return this.#inflight;
  }

  #send(epoch: number): Promise<boolean> {
    // The renewal and the wait go out together on the waiting connection, which runs them in
    // order: the claim is registered before the block, without a round trip in between.
    const now = performance.now();
    const renewing = now - this.#renewedAt >= this.#renewEvery;
    if (renewing) this.#renewedAt = now;
    return Promise.allSettled([
      renewing ? this.#link.renew() : null,
      this.#link.move(),
    ]).then(([renewed, moved]) => {
      const claimed = moved.status === "fulfilled" && moved.value !== null;
      if (claimed) {
        this.#claims++;
        this.#claimed = { raw: moved.value as string, epoch };
      }
      // A failed renewal is sent again before the next wait.
      if (renewed.status === "rejected") this.#renewedAt = -Infinity;
      if (moved.status === "rejected") this.#failed(moved.reason);
      else {
        this.#retryIn = 0;
        if (this.#failures.recovered(this)) log.info("Waiting for messages again: Redis answers");
      }
      return renewed.status === "fulfilled" && claimed;
    });
  }

  #failed(err: unknown): void {
    this.#retryIn = Math.min(Math.max(this.#retryIn * 2, WAIT_RETRY_FIRST_MS), WAIT_RETRY_MAX_MS);
    if (this.#closing.signal.aborted) return;
    const cause = err instanceof Error ? err.message : String(err);
    const full = MAXCLIENTS_REFUSAL.test(cause);
    const advice = full ? `: Redis refuses new connections. ${MAXCLIENTS_ADVICE}` : "";
    const line = "Cannot wait for messages: {error}{advice}; retrying in {ms} ms";
    const values = { error: cause, advice, ms: this.#retryIn };
    if (this.#failures.failed(this, cause)) log.warn(line, values);
    else log.debug(line, values);
  }

  /** Resolves once no wait is under way (at once when none is). */
  async settled(): Promise<void> {
    await this.#inflight;
  }

  /** Stop waiting (a claim made meanwhile stays for the owner or a sweep to return). */
  close(): void {
    this.#closing.abort();
    this.#failures.recovered(this);
    this.#link.close();
  }
}
