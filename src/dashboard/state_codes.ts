/**
 * The task states by the small numbers the dashboard's task table keeps them
 * as, and which of them it evicts last. Pure.
 *
 * @module
 */

import { TASK_EVENT_STATE } from "../client/event_state.ts";
import type { TaskState } from "./task_record.ts";

/**
 * The states, by the code the table keeps: each task event type's, in
 * Celery's order, so `PENDING` (of `task-sent`) is 0, a new row's state.
 */
export const STATES: readonly TaskState[] = Object.values(TASK_EVENT_STATE);
/** State → its code. */
export const STATE_CODE = new Map(STATES.map((state, code) => [state, code]));
/** Event type → the code of the state it puts a task in. */
export const EVENT_CODE = new Map(
  Object.entries(TASK_EVENT_STATE).map(([type, state]) => [type, STATE_CODE.get(state)!]),
);

/**
 * The code of a running task's state: a running task sends no event until it ends, so the
 * least recently updated tasks are often the longest running, which a user may want to revoke.
 * The table evicts finished tasks before them.
 */
export const RUNNING_CODE = STATE_CODE.get("STARTED")!;
/**
 * Running tasks one eviction passes over (each moved to the newest end) before it evicts the
 * oldest anyway: a table full of them still makes room, in a bounded time.
 */
export const MAX_PASSED = 8;
