/**
 * A worker's batched task events written as the text of a `task.multi`
 * body, without building event objects: a worker sends three events per
 * task by the thousand, and what it allocates or keeps for them is paid by
 * every task in flight (each young-generation collection copies what is
 * alive, and what outlives two of them is promoted).
 *
 * An event added by {@link EventListWriter.addValues} with flat values
 * (strings, numbers, booleans, `null`) is written at once, byte by byte,
 * into one buffer kept from list to list: no string is made of it, and
 * nothing of it stays alive on the heap until its list is taken. Other
 * events (those of {@link EventListWriter.add}, and values JSON must walk)
 * are written as text first, so that a value JSON cannot carry throws
 * before any byte is written. A take copies a run of events out as a list
 * of its own.
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
import { type FieldRun, fieldRuns, StampedTail } from "./event_runs.ts";

const ascii = new TextEncoder();

/** The list buffer's first size, in bytes. */
const INITIAL_BYTES = 64 * 1024;
/** The list buffer's size kept once it empties at most (a larger one is let go). */
const MAX_KEPT_BYTES = 4 * 1024 * 1024;
/** Constant pieces up to this many bytes are copied by a loop rather than `set()` (see `putBytes`). */
const SHORT_PIECE = 16;

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
  /** Whether field `i` is a Python float ({@link EVENT_FLOAT_FIELDS}), written with `.0` when whole. */
  readonly floats: readonly boolean[];
  /** {@link EventShape.keyText}'s bytes. */
  readonly keyBytes: readonly Uint8Array[];
  /** {@link EventShape.tail}'s bytes. */
  readonly tailBytes: Uint8Array;
  /** The bytes of all of {@link EventShape.keyBytes}. */
  readonly keysLength: number;
  /** The run of repeating fields starting at each index, if one does (see {@link fieldRuns}). */
  readonly runs: readonly (FieldRun | undefined)[];
  /** The timestamp and {@link EventShape.tail} as bytes, for the last timestamp written. */
  readonly stampedTail: StampedTail;

  /**
   * @param type the event type
   * @param keys its own fields' names, in the order Celery writes them
   * @param repeating the fields whose values usually repeat from one event
   *   of the type to the next (a task name, its `args`): each run of them
   *   is copied as the bytes written last while its values stay the same.
   *   Default none.
   * @throws {RangeError} for a repeating field that is not one of `keys`
   */
  constructor(type: string, keys: readonly string[], repeating: readonly string[] = []) {
    this.type = type;
    this.keys = keys;
    this.keyText = keys.map((k) => ", " + pyJsonScalar(k) + ": ");
    this.tail = ', "type": ' + pyJsonScalar(type) + "}";
    this.floats = keys.map((k) => EVENT_FLOAT_FIELDS.has(k));
    this.keyBytes = this.keyText.map((t) => ascii.encode(t));
    this.tailBytes = ascii.encode(this.tail);
    this.keysLength = this.keyBytes.reduce((sum, b) => sum + b.length, 0);
    this.runs = fieldRuns(keys, repeating);
    this.stampedTail = new StampedTail(this.tail);
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
 * ```ts
 * const writer = new EventListWriter({ hostname: "celeriac@h", pid: 7 });
 * writer.add("task-started", { uuid: "t1" }, 3, 1700000000000);
 * new TextDecoder().decode(writer.take());
 * // '[{"hostname": "celeriac@h", "utcoffset": 0, "pid": 7, "clock": 3, "uuid": "t1", "timestamp": 1700000000.0, "type": "task-started"}]'
 * ```
 */
export class EventListWriter {
  /**
   * The text of the events since the buffer last emptied, each written as
   * `, {…}` (ASCII): a take copies a run of them out with its first
   * separator's space turned into `[`.
   */
  #buf = new Uint8Array(INITIAL_BYTES);
  /** Bytes of {@link #buf} in use. */
  #len = 0;
  /** Where each event written ends in {@link #buf}, by its index. */
  #ends = new Int32Array(1024);
  /** Events written since the buffer last emptied. */
  #count = 0;
  /** Index of the first event not taken yet. */
  #next = 0;
  readonly #hostname: string;
  readonly #pid: string;
  readonly #keys = new Map<string, string>();
  readonly #tails = new Map<string, string>();
  /** `{"hostname": …, "utcoffset": …, "pid": …, "clock": ` for {@link #offset}. */
  #head = "";
  #offset = NaN;
  #lastAt = NaN;
  /** `, "timestamp": …` for {@link #lastAt}. */
  #stamp = "";
  /** `, ` and {@link #head}, as bytes: what starts an event in the list. */
  #headBytes = new Uint8Array();

  /** @param sender the sender's `hostname` and `pid` */
  constructor(sender: { hostname: string; pid: number }) {
    this.#hostname = pyJsonScalar(sender.hostname);
    this.#pid = pyJsonScalar(sender.pid);
  }

  /** Events added and not taken yet. */
  get length(): number {
    return this.#count - this.#next;
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
    this.#sender(at);
    let text = this.#head + pyJsonScalar(clock);
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
    this.#event(text + this.#stamp + tail);
  }

  /**
   * Append one event of `shape`'s type from its field values, in the
   * shape's order: the same text as {@link EventListWriter.add} with the
   * fields object `{ [shape.keys[i]]: values[i] }`. An event of strings,
   * numbers, booleans and `null` is written straight into the list's
   * bytes, with no string of its own.
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
    this.#sender(at);
    // Room for the whole event first, from its values' lengths: then it is
    // written with the buffer and position in locals, and a value that
    // needs more than a copy (an escape, a float's digits, JSON's walk)
    // leaves what was written uncommitted (`#len` moves at the end only).
    const head = this.#headBytes;
    let room = head.length + MAX_NUMBER + this.#stamp.length + shape.tailBytes.length +
      shape.keysLength;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (typeof v === "string") room += v.length + 2;
      else if (typeof v === "number" || typeof v === "boolean" || v == null) room += MAX_NUMBER;
      else return this.#addText(shape, values, clock);
    }
    this.#reserve(room);
    const buf = this.#buf;
    const runs = shape.runs;
    let p = putNumber(buf, putBytes(buf, this.#len, head), clock);
    for (let i = 0; i < n;) {
      const run = runs[i];
      if (run === undefined) {
        p = putField(buf, p, shape, i, values[i++]);
        if (p < 0) return this.#addText(shape, values, clock);
      } else if (run.matches(values)) {
        p = putBytes(buf, p, run.bytes);
        i = run.to;
      } else {
        const start = p;
        for (; i < run.to; i++) {
          p = putField(buf, p, shape, i, values[i]);
          if (p < 0) return this.#addText(shape, values, clock);
        }
        run.keep(values, buf, start, p);
      }
    }
    this.#len = putBytes(buf, p, shape.stampedTail.bytes(this.#stamp));
    this.#end();
  }

  /** {@link EventListWriter.addValues} of an event written as text first (#head and #stamp set). */
  #addText(shape: EventShape, values: readonly unknown[], clock: number): void {
    let text = this.#head + pyJsonScalar(clock);
    for (let j = 0; j < values.length; j++) {
      const w = values[j];
      if (w === undefined) continue;
      text += shape.keyText[j] + (shape.floats[j] ? pyJsonFloats(w) : valueText(w));
    }
    this.#event(text + this.#stamp + shape.tail);
  }

  /**
   * The list written so far (`[]` for none), or its first `max` events, as
   * bytes of its own; the events taken leave the writer. With `maxBytes`,
   * the list stops before the first event that would make it longer than
   * that, but it always holds at least one event (when one is pending): a
   * list of one event longer than `maxBytes` tells the caller that event
   * fits no message.
   *
   * @param max events to take at most (a fraction is rounded down); default all
   * @param maxBytes bytes of the list at most (brackets included); default no limit
   * @returns the JSON list's bytes (ASCII)
   */
  take(max = Infinity, maxBytes = Infinity): Uint8Array {
    let k = Math.min(this.#count - this.#next, Math.max(0, Math.floor(max)));
    if (k === 0) return Uint8Array.of(0x5b, 0x5d);
    const from = this.#next === 0 ? 0 : this.#ends[this.#next - 1];
    // A list of events `next..i` is `ends[i] - from` bytes long (its first
    // separator's `, ` becomes `[`, and a `]` closes it).
    if (this.#ends[this.#next + k - 1] - from > maxBytes) {
      let fit = 1;
      while (fit < k && this.#ends[this.#next + fit] - from <= maxBytes) fit++;
      k = fit;
    }
    const to = this.#ends[this.#next + k - 1];
    // `, {…}, {…}` from the byte after the first comma: `[{…}, {…}]`.
    // A slice is not zeroed first; its last byte (the next event's comma, or past the events) becomes `]`.
    const out = this.#buf.slice(from + 1, to + 1);
    out[0] = 0x5b;
    out[to - from - 1] = 0x5d;
    this.#next += k;
    if (this.#next === this.#count) {
      this.#len = 0;
      this.#count = 0;
      this.#next = 0;
      if (this.#buf.length > MAX_KEPT_BYTES) this.#buf = new Uint8Array(INITIAL_BYTES);
    }
    return out;
  }

  /** Sets {@link #head} and {@link #stamp} for an event sent at `at`. */
  #sender(at: number): void {
    const offset = utcOffsetAt(at);
    if (offset !== this.#offset) {
      this.#offset = offset;
      this.#head = '{"hostname": ' + this.#hostname + ', "utcoffset": ' + pyJsonScalar(offset) +
        ', "pid": ' + this.#pid + ', "clock": ';
      this.#headBytes = ascii.encode(", " + this.#head);
    }
    if (at !== this.#lastAt) {
      this.#lastAt = at;
      this.#stamp = ', "timestamp": ' + pyJsonFloat(at / 1000);
    }
  }

  /** Append one event given as its whole text (ASCII, or UTF-8 encoded as such). */
  #event(text: string): void {
    this.#ascii(", ");
    this.#reserve(text.length * 3);
    this.#len += ascii.encodeInto(text, this.#buf.subarray(this.#len)).written;
    this.#end();
  }

  /** Close the event being written. */
  #end(): void {
    if (this.#count === this.#ends.length) {
      const ends = new Int32Array(this.#ends.length * 2);
      ends.set(this.#ends);
      this.#ends = ends;
    }
    this.#ends[this.#count++] = this.#len;
  }

  /** Append ASCII text (a key, a constant, JSON already escaped), a byte per character. */
  #ascii(text: string): void {
    const n = text.length;
    this.#reserve(n);
    const buf = this.#buf;
    let p = this.#len;
    for (let i = 0; i < n; i++) buf[p++] = text.charCodeAt(i);
    this.#len = p;
  }

  /**
   * Room for `n` more bytes, and one past them (a take's slice ends a byte
   * after its last event): the events taken are dropped from the front
   * first, then the buffer doubles as needed.
   */
  #reserve(n: number): void {
    if (this.#len + n < this.#buf.length) return;
    if (this.#next > 0) {
      const from = this.#ends[this.#next - 1];
      this.#buf.copyWithin(0, from, this.#len);
      this.#len -= from;
      for (let i = this.#next; i < this.#count; i++) {
        this.#ends[i - this.#next] = this.#ends[i] - from;
      }
      this.#count -= this.#next;
      this.#next = 0;
    }
    let size = this.#buf.length;
    while (this.#len + n >= size) size *= 2;
    if (size === this.#buf.length) return;
    const buf = new Uint8Array(size);
    buf.set(this.#buf.subarray(0, this.#len));
    this.#buf = buf;
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

/** Room for a number, `true`, `false` or `null` (a double's longest text is 24 characters). */
const MAX_NUMBER = 32;
const NULL = ascii.encode("null");
const TRUE = ascii.encode("true");
const FALSE = ascii.encode("false");

/**
 * Write field `i` of `shape` with flat value `v` (a string, number,
 * boolean or `null`; nothing for `undefined`) to `buf` at `p`, which has
 * room for it.
 *
 * @returns the position after it, or -1 for a string that needs escaping (the bytes written then are garbage)
 */
function putField(buf: Uint8Array, p: number, shape: EventShape, i: number, v: unknown): number {
  if (v === undefined) return p;
  p = putBytes(buf, p, shape.keyBytes[i]);
  if (typeof v === "string") return putVerbatim(buf, p, v);
  if (typeof v === "number") {
    return shape.floats[i] ? putAscii(buf, p, pyJsonFloat(v)) : putNumber(buf, p, v);
  }
  return putBytes(buf, p, v === null ? NULL : v ? TRUE : FALSE);
}

/**
 * Copy a constant piece (head, key, timestamp, tail, encoded once) to `buf`
 * at `p`, which has room for it. A `set()` costs ~20 ns a call, where a
 * loop costs ~1.5 ns a byte: a piece of up to {@link SHORT_PIECE} bytes
 * (most keys: `, "uuid": `) is copied by a loop.
 *
 * @returns the position after it
 */
function putBytes(buf: Uint8Array, p: number, bytes: Uint8Array): number {
  const n = bytes.length;
  if (n > SHORT_PIECE) buf.set(bytes, p);
  else for (let i = 0; i < n; i++) buf[p + i] = bytes[i];
  return p + n;
}

/** Copy ASCII text (JSON already escaped) to `buf` at `p`, a byte per character; the position after it. */
function putAscii(buf: Uint8Array, p: number, text: string): number {
  const n = text.length;
  for (let i = 0; i < n; i++) buf[p++] = text.charCodeAt(i);
  return p;
}

/**
 * Write `"s"` to `buf` at `p` when `s` needs no escape in JSON (printable
 * ASCII, no quote or backslash), as `pyJsonScalar` writes it.
 *
 * @returns the position after it, or -1 for a string that needs more (the bytes written then are garbage)
 */
function putVerbatim(buf: Uint8Array, p: number, s: string): number {
  const n = s.length;
  buf[p++] = 0x22;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    buf[p++] = c;
  }
  buf[p++] = 0x22;
  return p;
}

/**
 * Write a number as `pyJsonScalar` writes it to `buf` at `p`: digits for a
 * whole one from 0 to 2^32 - 1, else its text.
 *
 * @returns the position after it
 */
function putNumber(buf: Uint8Array, p: number, v: number): number {
  if (v >>> 0 !== v || 1 / v < 0) return putAscii(buf, p, pyJsonScalar(v));
  let digits = 1;
  for (let d = v; d >= 10; d = Math.floor(d / 10)) digits++;
  const end = p + digits;
  let d = v;
  for (let q = end;;) {
    const next = Math.floor(d / 10);
    buf[--q] = 0x30 + d - next * 10;
    d = next;
    if (d === 0) break;
  }
  return end;
}
