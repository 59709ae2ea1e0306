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
  /**
   * Largest delay; default {@link DEFAULT_MAX_BACKOFF_MS} (250 ms), so that
   * consumption resumes within about 300 ms of RabbitMQ becoming reachable
   * again, however long it was away (a refused connection costs RabbitMQ
   * nothing; a blackholed one waits for the connect timeout first).
   */
  maxMs?: number;
  /** Fraction of random spread added to each delay; default 0.2. */
  jitter?: number;
}

/**
 * Default cap of the reconnect backoff, in milliseconds.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_BACKOFF_MS } from "./amqp_state.ts";
 * DEFAULT_MAX_BACKOFF_MS; // 250
 * ```
 */
export const DEFAULT_MAX_BACKOFF_MS = 250;

/**
 * The delay before retry number `attempt` (1 for the first): doubling from
 * `initialMs`, capped at `maxMs`, plus up to `jitter` of random spread so
 * that many clients do not reconnect in step.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./amqp_state.ts";
 * backoffDelay(1, { jitter: 0 }); // 100
 * backoffDelay(2, { jitter: 0 }); // 200
 * backoffDelay(30, { jitter: 0 }); // 250
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
  const max = options.maxMs ?? DEFAULT_MAX_BACKOFF_MS;
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
 * How many quick drops in a row a lost connection makes: one more when it
 * ended within {@link STABLE_CONNECTION_MS} of opening, whatever ended it
 * (RabbitMQ closing it, a socket that ended, a heartbeat timeout), else
 * none. Two or more in a row get {@link refusalDelay}'s doubling delay, so
 * that a proxy or load balancer that cuts every new connection is not
 * hammered several times a second; the cause only chooses the log line
 * (see {@link closedByServer}).
 *
 * @example
 * ```ts
 * import { refusalsAfter } from "./amqp_state.ts";
 * refusalsAfter(1, 2_000); // 2
 * refusalsAfter(3, 60_000); // 0
 * ```
 *
 * @param previous quick drops in a row before this loss
 * @param livedMs how long the lost connection had been open
 * @returns quick drops in a row, counting this loss
 */
export function refusalsAfter(previous: number, livedMs: number): number {
  return livedMs < STABLE_CONNECTION_MS ? previous + 1 : 0;
}

/**
 * Whether RabbitMQ itself closed the connection (a Connection.Close, whose
 * error carries the numeric reply code), as opposed to a socket that ended
 * or a heartbeat timeout (the network, or a proxy in between).
 *
 * @example
 * ```ts
 * import { closedByServer } from "./amqp_state.ts";
 * closedByServer(Object.assign(new Error("NOT_IMPLEMENTED"), { code: 540 })); // true
 * closedByServer(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })); // false
 * closedByServer(new Error("Heartbeat timeout")); // false
 * ```
 *
 * @param err what the connection ended with
 * @returns true when the error carries a numeric AMQP reply code
 */
export function closedByServer(err: unknown): boolean {
  return typeof (err as { code?: unknown } | undefined)?.code === "number";
}

/**
 * The delay before reconnecting after a connection ended soon after it
 * opened, `refusals` times in a row (each within
 * {@link STABLE_CONNECTION_MS} of opening, whatever the cause): a refusal
 * that will repeat, such as `540 NOT_IMPLEMENTED` for a method the queue
 * type does not support, or a proxy that cuts every new connection. The first such drop
 * gets the ordinary quick backoff (0 here: RabbitMQ may just have
 * restarted); from the second on the delay doubles
 * from 500 ms up to 30 s, so that a worker does not reconnect several
 * times a second forever. Outages (connections that cannot be opened)
 * keep the ordinary backoff.
 *
 * @example
 * ```ts
 * import { refusalDelay } from "./amqp_state.ts";
 * refusalDelay(1, () => 0); // 0: use the ordinary backoff
 * refusalDelay(2, () => 0); // 500
 * refusalDelay(5, () => 0); // 4000
 * refusalDelay(20, () => 0); // 30000
 * ```
 *
 * @param refusals quick drops in a row, counting this one
 * @param random a source of numbers in [0, 1) (20 % jitter)
 * @returns milliseconds to wait, or 0 for the ordinary backoff
 */
export function refusalDelay(refusals: number, random: () => number = Math.random): number {
  if (refusals < 2) return 0;
  const base = Math.min(30_000, 500 * 2 ** Math.min(16, refusals - 2));
  return Math.round(base * (1 + 0.2 * random()));
}
