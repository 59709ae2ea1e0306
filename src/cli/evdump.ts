/**
 * `events --dump`: one line per event, as Celery 5.2's `celery events
 * --dump` (celery/events/dumper.py) writes it — Python's `str()` of each
 * value (`None`, `True`, `{'a': 1}`), a UTC timestamp to the microsecond,
 * `started` / `shutdown` for workers coming and going, and a task's name,
 * arguments and id, remembered from its `task-received` (or `task-sent`),
 * on each later event of that task. The fields are those Celery's receiver
 * hands its dumper: `local_received` added, the timestamp moved by the
 * difference of `utcoffset`s, a client's `task-sent` given the receiver's
 * clock; and the fields Celery sends as floats written as Python writes
 * floats (`freq=2.0`, `loadavg=[0.5, 1.0, 0.0]`).
 *
 * @module
 */

import { EVENT_FLOAT_FIELDS, localUtcOffset } from "../protocol/events.ts";
import type { CeleryEvent } from "../protocol/events.ts";
import { pyJsonFloat } from "../protocol/json.ts";
import { pyRepr } from "../protocol/repr.ts";
import { oneLine } from "../worker/log_values.ts";

/** Celery's names for worker events (others: the type, hyphens as spaces). */
const HUMAN_TYPES: Record<string, string> = {
  "worker-offline": "shutdown",
  "worker-online": "started",
  "worker-heartbeat": "heartbeat",
};

/** How many task names are remembered (Celery's LRUCache limit, 0xFFF). */
const NAMES_KEPT = 0xfff;

/** Celery's receiver gives a client's `task-sent` its own clock less one (clients never sync). */
const CLIENT_CLOCK_SKEW = -1;

/**
 * Python's `str()` of a value decoded from JSON: strings as they are,
 * anything else its `repr()` (`None`, `True` / `False`, lists and dicts).
 *
 * @example
 * ```ts
 * import { pyStr } from "./evdump.ts";
 * pyStr({ a: [1, null, "x"] }); // "{'a': [1, None, 'x']}"
 * ```
 *
 * @param v the value
 * @returns what Python would print
 */
export function pyStr(v: unknown): string {
  return typeof v === "string" ? v : pyRepr(v);
}

/** Python's `str()` of a float: `2.0`, `1e-05`, `nan`, `inf`. */
function pyFloat(n: number): string {
  if (Number.isFinite(n)) return pyJsonFloat(n);
  return Number.isNaN(n) ? "nan" : n > 0 ? "inf" : "-inf";
}

/** Python's `str()` of a field Celery sends as a float: a number, or a list of them. */
function pyFloats(v: unknown): string {
  if (typeof v === "number") return pyFloat(v);
  if (Array.isArray(v) && v.every((x) => typeof x === "number")) {
    return `[${v.map(pyFloat).join(", ")}]`;
  }
  return pyStr(v);
}

/**
 * Python's `str(datetime.utcfromtimestamp(ts))`: microseconds, left out
 * when they are zero.
 *
 * @example
 * ```ts
 * import { pyUtcTimestamp } from "./evdump.ts";
 * pyUtcTimestamp(1767225600.25); // "2026-01-01 00:00:00.250000"
 * ```
 *
 * @param ts seconds since the epoch
 * @returns the date and time
 */
export function pyUtcTimestamp(ts: number): string {
  let seconds = Math.floor(ts);
  let micros = Math.round((ts - seconds) * 1e6);
  if (micros >= 1e6) [seconds, micros] = [seconds + 1, micros - 1e6];
  const base = new Date(seconds * 1000).toISOString().slice(0, 19).replace("T", " ");
  return micros === 0 ? base : `${base}.${String(micros).padStart(6, "0")}`;
}

/**
 * Formats events as `celery events --dump` does; one per stream, since it
 * remembers task names between events, and keeps a Lamport clock as
 * Celery's receiver does.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const signal = AbortSignal.timeout(60_000);
 * const dumper = new EventDumper();
 * for await (const e of app.events.receive({ signal })) console.log(dumper.line(e));
 * ```
 */
export class EventDumper {
  readonly #names = new Map<string, string>();
  #clock = 0;

  /**
   * The line for one event.
   *
   * @param e the event
   * @param localReceived when it arrived, in seconds since the epoch (default now): the
   *   `local_received` field Celery's receiver adds
   * @returns `node [time] type: fields`, with the task for task events; control and
   *   format characters of the event's text escaped (`\x1b`, `\n`; a traceback keeps its
   *   lines), as the TUI escapes them, so an event cannot forge a line or drive the
   *   terminal (Celery's are raw)
   */
  line(e: CeleryEvent, localReceived: number = Date.now() / 1000): string {
    const { type, hostname, timestamp, ...rest } = this.#received(e, localReceived);
    const kind = String(type).toLowerCase();
    const human = HUMAN_TYPES[kind] ?? kind.replaceAll("-", " ");
    // An event without a timestamp (none of Celery's) is shown at the time it arrived.
    const at = typeof timestamp === "number" ? timestamp : localReceived;
    const head = `${oneLine(String(hostname))} [${pyUtcTimestamp(at)}] ${oneLine(human)}`;
    if (!kind.startsWith("task-")) return withFields(head, "", rest);
    const { uuid, ...fields } = rest;
    const id = typeof uuid === "string" ? uuid : "";
    if (kind !== "task-received" && kind !== "task-sent") {
      return withFields(head, ` ${this.#names.get(id) ?? ""}`, fields);
    }
    const { name, args, kwargs, ...others } = fields;
    const task = oneLine(`${pyStr(name)}(${id}) args=${pyStr(args)} kwargs=${pyStr(kwargs)}`);
    this.#names.delete(id);
    this.#names.set(id, task);
    if (this.#names.size > NAMES_KEPT) this.#names.delete(this.#names.keys().next().value!);
    return withFields(head, ` ${task}`, others);
  }

  /** The event as Celery's receiver passes it on (`EventReceiver.event_from_message`). */
  #received(e: CeleryEvent, localReceived: number): Record<string, unknown> {
    const ev: Record<string, unknown> = { ...e };
    if (ev.type === "task-sent") {
      ev.clock = (this.#clock || 1) + CLIENT_CLOCK_SKEW;
      this.#clock = Math.max(this.#clock, ev.clock as number) + 1;
    } else if (typeof ev.clock === "number") {
      this.#clock = Math.max(this.#clock, ev.clock) + 1;
    } else if (!("clock" in ev)) ev.clock = ++this.#clock;
    if ("utcoffset" in ev && "timestamp" in ev) {
      const here = localUtcOffset(new Date(localReceived * 1000));
      ev.timestamp = Number(ev.timestamp) - (Number(ev.utcoffset) - here) * 3600;
    }
    ev.local_received = localReceived;
    return ev;
  }
}

/**
 * Whether Celery sends field `key` as a float: {@link EVENT_FLOAT_FIELDS} and
 * `local_received`, but not the `freq` of the heartbeat the `heartbeat`
 * control command asks for (`freq=5`, no `active`).
 */
function isFloat(key: string, fields: Record<string, unknown>): boolean {
  if (key === "local_received") return true;
  return EVENT_FLOAT_FIELDS.has(key) && (key !== "freq" || "active" in fields);
}

/** Celery's `{type}{sep}{task} {fields}`, `sep` a colon when there are fields. */
function withFields(head: string, task: string, fields: Record<string, unknown>): string {
  const text = Object.keys(fields).sort().map((k) => {
    const value = isFloat(k, fields) ? pyFloats(fields[k]) : pyStr(fields[k]);
    // A traceback keeps its lines, as Celery prints it; nothing else writes a line break.
    const shown = k === "traceback" ? value.split("\n").map(oneLine).join("\n") : oneLine(value);
    return `${oneLine(k)}=${shown}`;
  }).join(", ");
  return `${head}${text ? ":" : ""}${task} ${text}`;
}
