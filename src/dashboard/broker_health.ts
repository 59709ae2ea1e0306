/**
 * Whether the dashboard reaches its broker, from the outcome of what it asks
 * the broker itself (the `enable_events` broadcast or a queue depth every
 * 5 s, the queue depths of a page): shown in the live stream and
 * `/api/overview`, so that while the broker is down the UI says so instead
 * of showing every worker offline (no heartbeat can arrive then).
 *
 * @module
 */

import { BrokerConnectionError } from "../broker/errors.ts";

/** The codes of the errors a broker throws when it cannot be reached (or the connection drops). */
const BROKER_DOWN_CODES = new Set(["BROKER_CONNECTION", "REDIS_CONNECTION"]);

/**
 * Whether `err` says the broker cannot be reached: a
 * {@link BrokerConnectionError} (any subclass), or an error with its code or
 * a Redis connection's (`REDIS_CONNECTION`).
 *
 * @example
 * ```ts
 * import { isBrokerDown } from "./broker_health.ts";
 * isBrokerDown(Object.assign(new Error("closed"), { code: "REDIS_CONNECTION" })); // true
 * isBrokerDown(new TypeError("bad argument")); // false
 * ```
 *
 * @param err anything thrown
 * @returns true when it is a connection failure
 */
export function isBrokerDown(err: unknown): boolean {
  return err instanceof BrokerConnectionError ||
    BROKER_DOWN_CODES.has(String((err as { code?: unknown } | null)?.code));
}

/**
 * The broker's state as the dashboard last saw it.
 *
 * @example
 * ```ts
 * import type { BrokerStatus } from "./broker_health.ts";
 * const down: BrokerStatus = {
 *   state: "unreachable",
 *   since: 1796000000,
 *   error: "Cannot connect to redis://127.0.0.1:6379/0: …",
 * };
 * ```
 */
export interface BrokerStatus {
  /** `unknown` until the first answer or failure. */
  state: "unknown" | "reachable" | "unreachable";
  /** When it entered that state (seconds since the epoch), or null while unknown. */
  since: number | null;
  /** Why it is unreachable (the connection error's message); null otherwise. */
  error: string | null;
}

/**
 * The broker's reachability, updated by what the dashboard asks of it.
 *
 * @example
 * ```ts
 * import { BrokerHealth } from "./broker_health.ts";
 * const health = new BrokerHealth();
 * await health.observe(Promise.resolve(3));
 * health.status().state; // "reachable"
 * ```
 */
export class BrokerHealth {
  #status: BrokerStatus = { state: "unknown", since: null, error: null };

  /**
   * The current status (a copy).
   *
   * @returns state, since and error
   */
  status(): BrokerStatus {
    return { ...this.#status };
  }

  /**
   * Wait for a broker operation and record its outcome: an answer means
   * reachable, a connection failure ({@link isBrokerDown}) unreachable; other failures
   * (a refused command, a bad argument) say nothing about reachability.
   *
   * @param operation the operation's promise
   * @returns what it resolves to
   * @throws whatever it rejects with
   */
  async observe<T>(operation: Promise<T>): Promise<T> {
    try {
      const value = await operation;
      this.#set("reachable", null);
      return value;
    } catch (err) {
      if (isBrokerDown(err)) this.#set("unreachable", (err as Error).message);
      throw err;
    }
  }

  #set(state: "reachable" | "unreachable", error: string | null): void {
    const since = this.#status.state === state ? this.#status.since : Date.now() / 1000;
    this.#status = { state, since, error };
  }
}
