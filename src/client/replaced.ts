/**
 * The signal a task stops with once `ctx.replace(sig)` has sent its
 * replacement (Celery's `Ignore('Replaced by new task')`).
 *
 * @module
 */

/**
 * Thrown (as a rejection) by `ctx.replace(sig)` once the replacement is
 * sent: it stops the handler, and the worker stores nothing for the task —
 * its id now belongs to the replacement's final task. A handler that
 * catches it changes nothing.
 *
 * @example
 * ```ts
 * import { Celery, group } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const fetchOne = app.task("tasks.fetch_one", async (url: string) => (await fetch(url)).status);
 * const fetchAll = app.task("tasks.fetch_all", { bind: true }, (ctx, urls: string[]) =>
 *   ctx.replace(group(urls.map((u) => fetchOne.s(u)))));
 * ```
 */
export class Replaced extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "REPLACED";
  /** The id of the task replaced (and of its replacement's final task). */
  readonly taskId: string;
  /** The task name of the replacing signature (`celery.chain`, `celery.chord`, a task's). */
  readonly replacement: string;

  /**
   * Describe a replacement (created by `ctx.replace()`).
   *
   * @param taskId the replaced task's id
   * @param replacement the replacing signature's task name
   */
  constructor(taskId: string, replacement: string) {
    super(`Task ${taskId} replaced by ${replacement}`);
    this.name = "Replaced";
    this.taskId = taskId;
    this.replacement = replacement;
  }
}
