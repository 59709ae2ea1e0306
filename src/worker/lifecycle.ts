/**
 * A task's life inside a worker, as one typed sequence of events:
 *
 * ```
 * received ─┬─ held (ETA) ──────┬─ started ─┬─ succeeded
 *           ├─ waiting (rate) ──┤           ├─ failed
 *           └───────────────────┘           ├─ retried
 *                                           └─ returned (put back in its queue)
 * any step before an outcome may instead end in: revoked | rejected | returned
 * ```
 *
 * The worker emits these through one {@link Lifecycle}; statistics, logging,
 * the inspect registries (and, with `-E`, Celery events) subscribe to it.
 * Subscribers run synchronously, in the order they were added, and must not
 * throw.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Delivery } from "../broker/port.ts";
import type { ExceptionInfo } from "../protocol/result_meta.ts";
import type { TaskRequest } from "../protocol/task_request.ts";
import type { RunOutcome } from "./executor.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * A decodable message of a task this worker runs was taken from the broker
 * and accepted (not revoked, not expired).
 */
export interface TaskReceived {
  /** Event type. */
  type: "received";
  /** The task's headers. */
  req: TaskRequest;
  /** The delivery. */
  delivery: Delivery;
  /** True when a `held` event follows: the task waits for its ETA. */
  held: boolean;
}

/** A received task is held until its ETA (or countdown). */
export interface TaskHeld {
  /** Event type. */
  type: "held";
  /** The task's headers (`eta` is set). */
  req: TaskRequest;
  /** The delivery. */
  delivery: Delivery;
}

/** A received (or due) task waits for a token of its rate limit. */
export interface TaskWaiting {
  /** Event type. */
  type: "waiting";
  /** The task's headers. */
  req: TaskRequest;
  /** The delivery. */
  delivery: Delivery;
}

/** A task was handed to the pool under dispatch number `seq`. */
export interface TaskStarted {
  /** Event type. */
  type: "started";
  /** Dispatch number, unique in this worker. */
  seq: number;
  /** The task's headers. */
  req: TaskRequest;
  /** The delivery. */
  delivery: Delivery;
  /** Whether the delivery is acknowledged as the task starts (early ack) rather than after the run. */
  acked: boolean;
}

/** A task returned. */
export interface TaskSucceeded {
  /** Event type. */
  type: "succeeded";
  /** Dispatch number. */
  seq: number;
  /** The task's headers. */
  req: TaskRequest;
  /** What the run produced. */
  outcome: RunOutcome;
}

/**
 * A task failed: it threw (`raised`), ran past its hard time limit
 * (`time-limit`) or its Web Worker died (`worker-lost`).
 */
export interface TaskFailed {
  /** Event type. */
  type: "failed";
  /** Dispatch number. */
  seq: number;
  /** The task's headers. */
  req: TaskRequest;
  /** Why it failed. */
  cause: "raised" | "time-limit" | "worker-lost";
  /** The exception. */
  exc: ExceptionInfo;
  /** The exception's message, for people. */
  message: string;
  /** What the run produced, for `raised`. */
  outcome?: RunOutcome;
}

/** A task asked to be retried; its retry message is about to be published. */
export interface TaskRetried {
  /** Event type. */
  type: "retried";
  /** Dispatch number. */
  seq: number;
  /** The task's headers. */
  req: TaskRequest;
  /** What the run produced (`retry` is set). */
  outcome: RunOutcome & { retry: NonNullable<RunOutcome["retry"]> };
}

/**
 * A task is not run, or is stopped: revoked (`revoked`), revoked with
 * terminate while running (`terminated`), or past its expiry (`expired`).
 */
export interface TaskRevoked {
  /** Event type. */
  type: "revoked";
  /** The task's headers. */
  req: TaskRequest;
  /** Why. */
  reason: "revoked" | "terminated" | "expired";
  /** True when the message ends here on arrival, without a `received` event. */
  atIntake: boolean;
  /** Dispatch number, when it was running. */
  seq?: number;
  /** The signal number of a `terminated` one's revoke (15 for SIGTERM). */
  signum?: number;
}

/**
 * A message is parked: malformed or undecodable (`malformed`), of a task
 * this worker does not run (`unregistered`), refused by the Web Worker
 * that was to run it (`refused`: undecodable body, disallowed content),
 * given back `maxDeliveries` times by consumers that died holding it
 * (`poison`), or not settled (`unsettled`: an error of the worker while
 * receiving it or settling its outcome, a retry that could not be
 * published, a result or acknowledgement not written within
 * `outageRetryLimit`). Every park is announced once, when it is written: a
 * park that cannot be written leaves the message with the broker, and is
 * not announced.
 */
export interface TaskRejected {
  /** Event type. */
  type: "rejected";
  /** The delivery. */
  delivery: Delivery;
  /** The task's headers, when they could be decoded. */
  req: TaskRequest | null;
  /** Task id, when known. */
  taskId: string | null;
  /** Task name, when known. */
  taskName: string | null;
  /** What is wrong, as stored with the parked message. */
  reason: string;
  /** Which check refused it. */
  kind: "malformed" | "unregistered" | "refused" | "poison" | "unsettled";
  /** True when the message ends here on arrival, without a `received` event. */
  atIntake: boolean;
  /** Dispatch number, for `refused`. */
  seq?: number;
}

/**
 * The `rejected` event of a decoded task message `d` parked for `reason`.
 *
 * @example
 * ```ts ignore
 * lifecycle.announce(rejectedTask(d, req, `unregistered task "${req.task}"`, "unregistered", true));
 * ```
 */
export function rejectedTask(
  delivery: Delivery,
  req: TaskRequest,
  reason: string,
  kind: TaskRejected["kind"],
  atIntake: boolean,
): TaskRejected {
  return {
    type: "rejected",
    delivery,
    req,
    taskId: req.id,
    taskName: req.task,
    reason,
    kind,
    atIntake,
  };
}

/**
 * The task id and name a delivery's headers carry, read without decoding
 * them (a message that could not be, or a task no longer known): each
 * null when absent, not a string, or (the id) empty.
 *
 * @example
 * ```ts
 * import type { Delivery } from "@celeriac/celeriac/protocol";
 * const describe = (delivery: Delivery) => {
 *   const { taskId, taskName } = taskOf(delivery);
 *   return `${taskName}[${taskId}]`;
 * };
 * ```
 *
 * @param d the delivery
 * @returns its task id and name
 */
export function taskOf(d: Delivery): { taskId: string | null; taskName: string | null } {
  const { id, task } = d.headers;
  return {
    taskId: typeof id === "string" && id !== "" ? id : null,
    taskName: typeof task === "string" ? task : null,
  };
}

/**
 * A task leaves this worker without an outcome and goes back to its queue:
 * its Web Worker died and it rejects on worker loss (`worker-lost`), it was
 * stopped with a task that ran past its time limit (`time-limit`), it was
 * held too long for its ETA and is published again (`eta-hold-limit`), its
 * lease ran out while it was held and a sweep restored its message
 * (`lease-lost`: the held copy is dropped), or the worker is shutting down
 * (`shutdown`).
 */
export interface TaskReturned {
  /** Event type. */
  type: "returned";
  /** The task's headers. */
  req: TaskRequest;
  /** Why. */
  why: "worker-lost" | "time-limit" | "eta-hold-limit" | "lease-lost" | "shutdown";
  /** Dispatch number, when it was running. */
  seq?: number;
  /** The reason given by the pool (for `worker-lost`). */
  detail?: string;
}

/**
 * One step of a task's life in a worker.
 *
 * @example Counting outcomes
 * ```ts
 * import type { LifecycleEvent } from "@celeriac/celeriac/worker";
 * const done = { succeeded: 0, failed: 0 };
 * function count(e: LifecycleEvent): void {
 *   if (e.type === "succeeded") done.succeeded++;
 *   else if (e.type === "failed") done.failed++;
 * }
 * ```
 */
export type LifecycleEvent =
  | TaskReceived
  | TaskHeld
  | TaskWaiting
  | TaskStarted
  | TaskSucceeded
  | TaskFailed
  | TaskRetried
  | TaskRevoked
  | TaskRejected
  | TaskReturned;

/**
 * Receives lifecycle events. Must not throw; runs on the worker's main
 * thread, so it must be quick.
 */
export type LifecycleSubscriber = (event: LifecycleEvent) => void;

/**
 * The one place a worker announces what happens to its tasks.
 *
 * @example Subscribing
 * ```ts
 * import { Lifecycle } from "@celeriac/celeriac/worker";
 * const lifecycle = new Lifecycle();
 * const seen: string[] = [];
 * const stop = lifecycle.subscribe((e) => seen.push(e.type));
 * stop(); // unsubscribes
 * ```
 */
export class Lifecycle {
  #subscribers: LifecycleSubscriber[] = [];

  /**
   * Add a subscriber; it receives every later event.
   *
   * @param subscriber the callback
   * @returns a function that removes it
   */
  subscribe(subscriber: LifecycleSubscriber): () => void {
    this.#subscribers = [...this.#subscribers, subscriber];
    return () => {
      this.#subscribers = this.#subscribers.filter((s) => s !== subscriber);
    };
  }

  /**
   * Announce an event to every subscriber, in order; a subscriber that
   * throws stops the others and throws here. Used only before a step is
   * taken, where a catch ends the one task announced (at intake: received,
   * held, waiting, for which the message alone is parked); elsewhere
   * {@link Lifecycle.announce}.
   *
   * @param event what happened
   */
  emit(event: LifecycleEvent): void {
    for (const s of this.#subscribers) s(event);
  }

  /**
   * Announce an event that follows a step already taken (a task handed to
   * the pool, its outcome or its revocation settled): a subscriber that
   * throws is logged and the others still hear it, so that what follows
   * the step is still done. ({@link Lifecycle.emit} throws instead: used
   * before such a step, where the throw ends only the task announced.)
   *
   * @example
   * ```ts
   * import { Lifecycle } from "@celeriac/celeriac/worker";
   * const lifecycle = new Lifecycle();
   * lifecycle.subscribe(() => {
   *   throw new Error("a broken listener");
   * });
   * lifecycle.announce({ type: "rejected", delivery: {} as never, req: null, taskId: "t1",
   *   taskName: null, reason: "r", kind: "unsettled", atIntake: true }); // logged, not thrown
   * ```
   *
   * @param event what happened
   */
  announce(event: LifecycleEvent): void {
    for (const s of this.#subscribers) {
      try {
        s(event);
      } catch (err) {
        log.error("A lifecycle listener failed on the {type} event of task {id} ({error})", {
          type: event.type,
          id: event.req?.id ?? (event.type === "rejected" ? event.taskId : null),
          error: (err as Error)?.stack ?? String(err),
        });
      }
    }
  }
}
