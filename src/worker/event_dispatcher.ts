/**
 * Sending Celery events from a worker: worker events go out at once on
 * their own routing key; task events are batched into `task.multi` lists
 * (at most 24, or whatever is pending at the next turn of the event loop),
 * as Celery 5.2's worker sends them. A failed publish is logged and
 * dropped: events are best-effort, tasks never wait for them.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Broker } from "../broker/port.ts";
import type { LamportClock } from "../protocol/clock.ts";
import {
  type CeleryEvent,
  encodeEventMessage,
  EVENT_EXCHANGE,
  eventRoutingKey,
  makeEvent,
  TASK_MULTI,
} from "../protocol/events.ts";

const log = getLogger(["celeriac", "worker", "events"]);

/** Task events per `task.multi` message at most (Celery's buffer limit). */
const BATCH_MAX = 24;

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
  #batch: CeleryEvent[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #pending = new Set<Promise<void>>();
  #failing = false;

  /**
   * @param broker where events go
   * @param hostname the worker's node name
   * @param clock the worker's Lamport clock
   * @param options `taskEvents`: send task events (default false)
   */
  constructor(
    broker: Broker,
    hostname: string,
    clock: LamportClock,
    options: { taskEvents?: boolean } = {},
  ) {
    this.#broker = broker;
    this.#hostname = hostname;
    this.#clock = clock;
    this.taskEvents = options.taskEvents ?? false;
  }

  /**
   * Send a worker event now (on its own routing key, e.g. `worker.heartbeat`).
   *
   * @param type event type
   * @param fields its own fields
   */
  send(type: CeleryEvent["type"], fields: Record<string, unknown>): void {
    const event = makeEvent(type, fields, this.#sender());
    this.#publish(encodeEventMessage(event, this.#hostname), eventRoutingKey(type));
  }

  /**
   * Queue a task event for the next `task.multi` batch; nothing happens
   * while task events are off.
   *
   * @param type event type
   * @param fields its own fields
   */
  sendTask(type: CeleryEvent["type"], fields: Record<string, unknown>): void {
    if (!this.taskEvents) return;
    this.#batch.push(makeEvent(type, fields, this.#sender()));
    if (this.#batch.length >= BATCH_MAX) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), 0);
  }

  /** Publish the pending task events now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    this.#publish(encodeEventMessage(batch, this.#hostname), TASK_MULTI);
  }

  /** Flush, and wait until every event sent so far is published (or failed). */
  async close(): Promise<void> {
    this.flush();
    while (this.#pending.size) await Promise.allSettled([...this.#pending]);
  }

  #sender(): { hostname: string; pid: number; clock: number } {
    return { hostname: this.#hostname, pid: Deno.pid, clock: this.#clock.forward() };
  }

  #publish(message: ReturnType<typeof encodeEventMessage>, routingKey: string): void {
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
