/**
 * What a worker holds, for `inspect active / reserved / scheduled`: kept by
 * a lifecycle subscriber.
 *
 * @module
 */

import type { Delivery } from "../broker/port.ts";
import type { TaskRequest } from "../protocol/task_request.ts";
import type { LifecycleEvent } from "./lifecycle.ts";
import type { Running } from "./worker_state.ts";

/**
 * A task a worker holds.
 *
 * @example
 * ```ts
 * import { TaskRegistries } from "@celeriac/celeriac/worker";
 * const registries = new TaskRegistries(); // a worker's: the tasks it holds and runs
 * for (const t of registries.active()) console.log(t.req.task, t.req.id, new Date(t.since));
 * ```
 */
export interface HeldTask {
  /** The task's headers. */
  readonly req: TaskRequest;
  /** Its delivery (body, exchange, routing key, redelivered). */
  readonly delivery: Delivery;
  /**
   * When it entered its present state (epoch milliseconds, on the wall
   * clock; an active task's start is read on the wall clock as it is now).
   */
  readonly since: number;
  /** Whether its delivery is acknowledged (active tasks with early ack). */
  readonly acked: boolean;
}

/** A change of the wall clock's offset from the monotonic one taken for a step (ms). */
const WALL_STEP_MS = 1000;

/**
 * The tasks a worker holds, by state: `active` (handed to the pool),
 * `reserved` (received, waiting for a rate-limit token), `scheduled` (held
 * for an ETA). Subscribe {@link TaskRegistries.subscriber} to the worker's
 * lifecycle. The active ones are read from the worker's own table of
 * running tasks rather than kept a second time: one table entry and one
 * object fewer per task on the worker's hot path.
 *
 * @example
 * ```ts
 * import { Lifecycle, TaskRegistries } from "@celeriac/celeriac/worker";
 * const running = new Map(); // the worker's running tasks, by dispatch number
 * const registries = new TaskRegistries(running);
 * new Lifecycle().subscribe(registries.subscriber);
 * registries.active(); // []
 * ```
 */
export class TaskRegistries {
  readonly #running: { values(): Iterable<Running> };
  readonly #reserved = new Map<TaskRequest, HeldTask>();
  readonly #scheduled = new Map<TaskRequest, HeldTask>();
  readonly #totals = new Map<string, number>();
  #processed = 0;
  /** The wall clock's offset from the monotonic one, as `active` last read it. */
  #wallOffset = NaN;

  /**
   * Registries of a worker whose running tasks are `running`.
   *
   * @param running the worker's running tasks by dispatch number (`WorkerState.running`,
   *   or a `Map`), which {@link TaskRegistries.active} lists, oldest first. Default none.
   */
  constructor(running: { values(): Iterable<Running> } = new Map()) {
    this.#running = running;
  }

  /** The lifecycle subscriber that keeps the registries. */
  readonly subscriber = (e: LifecycleEvent): void => {
    switch (e.type) {
      case "held":
        this.#scheduled.set(e.req, {
          req: e.req,
          delivery: e.delivery,
          since: Date.now(),
          acked: false,
        });
        break;
      case "waiting":
        this.#scheduled.delete(e.req);
        this.#reserved.set(e.req, {
          req: e.req,
          delivery: e.delivery,
          since: Date.now(),
          acked: false,
        });
        break;
      case "started":
        this.#processed++;
        this.#totals.set(e.req.task, (this.#totals.get(e.req.task) ?? 0) + 1);
        this.#scheduled.delete(e.req);
        this.#reserved.delete(e.req);
        break;
      case "revoked":
      case "rejected":
      case "returned":
        if (e.req) {
          this.#scheduled.delete(e.req);
          this.#reserved.delete(e.req);
        }
        break;
    }
  };

  /** Tasks handed to the pool since the worker started. */
  get processed(): number {
    return this.#processed;
  }

  /**
   * How many tasks of each name were handed to the pool (`inspect stats` `total`).
   *
   * @returns task name → count
   */
  totals(): Record<string, number> {
    return Object.fromEntries(this.#totals);
  }

  /**
   * Tasks handed to the pool (running, or queued inside a Web Worker).
   *
   * @returns them, oldest first
   */
  active(): HeldTask[] {
    const out: HeldTask[] = [];
    // A start on the monotonic clock, read on the wall clock as it is now:
    // Celery's time.time() at the start for a step of the wall clock before
    // it (NTP's correction, a VM resumed), where `timeOrigin + started` would
    // be off by every step since the worker started; a step while it runs
    // keeps its elapsed time true. The offset read is kept until the wall clock steps by more
    // than a second: read anew each time, Date.now()'s whole milliseconds against
    // performance.now()'s fractions gave each reply a time_start up to 1 ms apart.
    const offset = Date.now() - performance.now();
    if (!(Math.abs(offset - this.#wallOffset) <= WALL_STEP_MS)) this.#wallOffset = offset;
    const wallOffset = this.#wallOffset;
    for (const r of this.#running.values()) {
      out.push({
        req: r.req,
        delivery: r.delivery,
        since: wallOffset + r.started,
        acked: r.acked,
      });
    }
    return out;
  }

  /**
   * Tasks received and waiting for a rate-limit token.
   *
   * @returns them, oldest first
   */
  reserved(): HeldTask[] {
    return [...this.#reserved.values()];
  }

  /**
   * Tasks held until their ETA.
   *
   * @returns them, in the order received
   */
  scheduled(): HeldTask[] {
    return [...this.#scheduled.values()];
  }
}
