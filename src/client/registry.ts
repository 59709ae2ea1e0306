/**
 * An app's task registry: the tasks defined with `app.task()`, each checked
 * (a name, a handler, a valid rate limit, not defined twice) and given the
 * app's `taskAnnotations`.
 *
 * @module
 */

import { checkTaskOptions } from "./task_option_names.ts";
import { parseRate } from "../protocol/rate.ts";
import { annotate, type TaskAnnotations } from "./annotations.ts";
import { Task } from "./task.ts";
import type { TaskOptions, TaskSender } from "./task_options.ts";

/**
 * The tasks defined in an app, by name.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const registry = new TaskRegistry();
 * registry.define(app, "tasks.add", (a: number, b: number) => a + b);
 * registry.tasks.has("tasks.add"); // true
 * ```
 */
export class TaskRegistry {
  readonly #tasks = new Map<string, Task<never, unknown>>();

  readonly #remote = new Set<string>();

  /** Registered tasks by name. */
  get tasks(): ReadonlyMap<string, Task<never, unknown>> {
    return this.#tasks;
  }

  /** Names declared with `app.remoteTask` (served by another worker). */
  get remoteNames(): ReadonlySet<string> {
    return this.#remote;
  }

  /**
   * Note a task name declared with `app.remoteTask`: the app knows it but has
   * no handler for it, so it stays out of {@link tasks}.
   *
   * @example
   * ```ts
   * import { TaskRegistry } from "./registry.ts";
   * const registry = new TaskRegistry();
   * registry.declareRemote("py.mul");
   * registry.remoteNames.has("py.mul"); // true
   * ```
   *
   * @param name the task name
   */
  declareRemote(name: string): void {
    this.#remote.add(name);
  }

  /**
   * Define a task: `app.task(name, handler)` or `app.task(name, options, handler)`.
   *
   * @example
   * ```ts ignore
   * registry.define(app, "tasks.ping", { queue: "fast" }, () => "pong", annotations);
   * ```
   *
   * @param sender what the task's handle sends through (the app)
   * @param name the task name
   * @param optionsOrHandler the handler, or the task's options
   * @param maybeHandler the handler when options were given
   * @param annotations the app's `taskAnnotations`; default none
   * @returns the task's handle
   * @throws {TypeError} for an empty name, a missing handler, an option
   *   that is none or has a value of the wrong kind, an invalid `rateLimit`, a name already defined, or an annotation that changes `bind`
   */
  define(
    sender: TaskSender,
    name: string,
    optionsOrHandler: TaskOptions | ((...args: never[]) => unknown),
    maybeHandler?: (...args: never[]) => unknown,
    annotations: TaskAnnotations | null = null,
  ): Task<unknown[], unknown> {
    const handler = typeof optionsOrHandler === "function" ? optionsOrHandler : maybeHandler;
    if (typeof name !== "string" || name === "") {
      throw new TypeError('A task needs a non-empty name, e.g. "tasks.add"');
    }
    if (typeof optionsOrHandler !== "function") {
      checkTaskOptions(optionsOrHandler, `options of task "${name}"`);
    }
    const options = annotate(
      annotations,
      name,
      typeof optionsOrHandler === "function" ? {} : optionsOrHandler,
    );
    if (typeof handler !== "function") {
      throw new TypeError(`Task "${name}" needs a handler function`);
    }
    if (options.rateLimit !== undefined) {
      parseRate(options.rateLimit, `rateLimit of task "${name}"`);
    }
    if (this.#tasks.has(name)) {
      throw new TypeError(`Task "${name}" is already defined in this app: give it another name`);
    }
    const task = new Task<unknown[], unknown>(sender, name, options, handler);
    this.#tasks.set(name, task as Task<never, unknown>);
    return task;
  }
}
