/**
 * How the beat loop publishes one due entry, as Celery's beat does: through
 * the app's own task when it registers it, else by name.
 *
 * @module
 */

import { lazyLogger } from "../client/lazy_logger.ts";
import type { Celery } from "../client/app.ts";
import { pyRepr, REPR_MAXSIZE } from "../protocol/repr.ts";
import type { ScheduledEntry } from "./entry.ts";

const log = lazyLogger(["celeriac", "beat"]);

/**
 * Publish one run of `entry` on `app`'s broker: through its registered task
 * (whose handler's arity checks the entry's arguments), else by name with a
 * warning, once per entry in `warned`.
 *
 * @example
 * ```ts ignore
 * const warned = new Set<string>();
 * const id = await publishEntry(app, entry, warned);
 * ```
 *
 * @param app the app whose broker receives the task
 * @param entry the due entry
 * @param warned names of the entries already warned to send an unregistered task (added to)
 * @returns the sent task's id
 * @throws {TaskArgumentsError} for arguments the registered task's handler cannot take
 */
export async function publishEntry(
  app: Celery,
  entry: ScheduledEntry,
  warned: Set<string>,
): Promise<string> {
  const headers = { ...entry.options.headers, argsrepr: beatArgsRepr(entry.args) };
  const options = { ...entry.options, headers, kwargs: { ...entry.kwargs } };
  const local = app.tasks.get(entry.task);
  if (local) {
    return (await local.applyAsync([...entry.args] as never, options)).id;
  }
  if (!warned.has(entry.name)) {
    warned.add(entry.name);
    log.warn(
      'beat: entry "{entry}" sends task "{task}", which this app does not register: sent by ' +
        "name all the same (a worker elsewhere must serve it)",
      { entry: entry.name, task: entry.task },
    );
  }
  return (await app.sendTask(entry.task, entry.args, options)).id;
}

/**
 * Celery's beat passes a non-empty `args` on as a list (so `argsrepr` reads
 * `[16, 16]`, where a client's tuple reads `(16, 16)`), and none as `()`.
 */
function beatArgsRepr(args: readonly unknown[]): string {
  if (args.length === 0) return "()";
  const repr = pyRepr(args);
  return repr.length > REPR_MAXSIZE ? repr.slice(0, REPR_MAXSIZE - 3) + "..." : repr;
}

/**
 * When an entry runs next, as logged once its publish returned: its next due
 * time, or now when that passed while the publish blocked (a broker slow to
 * answer, the publish retries): the next tick sends it at once.
 *
 * @example
 * ```ts ignore
 * nextRunText(null); // "never"
 * ```
 *
 * @param nextRun the next due time in ms, or `null` for none
 * @returns the time as ISO text, or "never"
 */
export function nextRunText(nextRun: number | null): string {
  return nextRun === null ? "never" : new Date(Math.max(nextRun, Date.now())).toISOString();
}
