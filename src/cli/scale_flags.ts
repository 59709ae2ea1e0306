/**
 * The worker's scaling flags: `--autoscale`, `--autoscale-keepalive`,
 * `--eta-task-limit` and `--soft-shutdown-timeout`.
 *
 * @module
 */

import { positiveInt, positiveNumber } from "./flag_numbers.ts";
import { parseAutoscale, rangeProblem } from "../worker/autoscale_policy.ts";
import type { WorkerOptions } from "../worker/worker_options.ts";
import { grantedEnv } from "./permissions.ts";
import { flagValue, UsageError } from "./exit_codes.ts";

type ScaleOptions = Pick<WorkerOptions, "autoscale" | "etaTaskLimit" | "softShutdownTimeout">;

/**
 * The flags, as `parseArgs` reads them.
 *
 * @example
 * ```ts ignore
 * parseArgs({ args, options: { ...SCALE_OPTIONS } });
 * ```
 */
export const SCALE_OPTIONS = {
  autoscale: { type: "string" },
  "autoscale-keepalive": { type: "string" },
  "eta-task-limit": { type: "string" },
  "soft-shutdown-timeout": { type: "string" },
} as const;

/**
 * Their lines in `--help`.
 *
 * @example
 * ```ts
 * console.log(SCALE_HELP);
 * ```
 */
export const SCALE_HELP =
  `      --autoscale MAX,MIN    grow the pool up to MAX Web Workers while tasks outnumber them,
                             retire idle ones down to MIN (starts with MIN; -c is ignored)
      --autoscale-keepalive SECONDS
                             surplus Web Workers are retired after SECONDS (default 30, or
                             the AUTOSCALE_KEEPALIVE environment variable, as Celery)
      --eta-task-limit N     hold at most N ETA tasks; leave further tasks on the broker
                             until one is due (Celery's worker_eta_task_limit)
      --soft-shutdown-timeout SECONDS
                             on a cold shutdown (second signal, SIGQUIT), let running tasks
                             finish for SECONDS before requeueing the rest (default 0)`;

/**
 * The worker options the flags set.
 *
 * @example
 * ```ts
 * const options = scaleWorkerOptions({ "eta-task-limit": "1000" }); // { etaTaskLimit: 1000 }
 * ```
 *
 * @param values parsed flags
 * @returns options for the Worker
 * @throws {UsageError} for a value that is not a number in range
 */
export function scaleWorkerOptions(values: Record<string, unknown>): ScaleOptions {
  const limit = values["eta-task-limit"] as string | undefined;
  const soft = values["soft-shutdown-timeout"] as string | undefined;
  const out: ScaleOptions = {};
  const autoscale = values.autoscale as string | undefined;
  const flag = values["autoscale-keepalive"] as string | undefined;
  if (autoscale !== undefined) {
    out.autoscale = flagValue(() => parseAutoscale(autoscale));
    const tooMany = rangeProblem(out.autoscale.max, out.autoscale.min ?? 0);
    if (tooMany) throw new UsageError(`--autoscale ${autoscale}: ${tooMany}`);
    const keepalive = flag ?? keepaliveEnv();
    if (keepalive !== undefined) {
      const from = flag === undefined ? "AUTOSCALE_KEEPALIVE" : "--autoscale-keepalive";
      out.autoscale.keepalive = positiveNumber(keepalive, from);
    }
  } else if (flag !== undefined) {
    throw new UsageError("--autoscale-keepalive goes with --autoscale MAX,MIN");
  }
  if (limit !== undefined) out.etaTaskLimit = positiveInt(limit, "--eta-task-limit");
  if (soft !== undefined) {
    const s = Number(soft);
    if (!Number.isFinite(s) || s < 0) {
      throw new UsageError(`--soft-shutdown-timeout needs a number of seconds >= 0, got "${soft}"`);
    }
    out.softShutdownTimeout = s;
  }
  return out;
}

/** Celery's `AUTOSCALE_KEEPALIVE` environment variable, when set and readable without a prompt. */
function keepaliveEnv(): string | undefined {
  return grantedEnv("AUTOSCALE_KEEPALIVE") || undefined;
}
