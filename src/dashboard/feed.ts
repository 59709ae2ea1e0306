/**
 * What feeds the dashboard: Celery events (from the client's event
 * receiver) and inspect replies (from the client's remote control). Kept
 * narrow and structural, so `app.events.receive(...)` and
 * `app.control.inspect(...)` plug in as they are.
 *
 * @module
 */

/**
 * What the dashboard requires of an event: the fields every Celery 5.2
 * event has. The client's `CeleryEvent` types fit as they are.
 *
 * @example
 * ```ts
 * import type { EventCore } from "@celeriac/celeriac/dashboard";
 * const e: EventCore = { type: "worker-heartbeat", hostname: "celery@host", timestamp: 1 };
 * ```
 */
export interface EventCore {
  /** Event type, e.g. `task-started`, `worker-heartbeat`. */
  readonly type: string;
  /** Node name of the sender. */
  readonly hostname: string;
  /** When it happened, Unix time in seconds (float). */
  readonly timestamp: number;
  /** Task id (task events). */
  readonly uuid?: string;
}

/**
 * One Celery event with its type's other fields (`name`, `args`,
 * `runtime`, `freq`, …), as the dashboard reads them.
 *
 * @example
 * ```ts
 * import type { DashboardEvent } from "@celeriac/celeriac/dashboard";
 * const e: DashboardEvent = {
 *   type: "task-succeeded", hostname: "celery@host", timestamp: Date.now() / 1000,
 *   uuid: "5f1c…", result: "5", runtime: 0.003,
 * };
 * ```
 */
export interface DashboardEvent extends EventCore {
  /** The type's other fields. */
  readonly [field: string]: unknown;
}

/**
 * Where events come from: an async iterable that ends when `signal`
 * aborts, e.g. `(signal) => app.events.receive({ signal })`, of single
 * events or of arrays of them (`app.events.receiveBatches`: one step per
 * batch costs less than one per event). Each event's other fields are read
 * as {@link DashboardEvent}'s.
 *
 * @example A source replaying a list (tests, demos)
 * ```ts
 * import type { DashboardEvent, EventSourceFn } from "@celeriac/celeriac/dashboard";
 * const recorded: DashboardEvent[] = [];
 * const source: EventSourceFn = async function* () {
 *   yield* recorded;
 * };
 * ```
 */
export type EventSourceFn = (
  signal: AbortSignal,
) => AsyncIterable<EventCore | readonly EventCore[]>;

/**
 * Inspect replies by node name, as `app.control.inspect(...)` collects
 * them: `inspect("active", { destination: ["celery@host"] })` resolves with
 * `{ "celery@host": [...] }`; `timeout` in seconds, `signal` stops waiting
 * (with the replies so far).
 *
 * @example Wiring the client's inspect
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import type { Inspector } from "@celeriac/celeriac/dashboard";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const inspector: Inspector = (command, { destination, timeout }) => {
 *   const inspect = app.control.inspect({ destination, timeout });
 *   return command === "active_queues" ? inspect.activeQueues() : inspect[command]();
 * };
 * ```
 */
export type Inspector = (
  command: InspectCommand,
  options: { destination?: string[]; timeout?: number; signal?: AbortSignal },
) => Promise<Record<string, unknown>>;

/** The inspect commands the dashboard sends. */
export type InspectCommand =
  | "active"
  | "reserved"
  | "scheduled"
  | "registered"
  | "stats"
  | "active_queues";
