/**
 * What workers share through the broker: the revoked task ids they all
 * skip ({@link RevokedEntry}) and the rate-limit token buckets
 * ({@link TokenRequest}, {@link TokenGrant}).
 *
 * @module
 */

/**
 * A revoked task id and when the worker may forget it.
 *
 * @example Remembering a revocation for three hours
 * ```ts
 * import type { Broker, RevokedEntry } from "@celeriac/celeriac/protocol";
 * async function remember(broker: Broker, id: string): Promise<void> {
 *   const entry: RevokedEntry = { id, expiresAt: new Date(Date.now() + 3 * 3600_000) };
 *   await broker.addRevoked([entry]);
 * }
 * ```
 */
export interface RevokedEntry {
  /** The task id. */
  id: string;
  /** When the entry expires. */
  expiresAt: Date;
}

/**
 * How many revoked ids a broker keeps at most: those that expire last
 * (Celery's `REVOKES_MAX`, as many as a worker remembers). Redis's
 * `celeriac.revoked` set and Deno KV's `["revoked", id]` entries both keep
 * this many; on RabbitMQ one revoke stores this many at most and a read
 * gives as many.
 *
 * @example
 * ```ts ignore
 * import { REVOKED_KEPT } from "./shared_state.ts";
 * REVOKED_KEPT; // 50000
 * ```
 */
export const REVOKED_KEPT = 50_000;

/**
 * A request for tokens of one bucket (see {@link Broker.acquireTokens}).
 * A bucket starts full, refills at `rate` tokens per second up to
 * `capacity`, and grants whole tokens.
 *
 * @example Ten runs per second, no bursts (Celery's bucket)
 * ```ts
 * import type { TokenRequest } from "@celeriac/celeriac/protocol";
 * const request: TokenRequest = { key: "tasks.scrape", rate: 10, capacity: 1, count: 5 };
 * ```
 */
export interface TokenRequest {
  /** Bucket name (Celeriac uses the task name). */
  key: string;
  /** Tokens added per second. */
  rate: number;
  /** Most tokens the bucket holds (the largest burst). */
  capacity: number;
  /** Tokens wanted now. */
  count: number;
}

/**
 * The answer to a {@link TokenRequest}.
 *
 * @example Running what was granted, asking again later for the rest
 * ```ts
 * import type { TokenGrant } from "@celeriac/celeriac/protocol";
 * function plan(grant: TokenGrant, wanted: number): string {
 *   const rest = wanted - grant.granted;
 *   return rest ? `run ${grant.granted}, ask again in ${grant.retryAfterMs} ms` : "run all";
 * }
 * plan({ granted: 1, retryAfterMs: 100 }, 3); // "run 1, ask again in 100 ms"
 * ```
 */
export interface TokenGrant {
  /** Tokens granted, from 0 to the count asked for. */
  granted: number;
  /** Milliseconds until the next token is due; 0 when all were granted. */
  retryAfterMs: number;
}
