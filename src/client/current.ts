/**
 * Which task is running in the current async context, so that tasks sent
 * from inside a task get `parent_id` and `root_id` as in Celery.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Identity of the running task.
 *
 * @example Tagging log lines with the running task
 * ```ts
 * import { currentTask, type RunningTask } from "@celeriac/celeriac";
 * function logPrefix(): string {
 *   const running: RunningTask | undefined = currentTask.getStore();
 *   return running ? `[${running.id} root=${running.rootId}]` : "[main]";
 * }
 * logPrefix(); // "[main]"
 * currentTask.run({ id: "t2", rootId: "t1" }, logPrefix); // "[t2 root=t1]"
 * ```
 */
export interface RunningTask {
  /** Its id. */
  id: string;
  /** Its workflow root id. */
  rootId: string;
  /** Its task name (set by the worker that runs it). */
  name?: string;
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
