/**
 * A worker's batched task events written straight into the bytes of a
 * `task.multi` body, without building event objects or JSON strings: a
 * worker sends three events per task by the thousand, and what it allocates
 * for them is paid again in garbage collection by every task in flight.
 *
 * @module
 */

import { pyJsonDumps, pyJsonScalar } from "./json.ts";
import { utcOffsetAt } from "./events.ts";

const COMMA = 0x2c;
const SPACE = 0x20;
const QUOTE = 0x22;

const ascii = new TextEncoder();

/**
 * Writes one sender's events into a JSON list, byte for byte the text
 * `pyJsonDumps(events.map((e) => makeEvent(e.type, e.fields, sender)))`
 * gives (Celery's field order and Python's `json.dumps` spelling): the
 * list grows with {@link EventListWriter.add} and is handed over, and
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
  #buf = new Uint8Array(16_384);
  #pos = 0;
  #count = 0;
  // The constant pieces, as bytes: copying them is a memcpy, and the
  // strings they came from (often cons strings, slow to read by index) are gone.
  readonly #head: Uint8Array;
  readonly #pid: Uint8Array;
  readonly #keys = new Map<string, Uint8Array>();
  readonly #tails = new Map<string, Uint8Array>();
  #lastAt = NaN;
  #lastStamp = new Uint8Array();

  /** @param sender the sender's `hostname` and `pid` */
  constructor(sender: { hostname: string; pid: number }) {
    this.#head = ascii.encode('{"hostname": ' + pyJsonScalar(sender.hostname) + ', "utcoffset": ');
    this.#pid = ascii.encode(', "pid": ' + pyJsonScalar(sender.pid) + ', "clock": ');
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
    const start = this.#pos;
    try {
      this.#write(type, fields, clock, timestamp ?? Date.now());
    } catch (err) {
      this.#pos = start;
      throw err;
    }
    this.#count++;
  }

  /**
   * The list written so far (`[]` for none), as bytes of its own; the writer starts a new one.
   *
   * @returns the JSON list's bytes (ASCII)
   */
  take(): Uint8Array {
    this.#ensure(1);
    this.#buf[this.#pos++] = 0x5d;
    const out = this.#count === 0 ? new Uint8Array([0x5b, 0x5d]) : this.#buf.slice(0, this.#pos);
    out[0] = 0x5b;
    this.#pos = 0;
    this.#count = 0;
    return out;
  }

  #write(type: string, fields: Record<string, unknown>, clock: number, at: number): void {
    if (this.#count > 0) {
      this.#ensure(2);
      this.#buf[this.#pos++] = COMMA;
      this.#buf[this.#pos++] = SPACE;
    } else {
      this.#ensure(1);
      this.#pos++; // the "[" take() puts in
    }
    this.#bytes(this.#head);
    this.#ascii(String(utcOffsetAt(at)));
    this.#bytes(this.#pid);
    this.#ascii(Number.isSafeInteger(clock) ? String(clock) : pyJsonScalar(clock));
    for (const k in fields) {
      if (!Object.hasOwn(fields, k)) continue;
      const v = fields[k];
      if (v === undefined) continue;
      let key = this.#keys.get(k);
      if (key === undefined) this.#keys.set(k, key = ascii.encode(", " + pyJsonScalar(k) + ": "));
      this.#bytes(key);
      this.#value(v);
    }
    if (at !== this.#lastAt) {
      this.#lastAt = at;
      this.#lastStamp = ascii.encode(', "timestamp": ' + pyJsonScalar(at / 1000));
    }
    this.#bytes(this.#lastStamp);
    let tail = this.#tails.get(type);
    if (tail === undefined) {
      this.#tails.set(type, tail = ascii.encode(', "type": ' + pyJsonScalar(type) + "}"));
    }
    this.#bytes(tail);
  }

  #value(v: unknown): void {
    switch (typeof v) {
      case "string":
        if (!this.#quoted(v)) this.#ascii(pyJsonScalar(v));
        return;
      case "number":
        this.#ascii(
          Number.isSafeInteger(v) && !Object.is(v, -0) ? String(v) : pyJsonScalar(v),
        );
        return;
      case "boolean":
        this.#ascii(v ? "true" : "false");
        return;
    }
    this.#ascii(v === null ? "null" : pyJsonDumps(v));
  }

  /**
   * Append `"s"` when `s` is printable ASCII without `"` or `\\` (what
   * JSON writes as is), checking while copying.
   *
   * @returns false, with nothing appended, for any other string
   */
  #quoted(s: string): boolean {
    this.#ensure(s.length + 2);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = QUOTE;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === QUOTE || c === 0x5c) return false;
      buf[pos++] = c;
    }
    buf[pos++] = QUOTE;
    this.#pos = pos;
    return true;
  }

  #bytes(b: Uint8Array): void {
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }

  /** Append an ASCII string (what the JSON encoders return) byte by byte. */
  #ascii(s: string): void {
    this.#ensure(s.length);
    const buf = this.#buf;
    let pos = this.#pos;
    for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    this.#pos = pos;
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const bigger = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
    bigger.set(this.#buf.subarray(0, this.#pos));
    this.#buf = bigger;
  }
}
