/**
 * A worker's batched task events written as the text of a `task.multi`
 * body, without building event objects: a worker sends three events per
 * task by the thousand, and what it allocates or walks for them is paid by
 * every task in flight.
 *
 * An event added by {@link EventListWriter.addValues} with flat values
 * (strings, numbers, booleans, `null`) is only recorded (its shape, values,
 * clock and time): its text is written when the list is taken, a batch at
 * a time, out of the path of the task that sent it. Other events (those of
 * {@link EventListWriter.add}, and values JSON must walk) are written when
 * added, so that a value JSON cannot carry throws to their sender. The text is
 * appended piece by piece (constant ones cached, values as Python's
 * `json.dumps` writes them) to one string per taken list, which the encoder
 * flattens and turns into bytes once: V8 concatenates and encodes strings
 * natively, where a byte-by-byte copy in JavaScript runs cold between the
 * worker's other work (measured in the Redis drain: about 1.5 µs more per
 * task). Appending to a string costs less than pushing the pieces to an
 * array and joining it (a list of 100 events alone in a loop: 0.78-0.88×
 * the time, 0.96× the young-generation allocation).
 *
 * @module
 */

import {
  isVerbatimJsonString,
  pyJsonDumps,
  pyJsonFloat,
  pyJsonFloats,
  pyJsonScalar,
} from "./json.ts";
import { EVENT_FLOAT_FIELDS, utcOffsetAt } from "./events.ts";

const ascii = new TextEncoder();

/** Record slots kept for the next list at most (a larger list's array is let go). */
const MAX_KEPT_SLOTS = 1 << 16;

/**
 * The own fields of one event type, in the order they are written, with
 * their JSON keys written once: {@link EventListWriter.addValues} writes an
 * event of the type from its values alone (no fields object to walk, no
 * key to look up), as a worker does three times per task.
 *
 * @example
 * ```ts
 * import { EventListWriter, EventShape } from "./event_writer.ts";
 * const STARTED = new EventShape("task-started", ["uuid"]);
 * const writer = new EventListWriter({ hostname: "celeriac@h", pid: 7 });
 * writer.addValues(STARTED, ["t1"], 3, 1700000000000);
 * writer.length; // 1
 * ```
 */
export class EventShape {
  /** The event type. */
  readonly type: string;
  /** The field names, in order. */
  readonly keys: readonly string[];
  /** `, "<key>": ` per field. */
  readonly keyText: readonly string[];
  /** `, "type": "<type>"}`. */
  readonly tail: string;
  /**
   * What comes before field `i`'s value, 4 per field: its key text with the
   * previous value's closing quote (`+2`, after a string written verbatim)
   * and its own opening quote (`+1`, before one), so that an event is a
   * few appends per field, not four.
   */
  readonly joints: readonly string[];
  /** Whether field `i` is a Python float ({@link EVENT_FLOAT_FIELDS}), written with `.0` when whole. */
  readonly floats: readonly boolean[];

  /**
   * @param type the event type
   * @param keys its own fields' names, in the order Celery writes them
   */
  constructor(type: string, keys: readonly string[]) {
    this.type = type;
    this.keys = keys;
    this.keyText = keys.map((k) => ", " + pyJsonScalar(k) + ": ");
    this.tail = ', "type": ' + pyJsonScalar(type) + "}";
    this.joints = this.keyText.flatMap((k) => [k, k + '"', '"' + k, '"' + k + '"']);
    this.floats = keys.map((k) => EVENT_FLOAT_FIELDS.has(k));
  }
}

/**
 * Writes one sender's events into a JSON list, byte for byte the body of
 * `encodeEventMessage(events.map((e) => makeEvent(e.type, e.fields, sender)))`
 * (Celery's field order and Python's `json.dumps` spelling, the numbers of
 * `EVENT_FLOAT_FIELDS` as floats: `"timestamp": 1700000000.0`): the
 * list grows with {@link EventListWriter.add} or
 * {@link EventListWriter.addValues} and is handed over as bytes, all of
 * it or its first events, by {@link EventListWriter.take}.
 *
 * @example
 * ```ts ignore
 * const writer = new EventListWriter({ hostname: "celeriac@h", pid: 7 });
 * writer.add("task-started", { uuid: "t1" }, 3, 1700000000000);
 * new TextDecoder().decode(writer.take());
 * // '[{"hostname": "celeriac@h", "utcoffset": 0, "pid": 7, "clock": 3, "uuid": "t1", "timestamp": 1700000000.0, "type": "task-started"}]'
 * ```
 */
export class EventListWriter {
  /**
   * The events since the last take(), four slots each: the shape (or the
   * event's text, for one written at once), its values, clock and time
   * (ms after {@link #base}: a small integer, not a number object). Kept
   * from one list to the next (emptied, not replaced), so it does not grow
   * again from nothing for each list.
   */
  #records: unknown[] = [];
  /** Slots of {@link #records} in use. */
  #end = 0;
  /** Index in {@link #records} of the first event not taken yet. */
  #next = 0;
  /** Time the stored times count from (ms since the epoch): the first event's of the list. */
  #base = 0;
  readonly #hostname: string;
  readonly #pid: string;
  readonly #keys = new Map<string, string>();
  readonly #tails = new Map<string, string>();
  /** `{"hostname": …, "utcoffset": …, "pid": …, "clock": ` for {@link #offset}. */
  #head = "";
  #offset = NaN;
  #lastAt = NaN;
  #lastStamp = "";
  /** {@link #lastStamp} after a closing quote. */
  #lastStampQuoted = "";

  /** @param sender the sender's `hostname` and `pid` */
  constructor(sender: { hostname: string; pid: number }) {
    this.#hostname = pyJsonScalar(sender.hostname);
    this.#pid = pyJsonScalar(sender.pid);
  }

  /** Events added and not taken yet. */
  get length(): number {
    return (this.#end - this.#next) >> 2;
  }

  /**
   * Append one event.
   *
   * @param type event type
   * @param fields the type's own fields (flat: strings, numbers, booleans,
   *   `null`; other values are written by `pyJsonDumps`, `undefined` ones left out)
   * @param clock the sender's Lamport clock for it
   * @param timestamp ms since the epoch; default now
   * @throws {EncodeError} for a field value JSON cannot carry (nothing is appended then)
   */
  add(type: string, fields: Record<string, unknown>, clock: number, timestamp?: number): void {
    const at = timestamp ?? Date.now();
    let text = this.#begin(clock, at);
    for (const k in fields) {
      if (!Object.hasOwn(fields, k)) continue;
      const v = fields[k];
      if (v === undefined) continue;
      let key = this.#keys.get(k);
      if (key === undefined) this.#keys.set(k, key = ", " + pyJsonScalar(k) + ": ");
      text += key + (EVENT_FLOAT_FIELDS.has(k) ? pyJsonFloats(v) : valueText(v));
    }
    let tail = this.#tails.get(type);
    if (tail === undefined) this.#tails.set(type, tail = ', "type": ' + pyJsonScalar(type) + "}");
    this.#record(text + this.#lastStamp + tail, undefined, clock, at);
  }

  /**
   * Append one event of `shape`'s type from its field values, in the
   * shape's order: the same text as {@link EventListWriter.add} with the
   * fields object `{ [shape.keys[i]]: values[i] }`. An event of strings,
   * numbers, booleans and `null` is only recorded, and written by
   * {@link EventListWriter.take}: the array is kept until then, and must
   * not change.
   *
   * @param shape the event type and its field names
   * @param values one per key (`undefined` ones left out)
   * @param clock the sender's Lamport clock for it
   * @param timestamp ms since the epoch; default now
   * @throws {EncodeError} for a value JSON cannot carry (nothing is appended then)
   * @throws {RangeError} when there are not as many values as keys
   */
  addValues(
    shape: EventShape,
    values: readonly unknown[],
    clock: number,
    timestamp?: number,
  ): void {
    const n = shape.keyText.length;
    if (values.length !== n) {
      throw new RangeError(
        `${shape.type} takes ${n} values (${shape.keys}), got ${values.length}`,
      );
    }
    const at = timestamp ?? Date.now();
    for (let i = 0; i < n; i++) {
      const v = values[i];
      const t = typeof v;
      if (t !== "string" && t !== "number" && t !== "boolean" && t !== "undefined" && v !== null) {
        // Written now, so that a value JSON cannot carry throws here.
        this.#record(this.#append("", shape, values, clock, at), undefined, clock, at);
        return;
      }
    }
    this.#record(shape, values, clock, at);
  }

  /** Store one event: its shape and values, or its text (then `values` is undefined). */
  #record(shape: EventShape | string, values: unknown, clock: number, at: number): void {
    const records = this.#records;
    const i = this.#end;
    if (i === 0) this.#base = at;
    const since = at - this.#base;
    if (typeof shape !== "string" && !Object.is(this.#base + since, at)) {
      // A time the difference does not give back exactly (a fraction of a
      // ms far from the list's first): written now.
      shape = this.#append("", shape, values as readonly unknown[], clock, at);
      values = undefined;
    }
    records[i] = shape;
    records[i + 1] = values;
    records[i + 2] = clock;
    records[i + 3] = since;
    this.#end = i + 4;
  }

  /**
   * The list written so far (`[]` for none), or its first `max` events, as
   * bytes of its own; the events taken leave the writer.
   *
   * @param max events to take at most (a fraction is rounded down); default all
   * @returns the JSON list's bytes (ASCII)
   */
  take(max = Infinity): Uint8Array {
    const records = this.#records;
    const start = this.#next;
    const end = Math.min(this.#end, start + Math.max(0, Math.floor(max)) * 4);
    let text = "[";
    for (let r = start; r < end; r += 4) {
      if (r > start) text += ", ";
      const shape = records[r];
      if (typeof shape === "string") text += shape;
      else {
        text = this.#append(
          text,
          shape as EventShape,
          records[r + 1] as readonly unknown[],
          records[r + 2] as number,
          this.#base + (records[r + 3] as number),
        );
      }
    }
    text += "]";
    // The rest stays where it is (a split flush takes its messages in turn
    // without copying what is left each time); the list restarts when empty.
    if (end === this.#end) {
      if (end > MAX_KEPT_SLOTS) this.#records = [];
      else records.fill(undefined, 0, end);
      this.#end = 0;
      this.#next = 0;
    } else this.#next = end;
    return ascii.encode(text);
  }

  /** `text` followed by the text of one event given by its shape's values. */
  #append(
    text: string,
    shape: EventShape,
    values: readonly unknown[],
    clock: number,
    at: number,
  ): string {
    text += this.#begin(clock, at);
    const joints = shape.joints;
    let quoted = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === undefined) continue;
      if (typeof v === "string" && isVerbatimJsonString(v)) {
        text += joints[4 * i + quoted + 1];
        text += v;
        quoted = 2;
      } else {
        text += joints[4 * i + quoted];
        text += shape.floats[i] ? pyJsonFloats(v) : valueText(v);
        quoted = 0;
      }
    }
    return text + (quoted ? this.#lastStampQuoted : this.#lastStamp) + shape.tail;
  }

  /**
   * The event's text up to its clock's value; sets {@link #lastStamp} for
   * its time.
   */
  #begin(clock: number, at: number): string {
    const offset = utcOffsetAt(at);
    if (offset !== this.#offset) {
      this.#offset = offset;
      this.#head = '{"hostname": ' + this.#hostname + ', "utcoffset": ' + pyJsonScalar(offset) +
        ', "pid": ' + this.#pid + ', "clock": ';
    }
    if (at !== this.#lastAt) {
      this.#lastAt = at;
      this.#lastStamp = ', "timestamp": ' + pyJsonFloat(at / 1000);
      this.#lastStampQuoted = '"' + this.#lastStamp;
    }
    return this.#head + pyJsonScalar(clock);
  }
}

/** A field value as Python's `json.dumps` writes it. */
function valueText(v: unknown): string {
  switch (typeof v) {
    case "string":
      return isVerbatimJsonString(v) ? '"' + v + '"' : pyJsonScalar(v);
    case "number":
      return pyJsonScalar(v);
    case "boolean":
      return v ? "true" : "false";
  }
  return v === null ? "null" : pyJsonDumps(v);
}
