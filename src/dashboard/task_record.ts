/**
 * What the dashboard shows of a task: its record, the states events move
 * it through, its timeline, and the filters of the Tasks page.
 *
 * @module
 */

import { type EventTaskState, TASK_EVENT_STATE } from "../client/event_state.ts";

/** Task states as Celery names them. */
export type TaskState = EventTaskState;

/**
 * Event type → the state it puts a task in (Celery's `TASK_EVENT_TO_STATE`;
 * the client's `TASK_EVENT_STATE`).
 *
 * @example
 * ```ts
 * import { EVENT_STATE } from "@celeriac/celeriac/dashboard";
 * EVENT_STATE["task-sent"]; // "PENDING"
 * ```
 */
export const EVENT_STATE: Readonly<Record<string, TaskState>> = TASK_EVENT_STATE;

/** States after which a task does nothing more. */
export const READY_STATES: ReadonlySet<TaskState> = new Set([
  "SUCCESS",
  "FAILURE",
  "REVOKED",
  "REJECTED",
]);

/**
 * One step of a task's timeline.
 *
 * @example
 * ```ts
 * import type { TimelineStep } from "@celeriac/celeriac/dashboard";
 * const step: TimelineStep = { state: "STARTED", timestamp: 1795490261.98, hostname: "celery@h" };
 * ```
 */
export interface TimelineStep {
  /** The state the event put the task in. */
  state: TaskState;
  /** When, Unix seconds. */
  timestamp: number;
  /** The node that sent the event. */
  hostname: string;
}

/**
 * What the dashboard knows of a task.
 *
 * @example
 * ```ts
 * import { TaskTable } from "@celeriac/celeriac/dashboard";
 * const table = new TaskTable({ maxTasks: 100 });
 * table.apply({ type: "task-received", hostname: "w@h", timestamp: 1, uuid: "t1", name: "add" });
 * table.get("t1")?.state; // "RECEIVED"
 * ```
 */
export interface TaskRecord {
  /** Task id. */
  uuid: string;
  /** Task name, once an event carried it. */
  name: string | null;
  /** Current state (that of the latest event by timestamp). */
  state: TaskState;
  /** The worker that received it (or the client that sent it). */
  worker: string | null;
  /** Python repr of the positional arguments. */
  args: string | null;
  /** Python repr of the keyword arguments. */
  kwargs: string | null;
  /** Repr of the return value. */
  result: string | null;
  /** Repr of the exception. */
  exception: string | null;
  /** Traceback text. */
  traceback: string | null;
  /** Retries so far. */
  retries: number;
  /** Seconds it ran. */
  runtime: number | null;
  /** ETA, ISO 8601. */
  eta: string | null;
  /** Expiry, ISO 8601. */
  expires: string | null;
  /** Queue (from `task-sent`). */
  queue: string | null;
  /** Parent task id. */
  parentId: string | null;
  /** Workflow root id. */
  rootId: string | null;
  /** Time of the first event (Unix seconds). */
  firstSeen: number;
  /** Time of the latest event (Unix seconds). */
  lastSeen: number;
  /** Received timestamp, for prefetch time. */
  received: number | null;
  /** Started timestamp. */
  started: number | null;
  /** Every state change in timestamp order (at most 100). */
  timeline: TimelineStep[];
}

/**
 * Filters of {@link TaskTable.query}.
 *
 * @example
 * ```ts
 * import type { TaskQuery } from "@celeriac/celeriac/dashboard";
 * const q: TaskQuery = { state: "FAILURE", name: "tasks.add", offset: 0, limit: 50 };
 * ```
 */
export interface TaskQuery {
  /** Only tasks in this state. */
  state?: string;
  /** Only tasks whose name contains this (case-insensitive). */
  name?: string;
  /** Only tasks of this worker. */
  worker?: string;
  /** Only tasks whose id, args, kwargs, result or exception contain this text. */
  text?: string;
  /** Rows to skip. Default 0. */
  offset?: number;
  /** Rows to return. Default 50, at most 500. */
  limit?: number;
  /**
   * Only the tasks held when the answer with this `cursor` was made (tasks
   * that arrive later are counted as `newer`), so that paging on does not
   * shift rows from one page to the next. Default: all held now.
   */
  cursor?: number;
}

/**
 * What {@link TaskTable.apply} tells of the task an event updated, written
 * into an object the caller keeps (nothing is allocated per event).
 *
 * @example
 * ```ts
 * import { type TaskFacts, TaskTable } from "@celeriac/celeriac/dashboard";
 * const facts: TaskFacts = { name: null, queue: null, eta: null, received: null, started: null };
 * new TaskTable().apply({ type: "task-received", hostname: "w@h", timestamp: 1, uuid: "t1", name: "add" }, facts);
 * facts.name; // "add"
 * ```
 */
export interface TaskFacts {
  /** Task name, once an event carried it. */
  name: string | null;
  /** Queue (from `task-sent`). */
  queue: string | null;
  /** ETA, ISO 8601. */
  eta: string | null;
  /** Received timestamp. */
  received: number | null;
  /** Started timestamp. */
  started: number | null;
}
