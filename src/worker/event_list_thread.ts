/**
 * Task events written off the main thread: the worker's main thread only
 * records each event (its shape, values, clock and time) in one flat array
 * per window and posts it to a Web Worker of its own
 * (event_list_worker.ts), which writes the `task.multi` lists with
 * `EventListWriter` and posts their bytes back. Writing three events
 * per task (their text, its encoding, and the young-generation collections
 * that garbage causes) was most of what `-E` cost the main thread, whose
 * turn-around bounds a worker's rate; a Web Worker's heap is collected on
 * its own thread.
 *
 * The Web Worker starts with the first batch posted, so a worker without
 * task events runs no such thread.
 *
 * @module
 */

import { EVENT_FLOAT_FIELDS } from "../protocol/events.ts";
import type { EventShape } from "../protocol/event_writer.ts";
import { pyJsonDumps, pyJsonFloats } from "../protocol/json.ts";

/** Record code: defines shape `[code, id, type, keys]`. */
export const RECORD_SHAPE = -1;
/** Record code: an event given by its fields, `[code, clock, at, type, fields]`. */
export const RECORD_FIELDS = -2;

/**
 * What the main thread posts: the writer's settings once, then each batch
 * as flat records (`[shape id, clock, at, ...values]`, or those of
 * {@link RECORD_SHAPE} and {@link RECORD_FIELDS}).
 *
 * @example
 * ```ts
 * import type { EventListRequest } from "./event_list_thread.ts";
 * const init: EventListRequest = { sender: { hostname: "w@h", pid: 7 }, batchMax: 100 };
 * ```
 */
export type EventListRequest =
  | { sender: { hostname: string; pid: number }; batchMax: number }
  | unknown[];

/**
 * What the Web Worker posts back for each batch, in order: its lists'
 * bytes (at most `batchMax` events each), or why it could not write them.
 *
 * @example
 * ```ts
 * import type { EventListReply } from "./event_list_thread.ts";
 * const failed: EventListReply = { error: "boom" };
 * ```
 */
export type EventListReply = Uint8Array[] | { error: string };

/**
 * Records task events on the main thread and has a Web Worker write them:
 * the same lists, byte for byte, as an `EventListWriter` given the
 * same calls.
 *
 * @example
 * ```ts ignore
 * const lists = new EventListThread({ hostname: "w@h", pid: 7 }, 100);
 * lists.addValues(STARTED, ["t1"], 1, Date.now());
 * const [bytes] = await lists.take();
 * lists.close();
 * ```
 */
export class EventListThread {
  readonly #sender: { hostname: string; pid: number };
  readonly #batchMax: number;
  #worker: Worker | null = null;
  #records: unknown[] = [];
  #length = 0;
  readonly #shapes = new Map<EventShape, number>();
  /** The replies awaited, in the order of the batches posted. */
  readonly #waiting: PromiseWithResolvers<Uint8Array[]>[] = [];
  #head = 0;
  #closed = false;

  /**
   * @param sender the events' `hostname` and `pid`
   * @param batchMax events per list at most
   */
  constructor(sender: { hostname: string; pid: number }, batchMax: number) {
    this.#sender = sender;
    this.#batchMax = batchMax;
  }

  /** Events recorded and not taken yet. */
  get length(): number {
    return this.#length;
  }

  /**
   * Record one event of `shape`'s type from its values, as
   * `EventListWriter.addValues` does.
   *
   * @param shape the event type and its field names
   * @param values one per key (`undefined` ones left out); copied
   * @param clock the sender's Lamport clock for it
   * @param at ms since the epoch
   * @throws {EncodeError} for a value JSON cannot carry (nothing is recorded then)
   * @throws {RangeError} when there are not as many values as keys
   */
  addValues(shape: EventShape, values: readonly unknown[], clock: number, at: number): void {
    const n = shape.keys.length;
    if (values.length !== n) {
      throw new RangeError(
        `${shape.type} takes ${n} values (${shape.keys}), got ${values.length}`,
      );
    }
    for (let i = 0; i < n; i++) check(shape.keys[i], values[i]);
    let id = this.#shapes.get(shape);
    const r = this.#records;
    if (id === undefined) {
      this.#shapes.set(shape, id = this.#shapes.size);
      r.push(RECORD_SHAPE, id, shape.type, shape.keys);
    }
    r.push(id, clock, at);
    for (let i = 0; i < n; i++) r.push(values[i]);
    this.#length++;
  }

  /**
   * Record one event from its fields, as `EventListWriter.add` does.
   *
   * @param type event type
   * @param fields the type's own fields; copied
   * @param clock the sender's Lamport clock for it
   * @param at ms since the epoch
   * @throws {EncodeError} for a field value JSON cannot carry (nothing is recorded then)
   */
  add(type: string, fields: Record<string, unknown>, clock: number, at: number): void {
    for (const k in fields) if (Object.hasOwn(fields, k)) check(k, fields[k]);
    this.#records.push(RECORD_FIELDS, clock, at, type, fields);
    this.#length++;
  }

  /**
   * Hand the events recorded to the Web Worker.
   *
   * @returns their lists' bytes, at most `batchMax` events each, once written
   * @throws {Error} (the promise) when the Web Worker could not write them, or was closed
   */
  take(): Promise<Uint8Array[]> {
    const records = this.#records;
    this.#records = [];
    this.#length = 0;
    if (this.#closed) return Promise.reject(new Error("the events' Web Worker was stopped"));
    const reply = Promise.withResolvers<Uint8Array[]>();
    this.#waiting.push(reply);
    this.#start().postMessage(records);
    return reply.promise;
  }

  /** Stop the Web Worker for good; the replies still awaited fail, and the batches taken next. */
  close(): void {
    this.#closed = true;
    this.#worker?.terminate();
    this.#worker = null;
    this.#fail(new Error("the events' Web Worker was stopped"));
  }

  /**
   * Start the Web Worker now, if it is not running (else the first batch
   * starts it); nothing once closed.
   */
  start(): void {
    if (!this.#closed) this.#start();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(new URL("./event_list_worker.ts", import.meta.url), {
      type: "module",
      name: "celeriac-events",
    });
    w.onmessage = (e: MessageEvent<EventListReply>) => {
      const reply = this.#next();
      if (!reply) return;
      const m = e.data;
      if (Array.isArray(m)) reply.resolve(m);
      else reply.reject(new Error(m.error));
    };
    w.onerror = (e) => {
      e.preventDefault();
      // A Web Worker that failed is not used again: the next batch starts another.
      this.#worker?.terminate();
      this.#worker = null;
      this.#fail(new Error(`the events' Web Worker failed: ${e.message}`));
    };
    w.postMessage({ sender: this.#sender, batchMax: this.#batchMax } satisfies EventListRequest);
    return this.#worker = w;
  }

  #next(): PromiseWithResolvers<Uint8Array[]> | undefined {
    if (this.#head === this.#waiting.length) return undefined;
    const reply = this.#waiting[this.#head++];
    if (this.#head === this.#waiting.length) {
      this.#waiting.length = 0;
      this.#head = 0;
    }
    return reply;
  }

  #fail(err: Error): void {
    for (let reply = this.#next(); reply; reply = this.#next()) reply.reject(err);
  }
}

/** Throw now for a value JSON cannot carry, as the writer would (flat ones always can). */
function check(key: string, v: unknown): void {
  const t = typeof v;
  if (t === "string" || t === "number" || t === "boolean" || t === "undefined" || v === null) {
    return;
  }
  if (EVENT_FLOAT_FIELDS.has(key)) pyJsonFloats(v);
  else pyJsonDumps(v);
}
