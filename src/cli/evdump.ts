/**
 * `events --dump`: one line per event, as Celery 5.2's `celery events
 * --dump` (celery/events/dumper.py) writes it — Python's `str()` of each
 * value (`None`, `True`, `{'a': 1}`), a UTC timestamp to the microsecond,
 * `started` / `shutdown` for workers coming and going, and a task's name,
 * arguments and id, remembered from its `task-received` (or `task-sent`),
 * on each later event of that task.
 *
 * @module
 */

import type { CeleryEvent } from "../protocol/events.ts";

/** Celery's names for worker events (others: the type, hyphens as spaces). */
const HUMAN_TYPES: Record<string, string> = {
  "worker-offline": "shutdown",
  "worker-online": "started",
  "worker-heartbeat": "heartbeat",
};

/** How many task names are remembered (Celery's LRUCache limit, 0xFFF). */
const NAMES_KEPT = 0xfff;

function pyQuote(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r")
    .replace(/\t/g, "\\t");
  return quote + (quote === "'" ? body.replace(/'/g, "\\'") : body) + quote;
}

function pyRepr(v: unknown): string {
  if (typeof v === "string") return pyQuote(v);
  return pyStr(v);
}

/**
 * Python's `str()` of a value decoded from JSON: `None`, `True` / `False`,
 * strings as they are, and lists and dicts with their items' `repr()`.
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
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  if (typeof v === "object") {
    return `{${Object.entries(v).map(([k, x]) => `${pyQuote(k)}: ${pyRepr(x)}`).join(", ")}}`;
  }
  return String(v);
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
 * remembers task names between events.
 *
 * @example
 * ```ts ignore
 * const dumper = new EventDumper();
 * for await (const e of app.events.receive({ signal })) console.log(dumper.line(e));
 * ```
 */
export class EventDumper {
  readonly #names = new Map<string, string>();

  /**
   * The line for one event.
   *
   * @param e the event
   * @returns `node [time] type: fields`, with the task for task events
   */
  line(e: CeleryEvent): string {
    const { type, hostname, timestamp, ...rest } = e as unknown as Record<string, unknown>;
    const kind = String(type).toLowerCase();
    const human = HUMAN_TYPES[kind] ?? kind.replaceAll("-", " ");
    const head = `${hostname} [${pyUtcTimestamp(Number(timestamp))}] ${human}`;
    if (!kind.startsWith("task-")) return withFields(head, "", rest);
    const { uuid, ...fields } = rest;
    const id = String(uuid);
    if (kind !== "task-received" && kind !== "task-sent") {
      return withFields(head, ` ${this.#names.get(id) ?? ""}`, fields);
    }
    const { name, args, kwargs, ...others } = fields;
    const task = `${pyStr(name)}(${id}) args=${pyStr(args)} kwargs=${pyStr(kwargs)}`;
    this.#names.delete(id);
    this.#names.set(id, task);
    if (this.#names.size > NAMES_KEPT) this.#names.delete(this.#names.keys().next().value!);
    return withFields(head, ` ${task}`, others);
  }
}

/** Celery's `{type}{sep}{task} {fields}`, `sep` a colon when there are fields. */
function withFields(head: string, task: string, fields: Record<string, unknown>): string {
  const text = Object.keys(fields).sort().map((k) => `${k}=${pyStr(fields[k])}`).join(", ");
  return `${head}${text ? ":" : ""}${task} ${text}`;
}
