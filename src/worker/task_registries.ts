/**
 * What a worker holds, for `inspect active / reserved / scheduled`: kept by
 * a lifecycle subscriber.
 *
 * @module
 */

import type { Delivery } from "../broker/port.ts";
import type { TaskRequest } from "../protocol/task_request.ts";
import type { LifecycleEvent } from "./lifecycle.ts";

/**
 * A task a worker holds.
 *
 * @example
 * ```ts ignore
 * for (const t of registries.active()) console.log(t.req.task, t.req.id, new Date(t.since));
 * ```
 */
export interface HeldTask {
  /** The task's headers. */
  readonly req: TaskRequest;
  /** Its delivery (body, exchange, routing key, redelivered). */
  readonly delivery: Delivery;
  /** When it entered its present state (epoch milliseconds). */
  readonly since: number;
  /** Whether its delivery is acknowledged (active tasks with early ack). */
  readonly acked: boolean;
}

/**
 * The tasks a worker holds, by state: `active` (handed to the pool),
 * `reserved` (received, waiting for a rate-limit token), `scheduled` (held
 * for an ETA). Subscribe {@link TaskRegistries.subscriber} to the worker's
 * lifecycle.
 *
 * @example
 * ```ts
 * import { Lifecycle, TaskRegistries } from "@celeriac/celeriac/worker";
 * const registries = new TaskRegistries();
 * new Lifecycle().subscribe(registries.subscriber);
 * registries.active(); // []
 * ```
 */
export class TaskRegistries {
  readonly #active = new Map<number, HeldTask>();
  readonly #reserved = new Map<TaskRequest, HeldTask>();
  readonly #scheduled = new Map<TaskRequest, HeldTask>();
  readonly #totals = new Map<string, number>();
  #processed = 0;

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
        this.#active.set(e.seq, {
          req: e.req,
          delivery: e.delivery,
          since: Date.now(),
          acked: e.acked,
        });
        break;
      case "succeeded":
      case "failed":
      case "retried":
        this.#active.delete(e.seq);
        break;
      case "revoked":
      case "rejected":
      case "returned":
        if (e.seq !== undefined) this.#active.delete(e.seq);
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
    return [...this.#active.values()];
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
