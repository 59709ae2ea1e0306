/**
 * The AMQP connection's state machine, as pure functions:
 *
 * ```
 *   idle --start--> connecting --connected--> open
 *                      ^   |                    |
 *                retry |   | failed             | dropped
 *                      |   v                    v
 *                      +-- lost <---------------+
 *
 *   any state --close--> closed (final)
 * ```
 *
 * `lost` waits an exponentially growing, jittered delay
 * ({@link backoffDelay}) before the next attempt. An event that does not
 * apply in a state (a late `dropped` from a connection already replaced)
 * leaves the state unchanged.
 *
 * @module
 */

/**
 * Where the connection is.
 *
 * @example
 * ```ts
 * import type { ConnectionState } from "./amqp_state.ts";
 * const s: ConnectionState = "lost"; // waiting before the next attempt
 * ```
 */
export type ConnectionState = "idle" | "connecting" | "open" | "lost" | "closed";

/**
 * What happened to the connection.
 *
 * @example
 * ```ts
 * import { type ConnectionEvent, nextState } from "./amqp_state.ts";
 * const e: ConnectionEvent = "dropped";
 * nextState("open", e); // "lost"
 * ```
 */
export type ConnectionEvent =
  | "start"
  | "connected"
  | "failed"
  | "dropped"
  | "retry"
  | "close";

const TRANSITIONS: Record<ConnectionState, Partial<Record<ConnectionEvent, ConnectionState>>> = {
  idle: { start: "connecting", close: "closed" },
  connecting: { connected: "open", failed: "lost", dropped: "lost", close: "closed" },
  open: { dropped: "lost", close: "closed" },
  lost: { retry: "connecting", close: "closed" },
  closed: {},
};

/**
 * The state after an event; the same state when the event does not apply.
 *
 * @example
 * ```ts
 * import { nextState } from "./amqp_state.ts";
 * nextState("connecting", "failed"); // "lost"
 * nextState("lost", "retry"); // "connecting"
 * nextState("closed", "retry"); // "closed"
 * ```
 *
 * @param state the current state
 * @param event what happened
 * @returns the next state
 */
export function nextState(state: ConnectionState, event: ConnectionEvent): ConnectionState {
  return TRANSITIONS[state][event] ?? state;
}

/**
 * Reconnection delays.
 *
 * @example
 * ```ts
 * import { type BackoffOptions, openAmqpBroker } from "@celeriac/celeriac/transports";
 * const quick: BackoffOptions = { initialMs: 50, maxMs: 2000 };
 * const connect = (url: string) => openAmqpBroker(url, { backoff: quick });
 * ```
 */
export interface BackoffOptions {
  /** Delay before the first retry; default 100 ms. */
  initialMs?: number;
  /** Largest delay; default 10 s. */
  maxMs?: number;
  /** Fraction of random spread added to each delay; default 0.2. */
  jitter?: number;
}

/**
 * The delay before retry number `attempt` (1 for the first): doubling from
 * `initialMs`, capped at `maxMs`, plus up to `jitter` of random spread so
 * that many clients do not reconnect in step.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./amqp_state.ts";
 * backoffDelay(1, { jitter: 0 }); // 100
 * backoffDelay(4, { jitter: 0 }); // 800
 * backoffDelay(30, { jitter: 0 }); // 10000
 * ```
 *
 * @param attempt retry number, from 1
 * @param options delays
 * @param random a source of numbers in [0, 1)
 * @returns milliseconds to wait
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initial = options.initialMs ?? 100;
  const max = options.maxMs ?? 10_000;
  const jitter = options.jitter ?? 0.2;
  const base = Math.min(max, initial * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.min(max, Math.round(base * (1 + jitter * random())));
}

/**
 * How long a connection must have stayed open for its loss to count as a
 * fresh failure (the backoff starts again from its first delay), in ms.
 *
 * @example
 * ```ts
 * import { STABLE_CONNECTION_MS } from "./amqp_state.ts";
 * STABLE_CONNECTION_MS; // 10000
 * ```
 */
export const STABLE_CONNECTION_MS = 10_000;

/**
 * The retry number to count from after a connection that opened was lost.
 * A connection that lived at least {@link STABLE_CONNECTION_MS} starts the
 * backoff again; one that the server closed soon after it opened (a
 * refusal that will repeat, such as `540 NOT_IMPLEMENTED` for a method
 * the queue type does not support) keeps counting, so that the delays
 * keep growing instead of reconnecting several times a second forever.
 *
 * @example
 * ```ts
 * import { attemptsAfterDrop } from "./amqp_state.ts";
 * attemptsAfterDrop(0, 60_000); // 0: a long-lived connection dropped
 * attemptsAfterDrop(4, 50); // 4: refused again right after opening
 * ```
 *
 * @param attempts retries counted so far
 * @param livedMs how long the lost connection stayed open
 * @returns the retries to count from
 */
export function attemptsAfterDrop(attempts: number, livedMs: number): number {
  return livedMs >= STABLE_CONNECTION_MS ? 0 : attempts;
}
