/**
 * Task annotations (Celery's `task_annotations`): option overrides for
 * tasks by name, or for every task with `"*"`, set in the app's
 * configuration instead of at each definition.
 *
 * @module
 */

import { checkTaskOptions } from "./task_option_names.ts";
import type { TaskOptions } from "./task_options.ts";

/**
 * Options an annotation may set: any task option but `bind` and `params`,
 * which change how the handler is called.
 *
 * @example
 * ```ts
 * import type { TaskAnnotation } from "@celeriac/celeriac";
 * const slowDown: TaskAnnotation = { rateLimit: "10/m", acksLate: true };
 * ```
 */
export type TaskAnnotation = Omit<TaskOptions, "bind" | "params">;

/**
 * Annotations by task name; `"*"` annotates every task.
 *
 * @example
 * ```ts
 * import type { TaskAnnotationMap } from "@celeriac/celeriac";
 * const annotations: TaskAnnotationMap = { "tasks.add": { rateLimit: "10/s" }, "*": { trackStarted: true } };
 * ```
 */
export type TaskAnnotationMap = Readonly<Record<string, TaskAnnotation>>;

/**
 * A function annotating tasks by name: the options to override, or
 * `null` / `undefined` for none.
 *
 * @example
 * ```ts
 * import type { TaskAnnotator } from "@celeriac/celeriac";
 * const reportsLate: TaskAnnotator = (name) => name.startsWith("reports.") ? { acksLate: true } : null;
 * ```
 */
export type TaskAnnotator = (name: string) => TaskAnnotation | null | undefined;

/**
 * Celery's `task_annotations`: a map, a function, or a list of them. As in
 * Celery, a task gets the first annotation naming it (a map entry or a
 * function's answer), then the first `"*"` entry — which therefore wins for
 * the options both set — and annotations win over the task's own options.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({
 *   broker: "kv://:memory:",
 *   taskAnnotations: { "tasks.add": { rateLimit: "10/s" }, "*": { acksLate: true } },
 * });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * add.options.rateLimit; // "10/s"
 * ```
 */
export type TaskAnnotations =
  | TaskAnnotationMap
  | TaskAnnotator
  | readonly (TaskAnnotationMap | TaskAnnotator)[];

/**
 * A task's options with the annotations applied.
 *
 * @example
 * ```ts
 * annotate({ "*": { acksLate: true } }, "tasks.add", { queue: "math" });
 * // { queue: "math", acksLate: true }
 * ```
 *
 * @param annotations the setting, or `null`
 * @param name the task name
 * @param options the task's own options
 * @returns the options to use
 * @throws {TypeError} when an annotation is neither a map nor a function, or sets `bind` / `params`
 */
export function annotate(
  annotations: TaskAnnotations | null,
  name: string,
  options: TaskOptions,
): TaskOptions {
  if (!annotations) return options;
  const list = Array.isArray(annotations) ? annotations : [annotations as TaskAnnotationMap];
  const byName = first(list, (a) => typeof a === "function" ? a(name) : own(a, name));
  const any = first(list, (a) => typeof a === "function" ? undefined : own(a, "*"));
  if (byName) checkTaskOptions(byName, `taskAnnotations for "${name}"`);
  if (any) checkTaskOptions(any, 'taskAnnotations["*"]');
  const out = { ...options, ...byName, ...any };
  for (const key of ["bind", "params"] as const) {
    if (out[key] !== options[key]) {
      throw new TypeError(
        `taskAnnotations cannot change "${key}" (task "${name}"): set it where the task is defined`,
      );
    }
  }
  return out;
}

function own(map: TaskAnnotationMap, key: string): TaskAnnotation | undefined {
  if (map === null || typeof map !== "object") {
    throw new TypeError(`taskAnnotations must be maps of task names to options or functions`);
  }
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

function first(
  list: readonly (TaskAnnotationMap | TaskAnnotator)[],
  pick: (a: TaskAnnotationMap | TaskAnnotator) => TaskAnnotation | null | undefined,
): TaskAnnotation | undefined {
  for (const a of list) {
    const found = pick(a);
    if (found) return found;
  }
  return undefined;
}
