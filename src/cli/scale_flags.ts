/**
 * The worker's scaling flags: `--eta-task-limit` and
 * `--soft-shutdown-timeout`.
 *
 * @module
 */

import type { WorkerOptions } from "../worker/worker_options.ts";

/**
 * The flags, as `parseArgs` reads them.
 *
 * @example
 * ```ts ignore
 * parseArgs({ args, options: { ...SCALE_OPTIONS } });
 * ```
 */
export const SCALE_OPTIONS = {
  "eta-task-limit": { type: "string" },
  "soft-shutdown-timeout": { type: "string" },
} as const;

/**
 * Their lines in `--help`.
 *
 * @example
 * ```ts ignore
 * console.log(SCALE_HELP);
 * ```
 */
export const SCALE_HELP =
  `      --eta-task-limit N     hold at most N ETA tasks; leave further tasks on the broker
                             until one is due (Celery's worker_eta_task_limit)
      --soft-shutdown-timeout SECONDS
                             on a cold shutdown (second signal, SIGQUIT), let running tasks
                             finish for SECONDS before requeueing the rest (default 0)`;

/**
 * The worker options the flags set.
 *
 * @example
 * ```ts ignore
 * const options = scaleWorkerOptions({ "eta-task-limit": "1000" }); // { etaTaskLimit: 1000 }
 * ```
 *
 * @param values parsed flags
 * @returns options for the Worker
 * @throws {TypeError} for a value that is not a number in range
 */
export function scaleWorkerOptions(
  values: Record<string, unknown>,
): Pick<WorkerOptions, "etaTaskLimit" | "softShutdownTimeout"> {
  const limit = values["eta-task-limit"] as string | undefined;
  const soft = values["soft-shutdown-timeout"] as string | undefined;
  const out: Pick<WorkerOptions, "etaTaskLimit" | "softShutdownTimeout"> = {};
  if (limit !== undefined) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1) {
      throw new TypeError(`--eta-task-limit needs a whole number >= 1, got "${limit}"`);
    }
    out.etaTaskLimit = n;
  }
  if (soft !== undefined) {
    const s = Number(soft);
    if (!Number.isFinite(s) || s < 0) {
      throw new TypeError(`--soft-shutdown-timeout needs a number of seconds >= 0, got "${soft}"`);
    }
    out.softShutdownTimeout = s;
  }
  return out;
}
