/**
 * `app.events`: receive Celery events (from Celeriac and Python workers and
 * clients) as an async iterable, and send `task-sent` when the app's
 * `taskSendSentEvent` is on.
 *
 * @module
 */

import { lazyLogger } from "./lazy_logger.ts";
import type { Broker, PublishTarget } from "../broker/port.ts";
import { LamportClock } from "../protocol/clock.ts";
import {
  CAST_TIMEOUT,
  controlExpires,
  encodeControlRequest,
  PIDBOX_EXCHANGE,
} from "../protocol/control.ts";
import {
  type CeleryEvent,
  decodeEventMessage,
  encodeEventMessage,
  EVENT_EXCHANGE,
  eventRoutingKey,
  makeEvent,
} from "../protocol/events.ts";
import type { Message } from "../protocol/message.ts";
import { pyIsoFormat } from "../protocol/time.ts";
import { anonymousNodeName, processId } from "./runtime.ts";

const log = lazyLogger(["celeriac", "events"]);

/**
 * Handlers by event type, each receiving its type of event; `"*"` receives
 * every event.
 *
 * @example
 * ```ts
 * import type { EventHandlers } from "@celeriac/celeriac";
 * const handlers: EventHandlers = {
 *   "task-succeeded": (e) => console.log(e.uuid, e.runtime),
 *   "*": (e) => console.log(e.type),
 * };
 * ```
 */
export type EventHandlers =
  & { [K in CeleryEvent["type"]]?: (event: Extract<CeleryEvent, { type: K }>) => void }
  & { "*"?: (event: CeleryEvent) => void };

/**
 * Options of {@link Events.receive}.
 *
 * @example
 * ```ts
 * import type { ReceiveOptions } from "@celeriac/celeriac";
 * const options: ReceiveOptions = {
 *   signal: AbortSignal.timeout(60_000),
 *   handlers: { "task-failed": (e) => console.error(e.uuid, e.exception) },
 * };
 * ```
 */
export interface ReceiveOptions {
  /** Stops receiving; the iteration ends. */
  signal?: AbortSignal;
  /**
   * Called for each event of a type (`"*"`: every event), before the event
   * is yielded. Must not throw (a throwing handler is logged).
   */
  handlers?: EventHandlers;
  /**
   * Ask workers for a heartbeat at once (Celery's `wakeup`: a `heartbeat`
   * broadcast), so that monitors see them without waiting. Default true.
   */
  wakeup?: boolean;
  /**
   * Events kept while the consumer is busy; beyond, the oldest are dropped
   * (with a warning). Default 10,000.
   */
  buffer?: number;
}

/**
 * Celery events for an app: receive them, and send `task-sent`.
 *
 * @example Printing every event for a minute
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * for await (const e of app.events.receive({ signal: AbortSignal.timeout(60_000) })) {
 *   console.log(e.hostname, e.type);
 * }
 * ```
 */
export class Events {
  readonly #broker: () => Promise<Broker>;
  readonly #clock = new LamportClock();
  #hostname: string | undefined;

  /**
   * Use `app.events`.
   *
   * @param broker opens the app's broker
   */
  constructor(broker: () => Promise<Broker>) {
    this.#broker = broker;
  }

  /**
   * Receive events until `signal` aborts: single events and workers'
   * `task.multi` batches, from every node on the broker. Malformed event
   * messages are logged and skipped.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const ac = new AbortController();
   * for await (const e of app.events.receive({ signal: ac.signal })) {
   *   if (e.type === "task-succeeded") console.log(e.uuid, e.result, e.runtime);
   * }
   * ```
   *
   * @param options signal, handlers, wakeup, buffer
   * @returns the events, in arrival order
   */
  async *receive(options: ReceiveOptions = {}): AsyncIterableIterator<CeleryEvent> {
    const signal = options.signal;
    for await (const batch of this.receiveBatches(options)) {
      for (const e of batch) {
        if (signal?.aborted) return;
        yield e;
      }
    }
  }

  /**
   * As {@link Events.receive}, but each step yields every event that arrived
   * since the previous step (at least one), in arrival order: one step per
   * message or more instead of one per event, for consumers that keep up
   * with thousands of events a second (the dashboard does).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * let n = 0;
   * for await (const batch of app.events.receiveBatches({ signal: AbortSignal.timeout(10_000) })) {
   *   n += batch.length;
   * }
   * ```
   *
   * @param options signal, handlers, wakeup, buffer (events kept across batches not yet read)
   * @returns the batches, in arrival order
   */
  async *receiveBatches(options: ReceiveOptions = {}): AsyncIterableIterator<CeleryEvent[]> {
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    const limit = options.buffer ?? 10_000;
    let queue: CeleryEvent[] = [];
    let wake: (() => void) | null = null;
    let dropped = 0;
    const onEvents = (events: CeleryEvent[]) => {
      // A message's list is ours alone: taken whole when nothing waits before it.
      if (queue.length === 0) queue = events;
      else for (const e of events) queue.push(e);
      if (queue.length > limit) {
        dropped += queue.length - limit;
        queue.splice(0, queue.length - limit);
        log.warn("Events arrive faster than they are read: dropped {n} so far", { n: dropped });
      }
      wake?.();
    };
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await this.listen(onEvents, { ...options, signal });
      while (!signal.aborted) {
        if (queue.length === 0) {
          await new Promise<void>((r) => wake = r);
          wake = null;
          continue;
        }
        const batch = queue;
        queue = [];
        yield batch;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      stop.abort();
    }
  }

  /**
   * Call `onEvents` with the events of each message as it is decoded (single
   * events and workers' `task.multi` batches, from every node on the
   * broker), until `signal` aborts; malformed event messages are logged and
   * skipped. Nothing is queued: a consumer that applies the events at once
   * (the dashboard does) keeps no message's events alive after it, where
   * {@link Events.receiveBatches} holds them until its next step is read.
   * Resolves once subscribed.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * let n = 0;
   * await app.events.listen((events) => n += events.length, { signal: AbortSignal.timeout(10_000) });
   * ```
   *
   * @param onEvents called with each message's events (at least one), in arrival order;
   *   must not throw (a throwing one is logged)
   * @param options signal (required), handlers (called first), wakeup; `buffer` is not used
   * @throws {BrokerConnectionError} when the broker cannot be reached to subscribe or
   *   to send the wakeup; nothing stays subscribed then
   */
  async listen(
    onEvents: (events: CeleryEvent[]) => void,
    options: ReceiveOptions & { signal: AbortSignal },
  ): Promise<void> {
    const handlers = options.handlers;
    const onMessage = (m: Message) => {
      let events: CeleryEvent[];
      try {
        events = decodeEventMessage(m);
      } catch (err) {
        log.warn("Ignored a malformed event message: {error}", { error: (err as Error).message });
        return;
      }
      if (events.length === 0) return;
      for (const e of events) {
        this.#clock.adjust(e.clock);
        if (handlers) {
          callHandler(handlers[e.type] as ((e: CeleryEvent) => void) | undefined, e);
          callHandler(handlers["*"], e);
        }
      }
      try {
        onEvents(events);
      } catch (err) {
        log.error("An events consumer failed: {error}", { error: (err as Error).message });
      }
    };
    const broker = await this.#broker();
    // Its own controller too: a listen() that rejects leaves no subscription up.
    const failed = new AbortController();
    await broker.subscribe(EVENT_EXCHANGE, onMessage, {
      signal: AbortSignal.any([options.signal, failed.signal]),
      queue: `${EVENT_EXCHANGE}.${crypto.randomUUID()}`,
      bindingKey: "#",
    });
    if (options.wakeup ?? true) {
      const req = { method: "heartbeat", arguments: {}, destination: null };
      try {
        await broker.broadcast(
          PIDBOX_EXCHANGE,
          encodeControlRequest(req, {
            clock: this.#clock.forward(),
            expires: controlExpires(CAST_TIMEOUT),
          }),
        );
      } catch (err) {
        failed.abort();
        throw err;
      }
    }
  }

  /**
   * Send the `task-sent` event of a task message just published (Celery's
   * `task_send_sent_event`). The app calls this when `taskSendSentEvent` is
   * on; a failure is logged, never thrown.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * import { encodeTaskMessage } from "@celeriac/celeriac/protocol";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const message = encodeTaskMessage({
   *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
   *   now: new Date(), origin: "gen1@host", replyTo: crypto.randomUUID(),
   * });
   * await app.events.sent(message, { exchange: "", routingKey: "celery" }, "celery");
   * ```
   *
   * @param message the task message
   * @param target where it was published
   * @param queue its queue
   */
  async sent(message: Message, target: PublishTarget, queue: string): Promise<void> {
    const h = message.headers;
    const date = (v: unknown) => typeof v === "string" ? pyIsoFormat(new Date(v), "+00:00") : null;
    this.#hostname ??= anonymousNodeName();
    const event = makeEvent("task-sent", {
      uuid: h.id,
      root_id: h.root_id ?? null,
      parent_id: h.parent_id ?? null,
      name: h.task,
      args: h.argsrepr ?? "",
      kwargs: h.kwargsrepr ?? "",
      retries: h.retries ?? 0,
      eta: date(h.eta),
      expires: date(h.expires),
      queue,
      exchange: target.exchange ?? "",
      routing_key: target.routingKey,
    }, { hostname: this.#hostname, pid: processId(), clock: this.#clock.forward() });
    try {
      const broker = await this.#broker();
      await broker.broadcast(
        EVENT_EXCHANGE,
        encodeEventMessage(event, this.#hostname),
        eventRoutingKey("task-sent"),
      );
    } catch (err) {
      log.warn("Cannot send task-sent for {id}: {error}", {
        id: h.id,
        error: (err as Error).message,
      });
    }
  }
}

/** Call an event handler; a throwing one is logged. */
function callHandler(h: ((e: CeleryEvent) => void) | undefined, e: CeleryEvent): void {
  if (!h) return;
  try {
    h(e);
  } catch (err) {
    log.error("Event handler for {type} failed: {error}", {
      type: e.type,
      error: (err as Error).message,
    });
  }
}
