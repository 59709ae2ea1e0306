/**
 * A worker's batched task events written as the text of a `task.multi`
 * body, without building event objects: a worker sends three events per
 * task by the thousand, and what it allocates or walks for them is paid by
 * every task in flight.
 *
 * Each event is pushed as pieces of text (constant ones cached, values as
 * Python's `json.dumps` writes them) and the list is joined and encoded to
 * bytes once, when it is taken: V8 joins and encodes strings natively,
 * where a byte-by-byte copy in JavaScript runs cold between the worker's
 * other work (measured in the Redis drain: about 1.5 µs more per task),
 * and pieces joined once make no intermediate strings.
 *
 * @module
 */

import { isVerbatimJsonString, pyJsonDumps, pyJsonScalar } from "./json.ts";
import { utcOffsetAt } from "./events.ts";

const ascii = new TextEncoder();

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
   * @param type the event type
   * @param keys its own fields' names, in the order Celery writes them
   */
  constructor(type: string, keys: readonly string[]) {
    this.type = type;
    this.keys = keys;
    this.keyText = keys.map((k) => ", " + pyJsonScalar(k) + ": ");
    this.tail = ', "type": ' + pyJsonScalar(type) + "}";
  }
}

/**
 * Writes one sender's events into a JSON list, byte for byte the text
 * `pyJsonDumps(events.map((e) => makeEvent(e.type, e.fields, sender)))`
 * gives (Celery's field order and Python's `json.dumps` spelling): the
 * list grows with {@link EventListWriter.add} or
 * {@link EventListWriter.addValues} and is handed over as bytes, and
 * started again, by {@link EventListWriter.take}.
 *
 * @example
 * ```ts ignore
 * const writer = new EventListWriter({ hostname: "celeriac@h", pid: 7 });
 * writer.add("task-started", { uuid: "t1" }, 3, 1700000000000);
 * new TextDecoder().decode(writer.take());
 * // '[{"hostname": "celeriac@h", "utcoffset": 0, "pid": 7, "clock": 3, "uuid": "t1", "timestamp": 1700000000, "type": "task-started"}]'
 * ```
 */
export class EventListWriter {
  /** The list's text so far, in pieces (joined once, by take()). */
  #pieces: string[] = [];
  #count = 0;
  readonly #hostname: string;
  readonly #pid: string;
  readonly #keys = new Map<string, string>();
  readonly #tails = new Map<string, string>();
  /** `{"hostname": …, "utcoffset": …, "pid": …, "clock": ` for {@link #offset}. */
  #head = "";
  #offset = NaN;
  #lastAt = NaN;
  #lastStamp = "";

  /** @param sender the sender's `hostname` and `pid` */
  constructor(sender: { hostname: string; pid: number }) {
    this.#hostname = pyJsonScalar(sender.hostname);
    this.#pid = pyJsonScalar(sender.pid);
  }

  /** Events written since the last {@link EventListWriter.take}. */
  get length(): number {
    return this.#count;
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
    const start = this.#begin(clock, timestamp ?? Date.now());
    try {
      for (const k in fields) {
        if (!Object.hasOwn(fields, k)) continue;
        const v = fields[k];
        if (v === undefined) continue;
        let key = this.#keys.get(k);
        if (key === undefined) this.#keys.set(k, key = ", " + pyJsonScalar(k) + ": ");
        this.#pieces.push(key);
        this.#value(v);
      }
    } catch (err) {
      this.#pieces.length = start;
      throw err;
    }
    let tail = this.#tails.get(type);
    if (tail === undefined) this.#tails.set(type, tail = ', "type": ' + pyJsonScalar(type) + "}");
    this.#pieces.push(this.#lastStamp, tail);
    this.#count++;
  }

  /**
   * Append one event of `shape`'s type from its field values, in the
   * shape's order: the same text as {@link EventListWriter.add} with the
   * fields object `{ [shape.keys[i]]: values[i] }`.
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
    const keys = shape.keyText;
    if (values.length !== keys.length) {
      throw new RangeError(
        `${shape.type} takes ${keys.length} values (${shape.keys}), got ${values.length}`,
      );
    }
    const start = this.#begin(clock, timestamp ?? Date.now());
    try {
      for (let i = 0; i < keys.length; i++) {
        const v = values[i];
        if (v === undefined) continue;
        this.#pieces.push(keys[i]);
        this.#value(v);
      }
    } catch (err) {
      this.#pieces.length = start;
      throw err;
    }
    this.#pieces.push(this.#lastStamp, shape.tail);
    this.#count++;
  }

  /**
   * The list written so far (`[]` for none), as bytes of its own; the writer starts a new one.
   *
   * @returns the JSON list's bytes (ASCII)
   */
  take(): Uint8Array {
    const text = "[" + this.#pieces.join("") + "]";
    this.#pieces = [];
    this.#count = 0;
    return ascii.encode(text);
  }

  /**
   * Push the event's pieces up to its clock's value (after the list's
   * separator); sets {@link #lastStamp} for its time.
   *
   * @returns the number of pieces before the event, to roll it back to
   */
  #begin(clock: number, at: number): number {
    const offset = utcOffsetAt(at);
    if (offset !== this.#offset) {
      this.#offset = offset;
      this.#head = '{"hostname": ' + this.#hostname + ', "utcoffset": ' + pyJsonScalar(offset) +
        ', "pid": ' + this.#pid + ', "clock": ';
    }
    if (at !== this.#lastAt) {
      this.#lastAt = at;
      this.#lastStamp = ', "timestamp": ' + pyJsonScalar(at / 1000);
    }
    const pieces = this.#pieces;
    const start = pieces.length;
    if (this.#count > 0) pieces.push(", ");
    pieces.push(this.#head, pyJsonScalar(clock));
    return start;
  }

  /** Push a field value as Python's `json.dumps` writes it. */
  #value(v: unknown): void {
    const pieces = this.#pieces;
    switch (typeof v) {
      case "string":
        if (isVerbatimJsonString(v)) pieces.push('"', v, '"');
        else pieces.push(pyJsonScalar(v));
        return;
      case "number":
        pieces.push(pyJsonScalar(v));
        return;
      case "boolean":
        pieces.push(v ? "true" : "false");
        return;
    }
    pieces.push(v === null ? "null" : pyJsonDumps(v));
  }
}
