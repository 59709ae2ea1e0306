/**
 * Celery 5.2 events on the wire: the `celeryev` exchange (topic on AMQP,
 * fanout channels `/<db>.celeryev/<routing key>` on Redis), routing key =
 * event type with `-` → `.`, JSON bodies that are one event or, for a
 * worker's batched task events (`task.multi`), a list of them.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { checkEventNumbers } from "./event_fields.ts";
import { pyJsonDumpsRecord, pyJsonDumpsRecords, pyJsonLoads } from "./json.ts";
import type { Message } from "./message.ts";
import { utf8Text } from "./utf8_text.ts";

/** The exchange events are published to. */
export const EVENT_EXCHANGE = "celeryev";

/** Routing key of a worker's batch of task events. */
export const TASK_MULTI = "task.multi";

/**
 * The event fields Celery 5.2 sends as Python floats, which `json.dumps`
 * writes with a `.0` when whole (`"timestamp": 1700000000.0`,
 * `"runtime": 0.0`, `"freq": 2.0`, `"loadavg": [0.0, 0.5, 1.0]`): the
 * encoders write the numbers under these keys so, and the rest (`clock`,
 * `pid`, `utcoffset`, `retries`, `active`, `processed`, `signum`) as
 * integers. (The heartbeat the `heartbeat` control command asks for has
 * `"freq": 5`, an integer, in Celery: its sender passes
 * {@link encodeEventMessage} a set without `freq`.)
 *
 * @example
 * ```ts
 * EVENT_FLOAT_FIELDS.has("runtime"); // true
 * ```
 */
export const EVENT_FLOAT_FIELDS: ReadonlySet<string> = new Set([
  "timestamp",
  "runtime",
  "freq",
  "loadavg",
]);

/**
 * Fields every event has.
 *
 * @example
 * ```ts
 * import type { EventBase } from "@celeriac/celeriac";
 * const e: EventBase = {
 *   type: "worker-heartbeat", hostname: "celeriac@host", utcoffset: 0, pid: 1, clock: 7,
 *   timestamp: Date.now() / 1000,
 * };
 * ```
 */
export interface EventBase {
  /** Event type, e.g. `task-succeeded`. */
  type: string;
  /** Node name of the sender. */
  hostname: string;
  /** Hours *west* of UTC of the sender (Python's `time.timezone // 3600`). */
  utcoffset: number;
  /** Process id of the sender. */
  pid: number;
  /** Lamport clock of the sender. */
  clock: number;
  /** Unix time in seconds (float). */
  timestamp: number;
}

/** `task-sent`: a client published a task (with `taskSendSentEvent`). */
export interface TaskSentEvent extends EventBase {
  /** Event type. */
  type: "task-sent";
  /** Task id. */
  uuid: string;
  /** Workflow root id. */
  root_id: string | null;
  /** Parent task id. */
  parent_id: string | null;
  /** Task name. */
  name: string;
  /** Python repr of the positional arguments. */
  args: string;
  /** Python repr of the keyword arguments. */
  kwargs: string;
  /** Retries so far. */
  retries: number;
  /** ETA, ISO 8601, or null. */
  eta: string | null;
  /** Expiry, ISO 8601, or null. */
  expires: string | null;
  /** Queue name. */
  queue: string;
  /** Exchange name. */
  exchange: string;
  /** Routing key. */
  routing_key: string;
}

/** `task-received`: a worker took the task from its queue. */
export interface TaskReceivedEvent extends EventBase {
  /** Event type. */
  type: "task-received";
  /** Task id. */
  uuid: string;
  /** Task name. */
  name: string;
  /** Python repr of the positional arguments. */
  args: string;
  /** Python repr of the keyword arguments. */
  kwargs: string;
  /** Workflow root id. */
  root_id: string | null;
  /** Parent task id. */
  parent_id: string | null;
  /** Retries so far. */
  retries: number;
  /** ETA, ISO 8601, or null. */
  eta: string | null;
  /** Expiry, ISO 8601, or null. */
  expires: string | null;
}

/** `task-started`: the task began to run. */
export interface TaskStartedEvent extends EventBase {
  /** Event type. */
  type: "task-started";
  /** Task id. */
  uuid: string;
}

/** `task-succeeded`: the task returned. */
export interface TaskSucceededEvent extends EventBase {
  /** Event type. */
  type: "task-succeeded";
  /** Task id. */
  uuid: string;
  /** Python repr of the return value (truncated to 1024 characters). */
  result: string;
  /** Seconds the task ran. */
  runtime: number;
}

/** `task-failed`: the task raised (or is of a task the worker does not know). */
export interface TaskFailedEvent extends EventBase {
  /** Event type. */
  type: "task-failed";
  /** Task id. */
  uuid: string;
  /** Python repr of the exception, e.g. `ValueError('boom')`. */
  exception: string;
  /** The traceback; absent for `NotRegistered`. */
  traceback?: string;
}

/** `task-retried`: the task asked to be retried. */
export interface TaskRetriedEvent extends EventBase {
  /** Event type. */
  type: "task-retried";
  /** Task id. */
  uuid: string;
  /** Python repr of the exception that caused the retry (`None` without one). */
  exception: string;
  /** The traceback. */
  traceback: string;
}

/** `task-revoked`: the task was revoked, terminated or expired. */
export interface TaskRevokedEvent extends EventBase {
  /** Event type. */
  type: "task-revoked";
  /** Task id. */
  uuid: string;
  /** Whether it was stopped while running. */
  terminated: boolean;
  /** The signal number used to stop it, or null. */
  signum: number | null;
  /** Whether it expired. */
  expired: boolean;
}

/** `task-rejected`: the task's message was refused. */
export interface TaskRejectedEvent extends EventBase {
  /** Event type. */
  type: "task-rejected";
  /** Task id. */
  uuid: string;
  /** Whether the message went back to its queue. */
  requeue: boolean;
}

/** `worker-online` / `worker-heartbeat` / `worker-offline`. */
export interface WorkerEvent extends EventBase {
  /** Event type. */
  type: "worker-online" | "worker-heartbeat" | "worker-offline";
  /** Heartbeat interval in seconds. */
  freq: number;
  /** Tasks running now (absent from the heartbeat the `heartbeat` command asks for). */
  active?: number;
  /** Tasks started since the worker started (absent there too). */
  processed?: number;
  /** Load average over 1, 5, 15 minutes (absent there too). */
  loadavg?: number[];
  /** Software: `py-celery` or `celeriac`. */
  sw_ident: string;
  /** Software version. */
  sw_ver: string;
  /** Operating system, e.g. `Linux`. */
  sw_sys: string;
}

/**
 * Any Celery event. Unknown types (a newer Celery's, custom ones) are kept
 * as {@link EventBase} with their other fields.
 *
 * @example Narrowing by type
 * ```ts
 * import type { CeleryEvent } from "@celeriac/celeriac";
 * function line(e: CeleryEvent): string {
 *   if (e.type === "task-succeeded") return `${e.uuid} -> ${e.result} in ${e.runtime}s`;
 *   return `${e.type} from ${e.hostname}`;
 * }
 * ```
 */
export type CeleryEvent =
  | TaskSentEvent
  | TaskReceivedEvent
  | TaskStartedEvent
  | TaskSucceededEvent
  | TaskFailedEvent
  | TaskRetriedEvent
  | TaskRevokedEvent
  | TaskRejectedEvent
  | WorkerEvent;

/**
 * The routing key of an event type: `task-succeeded` → `task.succeeded`.
 *
 * @example
 * ```ts
 * import { eventRoutingKey } from "@celeriac/celeriac/protocol";
 * eventRoutingKey("worker-heartbeat"); // "worker.heartbeat"
 * ```
 *
 * @param type event type
 * @returns the routing key
 */
export function eventRoutingKey(type: string): string {
  return type.replaceAll("-", ".");
}

/**
 * Hours west of UTC, as Celery's `utcoffset()` (`-2` for UTC+2).
 *
 * @example
 * ```ts
 * import { localUtcOffset } from "@celeriac/celeriac/protocol";
 * localUtcOffset(); // 0 on a machine in UTC
 * ```
 *
 * @param at when (daylight saving time counts)
 * @returns the offset in whole hours
 */
export function localUtcOffset(at: Date = new Date()): number {
  return Math.floor(at.getTimezoneOffset() / 60);
}

/**
 * The offset of the minute an event falls in, looked up once a minute:
 * time zone rules change only on whole minutes, and a worker sends
 * thousands of events a second.
 */
const offsetCache = { minute: NaN, offset: 0 };

/**
 * {@link localUtcOffset} at `ms`, looked up at most once a minute.
 *
 * @example
 * ```ts
 * utcOffsetAt(Date.now()); // 0 on a machine in UTC
 * ```
 *
 * @param ms Unix time in ms
 * @returns hours west of UTC
 */
export function utcOffsetAt(ms: number): number {
  const minute = Math.floor(ms / 60_000);
  if (minute !== offsetCache.minute) {
    offsetCache.offset = localUtcOffset(new Date(ms));
    offsetCache.minute = minute;
  }
  return offsetCache.offset;
}

const encoder = new TextEncoder();

/**
 * Build an event with Celery's field order: `hostname, utcoffset, pid,
 * clock`, the type's own fields, `timestamp, type`.
 *
 * @example
 * ```ts
 * import { makeEvent } from "@celeriac/celeriac/protocol";
 * const e = makeEvent("task-started", { uuid: "t1" }, { hostname: "celeriac@h", pid: 7, clock: 3 });
 * Object.keys(e); // ["hostname", "utcoffset", "pid", "clock", "uuid", "timestamp", "type"]
 * ```
 *
 * @param type event type
 * @param fields the type's own fields
 * @param sender `hostname`, `pid`, `clock`, and optionally `timestamp` (ms; default now)
 * @returns the event
 */
export function makeEvent<T extends CeleryEvent["type"]>(
  type: T,
  fields: Record<string, unknown>,
  sender: { hostname: string; pid: number; clock: number; timestamp?: number },
): Extract<CeleryEvent, { type: T }> {
  const at = sender.timestamp ?? Date.now();
  return {
    hostname: sender.hostname,
    utcoffset: utcOffsetAt(at),
    pid: sender.pid,
    clock: sender.clock,
    ...fields,
    timestamp: at / 1000,
    type,
  } as unknown as Extract<CeleryEvent, { type: T }>;
}

function eventMessage(body: Uint8Array, hostname: string): Message {
  return {
    body,
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { hostname },
    properties: { delivery_mode: 1, priority: 0 },
  };
}

/**
 * The `task.multi` message of a list of events already written as JSON
 * bytes (by `EventListWriter`): the same message as
 * {@link encodeEventMessage} of the events.
 *
 * @example
 * ```ts ignore
 * const writer = new EventListWriter({ hostname: "celeriac@h", pid: 7 });
 * writer.add("task-started", { uuid: "t1" }, 3);
 * decodeEventMessage(encodeEventListMessage(writer.take(), "celeriac@h"))[0].uuid; // "t1"
 * ```
 *
 * @param body the JSON list's bytes
 * @param hostname the sender's node name
 * @returns the message
 */
export function encodeEventListMessage(body: Uint8Array, hostname: string): Message {
  return eventMessage(body, hostname);
}

/**
 * The message carrying one event, or a batch (`task.multi`), as Celery's
 * dispatcher sends it: JSON, header `hostname`, transient. The numbers
 * under the keys of `floats` are written as Python floats
 * (`"timestamp": 1700000000.0`).
 *
 * @example
 * ```ts
 * import { encodeEventMessage, makeEvent } from "@celeriac/celeriac/protocol";
 * const e = makeEvent("task-started", { uuid: "t1" }, { hostname: "celeriac@h", pid: 7, clock: 3 });
 * encodeEventMessage([e], "celeriac@h").headers; // { hostname: "celeriac@h" }
 * ```
 *
 * @param events one event, or a list for a batch
 * @param hostname the sender's node name
 * @param floats the fields whose numbers are Python floats; default {@link EVENT_FLOAT_FIELDS}
 * @returns the message
 */
export function encodeEventMessage(
  events: CeleryEvent | readonly CeleryEvent[],
  hostname: string,
  floats: ReadonlySet<string> = EVENT_FLOAT_FIELDS,
): Message {
  return eventMessage(
    encoder.encode(
      Array.isArray(events)
        ? pyJsonDumpsRecords(events as unknown as Record<string, unknown>[], floats)
        : pyJsonDumpsRecord(events as unknown as Record<string, unknown>, floats),
    ),
    hostname,
  );
}

/**
 * The events in a message: one object or a list of them (a batch).
 *
 * @example
 * ```ts
 * import { decodeEventMessage, encodeEventMessage, makeEvent } from "@celeriac/celeriac/protocol";
 * const e = makeEvent("task-started", { uuid: "t1" }, { hostname: "celeriac@h", pid: 7, clock: 3 });
 * decodeEventMessage(encodeEventMessage([e, e], "celeriac@h")).length; // 2
 * ```
 *
 * @param message an event message
 * @returns the events
 * @throws {ProtocolError} when the body is not JSON events (each with a string `type` and
 *   `hostname`; its `timestamp`, `utcoffset`, `clock` and `pid`, when present, numbers: a
 *   timestamp up to the year 9999, a UTC offset within a day)
 */
export function decodeEventMessage(message: Message): CeleryEvent[] {
  if (!message.contentType.includes("json")) {
    throw new ProtocolError(
      `An event message must be JSON, not ${message.contentType}: only Celery's json serializer ` +
        `is read for events`,
    );
  }
  let body: unknown;
  try {
    body = pyJsonLoads(utf8Text(message.body));
  } catch (err) {
    throw new ProtocolError(`Undecodable event body: ${(err as Error).message}`);
  }
  const list = Array.isArray(body) ? body : [body];
  let hostname = "";
  for (const e of list as EventBase[]) {
    if (
      e === null || typeof e !== "object" || typeof e.type !== "string" ||
      typeof e.hostname !== "string"
    ) {
      throw new ProtocolError(
        "An event must be an object with string `type` and `hostname` fields",
      );
    }
    checkEventNumbers(e);
    // One copy of each known type and of the batch's sender: JSON.parse gives every event
    // strings of its own, and each later comparison or lookup by them (a receiver does
    // several per event) would read, or hash, them again.
    const type = knownType(e.type);
    if (type !== undefined) e.type = type;
    if (e.hostname === hostname) e.hostname = hostname;
    else hostname = e.hostname;
  }
  return list as CeleryEvent[];
}

/** Celery 5.2's event types, each as one string. */
const KNOWN_TYPES: readonly string[] = [
  "task-sent",
  "task-received",
  "task-started",
  "task-succeeded",
  "task-failed",
  "task-retried",
  "task-revoked",
  "task-rejected",
  "worker-online",
  "worker-heartbeat",
  "worker-offline",
];

/**
 * The one string of a known event type equal to `type`, found by comparing
 * (lengths first, then characters) instead of by a Map lookup, which hashes
 * the type string JSON.parse made for each event (only short strings, of up
 * to about 10 characters, come out of it hashed; all but `task-sent` are
 * longer).
 */
function knownType(type: string): string | undefined {
  for (const known of KNOWN_TYPES) if (known === type) return known;
  return undefined;
}
