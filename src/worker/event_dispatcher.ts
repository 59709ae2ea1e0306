/**
 * Sending Celery events from a worker: worker events go out at once on
 * their own routing key; task events are batched into `task.multi` lists,
 * as Celery 5.2's worker sends them. Celery flushes its buffer (at most 24
 * events) at each turn of its event loop; here task events go out in
 * messages of at most `batchMax` (default 500): a full one at the end of
 * the turn that filled it, the rest `flushMs` (default 50 ms) after the
 * first of them, so a busy worker publishes large batches instead of one
 * small one per turn, spread over its turns rather than all at a window's
 * end (a burst of tens of messages' base64 at once is collected several
 * times in a row, promoting the tasks in flight). Each task event is
 * written as JSON bytes when sent, into one buffer kept from window to
 * window (`EventListWriter`), so that nothing of it stays on the heap until
 * its message goes; each message's events are copied out of it.
 * On a broker with a message size limit (`Broker.maxMessageBytes`: the KV
 * broker's 60,000 bytes) a batch also stops before it would outgrow that
 * limit, less room for the envelope, and goes as several messages; an event
 * that fits no message alone is dropped with a warning naming it.
 * A failed publish is logged and dropped: events are best-effort, tasks
 * never wait for them.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Broker } from "../broker/port.ts";
import { closeWait } from "../broker/sleep.ts";
import type { LamportClock } from "../protocol/clock.ts";
import {
  type CeleryEvent,
  encodeEventListMessage,
  encodeEventMessage,
  EVENT_EXCHANGE,
  EVENT_FLOAT_FIELDS,
  eventRoutingKey,
  makeEvent,
  TASK_MULTI,
} from "../protocol/events.ts";
import { EventListWriter, type EventShape } from "../protocol/event_writer.ts";
import type { Message } from "../protocol/message.ts";

const log = getLogger(["celeriac", "worker", "events"]);

/**
 * Bytes of a broker's message size limit kept for the envelope of a
 * `task.multi` message (content type, headers, properties, exchange,
 * routing key: a few hundred bytes), besides the hostname's escaped bytes.
 */
const ENVELOPE_ROOM = 4096;

/**
 * Options of {@link EventDispatcher}.
 *
 * @example
 * ```ts
 * const options: EventDispatcherOptions = { taskEvents: true, batchMax: 500, flushMs: 50 };
 * ```
 */
export interface EventDispatcherOptions {
  /** Send task events (`-E`). Default false. */
  taskEvents?: boolean;
  /**
   * Task events per `task.multi` message at most. Default 500: a busy worker
   * (~3 events per task) frames, publishes and awaits one PUBLISH per ~170
   * tasks instead of one per ~33 (each is an envelope, a delivery tag, a
   * write and a reply on the main thread).
   */
  batchMax?: number;
  /** Milliseconds a task event waits at most for others to share its message (a full one goes at the end of its turn). Default 50. */
  flushMs?: number;
}

/**
 * A worker's event sender.
 *
 * @example
 * ```ts ignore
 * const events = new EventDispatcher(broker, "celeriac@host", clock, { taskEvents: true });
 * events.sendTask("task-started", { uuid: id });
 * await events.close();
 * ```
 */
export class EventDispatcher {
  /** Whether task events are sent (`-E`, `enable_events` / `disable_events`). */
  taskEvents: boolean;
  readonly #broker: Broker;
  readonly #hostname: string;
  readonly #clock: LamportClock;
  readonly #pid = Deno.pid;
  readonly #batchMax: number;
  /** Bytes of a `task.multi` body at most: the broker's limit less the envelope's room. */
  readonly #batchBytes: number;
  readonly #flushMs: number;
  /** The pending task events, written as bytes. */
  readonly #batch: EventListWriter;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the pending batch got its first event (`performance.now()`). */
  #batchStart = 0;
  /** Whether {@link #sendFull} is queued. */
  #fullQueued = false;
  readonly #pending = new Set<Promise<void>>();
  #failing = false;

  /**
   * @param broker where events go
   * @param hostname the worker's node name
   * @param clock the worker's Lamport clock
   * @param options see {@link EventDispatcherOptions}
   * @throws {RangeError} for a `batchMax` below 1 or a negative `flushMs`
   */
  constructor(
    broker: Broker,
    hostname: string,
    clock: LamportClock,
    options: EventDispatcherOptions = {},
  ) {
    this.#broker = broker;
    this.#hostname = hostname;
    this.#clock = clock;
    this.#batch = new EventListWriter({ hostname, pid: this.#pid });
    this.taskEvents = options.taskEvents ?? false;
    this.#batchMax = options.batchMax ?? 500;
    this.#flushMs = options.flushMs ?? 50;
    const limit = broker.maxMessageBytes;
    this.#batchBytes = limit === undefined
      ? Infinity
      : Math.max(1, limit - ENVELOPE_ROOM - 6 * hostname.length);
    if (!Number.isInteger(this.#batchMax) || this.#batchMax < 1) {
      throw new RangeError(`batchMax must be a whole number >= 1, got ${options.batchMax}`);
    }
    if (!(this.#flushMs >= 0)) {
      throw new RangeError(`flushMs must be a number of milliseconds >= 0, got ${options.flushMs}`);
    }
  }

  /**
   * Send a worker event now (on its own routing key, e.g. `worker.heartbeat`),
   * after the task events pending (so receivers see them in order).
   *
   * @param type event type
   * @param fields its own fields
   * @param floats the fields whose numbers are Python floats; default {@link EVENT_FLOAT_FIELDS}
   */
  send(
    type: CeleryEvent["type"],
    fields: Record<string, unknown>,
    floats: ReadonlySet<string> = EVENT_FLOAT_FIELDS,
  ): void {
    this.flush();
    const event = makeEvent(type, fields, this.#sender());
    this.#publish(encodeEventMessage(event, this.#hostname, floats), eventRoutingKey(type));
  }

  /**
   * Queue a task event for the next `task.multi` batch (published at the
   * end of the turn once `batchMax` are pending, else `flushMs` after the
   * first event pending); nothing happens while task events are off.
   *
   * @param type event type
   * @param fields its own fields
   */
  sendTask(type: CeleryEvent["type"], fields: Record<string, unknown>): void {
    if (!this.taskEvents) return;
    this.#batch.add(type, fields, this.#clock.forward());
    this.#added();
  }

  /**
   * {@link EventDispatcher.sendTask} of an event given as its shape's
   * values (no fields object): what the worker does three times per task.
   *
   * @param shape the event type and its field names
   * @param values one per field, in the shape's order
   */
  sendTaskValues(shape: EventShape, values: readonly unknown[]): void {
    if (!this.taskEvents) return;
    this.#batch.addValues(shape, values, this.#clock.forward());
    this.#added();
  }

  #added(): void {
    const n = this.#batch.length;
    if (n === 1) {
      this.#batchStart = performance.now();
      this.#timer ??= setTimeout(this.#onTimer, this.#flushMs);
    }
    if (n >= this.#batchMax && !this.#fullQueued) {
      this.#fullQueued = true;
      queueMicrotask(this.#sendFull);
    }
  }

  /** Publish each full message pending, at the end of the turn that filled it. */
  readonly #sendFull = (): void => {
    this.#fullQueued = false;
    while (this.#batch.length >= this.#batchMax) this.#publishBatch();
  };

  /**
   * The one flush timer: it publishes the pending events once the first is
   * `flushMs` old (`batchMax` a message), or waits again for the rest of
   * its window, so a busy worker arms a timer once per window.
   */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#batch.length === 0) return;
    const wait = this.#batchStart + this.#flushMs - performance.now();
    if (wait >= 1) this.#timer = setTimeout(this.#onTimer, wait);
    else this.flush();
  };

  /** Publish the pending task events now, at most `batchMax` (and the broker's byte limit) a message. */
  flush(): void {
    while (this.#batch.length > 0) this.#publishBatch();
  }

  /**
   * Publish the first pending events: `batchMax` at most, and no more
   * bytes than the broker's limit allows. One event too big for any
   * message is dropped with a warning instead.
   */
  #publishBatch(): void {
    const list = this.#batch.take(this.#batchMax, this.#batchBytes);
    if (list.length <= this.#batchBytes) {
      this.#publish(encodeEventListMessage(list, this.#hostname), TASK_MULTI);
      return;
    }
    const [event] = JSON.parse(new TextDecoder().decode(list)) as Record<string, unknown>[];
    log.warn(
      "Dropping the {type} event of task {uuid}: it is {size} bytes, over the {limit} bytes " +
        "a task.multi message can carry on this broker (its limit less the envelope); " +
        "shorten what the task's event carries (its arguments' repr, result or traceback)",
      { type: event.type, uuid: event.uuid, size: list.length, limit: this.#batchBytes },
    );
  }

  /**
   * Flush, and wait until every event sent so far is published (or failed),
   * for `CLOSE_WAIT_MS` at most: a server that stopped answering does not
   * hold a worker's shutdown for its reply timeouts (events are best-effort;
   * a publish still waiting ends with the broker's connection).
   */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.flush();
    await closeWait(this.#published());
  }

  async #published(): Promise<void> {
    while (this.#pending.size) await Promise.allSettled([...this.#pending]);
  }

  #sender(): { hostname: string; pid: number; clock: number } {
    return { hostname: this.#hostname, pid: this.#pid, clock: this.#clock.forward() };
  }

  #publish(message: Message, routingKey: string): void {
    const p = this.#broker.broadcast(EVENT_EXCHANGE, message, routingKey).then(
      () => {
        if (this.#failing) log.info("Events are published again");
        this.#failing = false;
      },
      (err) => {
        if (!this.#failing) {
          log.warn("Cannot publish events ({key}): {error}; dropping them until it works", {
            key: routingKey,
            error: (err as Error).message,
          });
        }
        this.#failing = true;
      },
    );
    this.#pending.add(p);
    p.finally(() => this.#pending.delete(p));
  }
}
