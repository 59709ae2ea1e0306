/**
 * Pieces of an event's text that repeat from one event of a type to the
 * next, kept as bytes: a worker's `task-received` events of one task name
 * carry the same `name`, `args` and `kwargs` (`"bench.noop"`, `"()"`,
 * `"{}"`) and, for a first run, the same `parent_id`, `retries`, `eta` and
 * `expires` (`null`, `0`, `null`, `null`); each such run of fields, keys
 * and values, is copied in one piece while its values stay the same, and
 * the timestamp and the type's closing text in one piece while the
 * millisecond stays the same. Pure: no I/O.
 *
 * @module
 */

const ascii = new TextEncoder();

/**
 * The last text written of consecutive fields `from` to `to` (exclusive)
 * of an event type, with the values it was written from: a writer copies
 * {@link FieldRun.bytes} when the values are the same again.
 *
 * @example
 * ```ts
 * import { FieldRun } from "./event_runs.ts";
 * const run = new FieldRun(1, 3);
 * const bytes = new TextEncoder().encode(', "name": "t", "args": "()"');
 * run.keep(["id-1", "t", "()"], bytes, 0, bytes.length);
 * run.matches(["id-2", "t", "()"]); // true
 * run.matches(["id-3", "u", "()"]); // false
 * ```
 */
export class FieldRun {
  /** The run's first field's index. */
  readonly from: number;
  /** The index after its last field. */
  readonly to: number;
  /** The values {@link FieldRun.bytes} was written from, or null before the first. */
  #values: unknown[] | null = null;
  /** The run's text as written (`, "<key>": <value>` per field), ASCII. */
  bytes: Uint8Array = new Uint8Array();

  /**
   * @param from the run's first field's index
   * @param to the index after its last field
   */
  constructor(from: number, to: number) {
    this.from = from;
    this.to = to;
  }

  /**
   * Whether `values` hold, in the run's fields, what {@link FieldRun.bytes}
   * was written from (strings by content, `0` and `-0` told apart).
   *
   * @param values the event's values, all its fields
   * @returns true when the bytes can be copied for them
   */
  matches(values: readonly unknown[]): boolean {
    const kept = this.#values;
    if (kept === null) return false;
    for (let i = this.from; i < this.to; i++) {
      const v = values[i];
      const k = kept[i - this.from];
      if (v !== k || (v === 0 && 1 / (v as number) !== 1 / (k as number))) return false;
    }
    return true;
  }

  /**
   * Keep the run's text just written: `buf` from `start` to `end`, for
   * `values`.
   *
   * @param values the event's values, all its fields
   * @param buf where the run was written
   * @param start its first byte
   * @param end the byte after its last
   */
  keep(values: readonly unknown[], buf: Uint8Array, start: number, end: number): void {
    this.#values = values.slice(this.from, this.to);
    this.bytes = buf.slice(start, end);
  }
}

/**
 * The runs of consecutive fields named in `repeating`, by the index each
 * starts at (`undefined` where none starts).
 *
 * @example
 * ```ts
 * import { fieldRuns } from "./event_runs.ts";
 * const runs = fieldRuns(["uuid", "name", "args", "root_id", "eta"], ["name", "args", "eta"]);
 * runs[1]?.to; // 3
 * runs[4]?.to; // 5
 * ```
 *
 * @param keys the type's field names, in order
 * @param repeating the names of the fields whose values usually repeat
 * @returns a run per start index
 * @throws {RangeError} for a name that is not one of `keys`
 */
export function fieldRuns(
  keys: readonly string[],
  repeating: readonly string[],
): (FieldRun | undefined)[] {
  for (const name of repeating) {
    if (!keys.includes(name)) {
      throw new RangeError(`Repeating field ${name} is not one of the event's (${keys})`);
    }
  }
  const runs: (FieldRun | undefined)[] = keys.map(() => undefined);
  for (let i = 0; i < keys.length;) {
    if (!repeating.includes(keys[i])) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < keys.length && repeating.includes(keys[j])) j++;
    runs[i] = new FieldRun(i, j);
    i = j;
  }
  return runs;
}

/**
 * An event type's timestamp and closing text (`, "timestamp": …, "type":
 * "…"}`) as bytes, made again only when the timestamp's text changes.
 *
 * @example
 * ```ts
 * import { StampedTail } from "./event_runs.ts";
 * const tail = new StampedTail(', "type": "task-started"}');
 * tail.bytes(', "timestamp": 1700000000.0').length; // 52
 * ```
 */
export class StampedTail {
  readonly #tail: string;
  #stamp = "";
  #bytes = new Uint8Array();

  /** @param tail the type's closing text */
  constructor(tail: string) {
    this.#tail = tail;
  }

  /**
   * @param stamp the event's `, "timestamp": …` text
   * @returns it and the closing text, as bytes
   */
  bytes(stamp: string): Uint8Array {
    if (stamp !== this.#stamp) {
      this.#stamp = stamp;
      this.#bytes = ascii.encode(stamp + this.#tail);
    }
    return this.#bytes;
  }
}
