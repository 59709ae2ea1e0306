/**
 * Early acknowledgements written as tasks start. A task with early ack
 * (the default) is acknowledged once its pool reports that its handler was
 * called, not when it is handed over: a Web Worker holds tasks queued behind
 * the one running on its thread, and a worker killed then (`kill -9`, out of
 * memory) loses none of those, whose messages, unacknowledged, come back,
 * as Celery acknowledges a task when a pool process accepts it. Starts are
 * read on a short tick while such tasks wait (the Web Workers write them in
 * shared memory, with no message per task: `start_table.ts`); a task that
 * ends before a tick saw it start is acknowledged with its outcome, which
 * implies its start (`outcomes.ts`).
 *
 * On a broker without leases (AMQP) nothing renews an unacknowledged
 * delivery, and RabbitMQ closes a channel holding one past its
 * `consumer_timeout` (30 minutes by default), redelivering all it held: a
 * task handed over more than `etaHoldLimit` seconds ago (600 by default, the
 * cap of held ETA tasks) is acknowledged then, started or not. A worker
 * killed then loses those of its queued tasks that waited longer than that.
 *
 * @module
 */

import { Settlement } from "./settlement.ts";
import type { WorkerState } from "./worker_state.ts";

/** Milliseconds between two readings of the starts of the tasks waiting for their early ack. */
export const START_ACK_TICK_MS = 20;

/**
 * The running tasks whose early acknowledgement waits for their start.
 *
 * @example
 * ```ts ignore
 * const acks = new StartAcks(state);
 * acks.watch(seq); // handed to the pool; acknowledged once `state.pool.started(seq)`
 * acks.close(); // the worker stops
 * ```
 */
export class StartAcks {
  readonly #st: WorkerState;
  /** Dispatch numbers; those that ended (or were acknowledged otherwise) are dropped at the next tick. */
  readonly #waiting = new Set<number>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** @param st the worker's state: its running tasks, pool and settlements */
  constructor(st: WorkerState) {
    this.#st = st;
  }

  /** How many tasks are watched (some may have ended since the last tick). */
  get size(): number {
    return this.#waiting.size;
  }

  /**
   * Acknowledge running task `seq` once its pool reports it started.
   *
   * @param seq its dispatch number
   */
  watch(seq: number): void {
    this.#waiting.add(seq);
    this.#timer ??= setTimeout(() => this.#tick(), START_ACK_TICK_MS);
  }

  /** Stop watching (the worker stops: its running tasks are settled or put back). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiting.clear();
  }

  #tick(): void {
    this.#timer = undefined;
    const st = this.#st;
    const s = new Settlement();
    // Handed over before this, on a broker without leases: acknowledged, started or not.
    const capped = st.broker.visibilityTimeout === null
      ? performance.now() - (st.options.etaHoldLimit ?? 600) * 1000
      : -Infinity;
    for (const seq of this.#waiting) {
      const r = st.running.get(seq);
      if (r && !r.acked) {
        if (!st.pool.started?.(seq) && r.started >= capped) continue;
        r.acked = true;
        s.acks.push(r.delivery);
        s.startedAcks.push(seq);
      }
      this.#waiting.delete(seq);
    }
    st.settle(s);
    if (this.#waiting.size) this.#timer = setTimeout(() => this.#tick(), START_ACK_TICK_MS);
  }
}
