/**
 * Which task is running in the current async context, so that tasks sent
 * from inside a task get `parent_id` and `root_id` as in Celery.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";

/** Identity of the running task. */
export interface RunningTask {
  /** Its id. */
  id: string;
  /** Its workflow root id. */
  rootId: string;
}

const KEY = Symbol.for("celeriac.currentTask");
const holder = globalThis as unknown as Record<symbol, AsyncLocalStorage<RunningTask>>;

/**
 * The async-context store of the running task, shared by every copy of this
 * module loaded in one isolate.
 *
 * @example
 * ```ts
 * import { currentTask } from "@celeriac/celeriac";
 * currentTask.run({ id: "a", rootId: "a" }, () => currentTask.getStore()?.id); // "a"
 * ```
 */
export const currentTask: AsyncLocalStorage<RunningTask> = holder[KEY] ??= new AsyncLocalStorage<
  RunningTask
>();
