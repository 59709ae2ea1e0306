/**
 * The `registered` inspect reply: the tasks a worker runs, each with the
 * attributes asked for (`taskinfoitems`), as Celery 5.2 writes them:
 * `tasks.add [rate_limit=10/s time_limit=20]`.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import { pyJsonFloat } from "../protocol/json.ts";

/** The attributes shown when none are asked for (Celery's `DEFAULT_TASK_INFO_ITEMS`). */
export const DEFAULT_TASK_INFO_ITEMS: readonly string[] = ["exchange", "routing_key", "rate_limit"];

/** What a task's attributes are read from besides its options. */
export interface RegisteredSources {
  /** The task's rate limit as set or defined, or null without one. */
  rate(name: string): string | null;
  /** Time limits set at run time (`time_limit` command), by task name; they replace the task's. */
  timeLimits: ReadonlyMap<string, { timeLimit: number | null; softTimeLimit: number | null }>;
}

/** A task attribute by Celery's name, or undefined / null when the task has none. */
type Attribute = (
  name: string,
  options: Record<string, unknown>,
  sources: RegisteredSources,
) => unknown;

/**
 * A limit set by the `time_limit` command as Celery's worker shows it: a
 * Python float (`2.0`), as Celery's `control time_limit` sends it.
 */
function pythonFloat(n: number | null): string | null {
  return n === null ? null : pyJsonFloat(n);
}

/** Celery's task attributes this worker knows; any other is one the task does not have. */
const ATTRIBUTES: Record<string, Attribute> = {
  name: (name) => name,
  rate_limit: (name, _, s) => s.rate(name),
  time_limit: (name, o, s) =>
    s.timeLimits.has(name) ? pythonFloat(s.timeLimits.get(name)!.timeLimit) : o.timeLimit,
  soft_time_limit: (name, o, s) =>
    s.timeLimits.has(name) ? pythonFloat(s.timeLimits.get(name)!.softTimeLimit) : o.softTimeLimit,
  queue: (_, o) => o.queue,
  priority: (_, o) => o.priority,
  max_retries: (_, o) => o.maxRetries === undefined ? 3 : o.maxRetries,
  default_retry_delay: (_, o) => o.defaultRetryDelay ?? 180,
};

/**
 * The tasks the worker runs (not Celery's built-ins), sorted, each followed
 * by the asked attributes it has (`[a=1 b=2]`, in the order asked); an
 * attribute it does not have, or does not know, is left out, as Celery
 * leaves out those that are `None`. Time limits set at run time show as
 * Python floats (`time_limit=2.0`); those the task defines, as written.
 *
 * @example
 * ```ts ignore
 * registeredTasks(app, ["time_limit"], { rate: () => null, timeLimits: new Map() });
 * // ["tasks.add", "tasks.sleep [time_limit=2]"]
 * ```
 *
 * @param app the app whose tasks the worker runs
 * @param items the attributes asked for; none (or empty) means {@link DEFAULT_TASK_INFO_ITEMS}
 * @param sources rate limits and time limits set at run time
 * @returns the reply's lines
 */
export function registeredTasks(
  app: Celery,
  items: readonly string[] | undefined,
  sources: RegisteredSources,
): string[] {
  const asked = [...new Set(items?.length ? items : DEFAULT_TASK_INFO_ITEMS)];
  return [...app.tasks.values()].filter((t) => t.handler && !t.name.startsWith("celery."))
    .map((t) => {
      const options = t.options as Record<string, unknown>;
      const fields = asked.flatMap((item) => {
        const value = Object.hasOwn(ATTRIBUTES, item)
          ? ATTRIBUTES[item](t.name, options, sources)
          : undefined;
        return value === undefined || value === null ? [] : [`${item}=${value}`];
      });
      return fields.length ? `${t.name} [${fields.join(" ")}]` : t.name;
    }).sort();
}
