// deno-lint-ignore-file no-console
/**
 * What `result ID` and `call NAME --wait` print of a task's outcome, and
 * the exit code they end with: the result (0), the failure (1), or no
 * result within the timeout (3) — as JSON for scripts with `--json`.
 *
 * @module
 */

import type { AsyncResult } from "../client/async_result.ts";
import { excArgsText, TaskError, TimeoutError } from "../client/errors.ts";
import { jsonText } from "../protocol/json.ts";
import { withKvFile } from "./banner.ts";
import { positiveNumber } from "./flag_numbers.ts";
import { EXIT_CODES } from "./exit_codes.ts";

/**
 * Exit code of `result` and `call --wait` when the task failed or was revoked.
 *
 * @example
 * ```ts
 * const { code } = await new Deno.Command("deno", { args: ["run", "-A", "worker.ts", "call", "tasks.add", "--wait"] }).output();
 * if (code === TASK_FAILED_EXIT) console.error("the task failed");
 * ```
 */
export const TASK_FAILED_EXIT: number = EXIT_CODES.failed;

/**
 * Exit code of `result` and `call --wait` when no result came within the timeout.
 *
 * @example
 * ```ts
 * const { code } = await new Deno.Command("deno", { args: ["run", "-A", "worker.ts", "call", "tasks.add", "--wait"] }).output();
 * if (code === NO_RESULT_EXIT) console.error("no result yet: try again later");
 * ```
 */
export const NO_RESULT_EXIT: number = EXIT_CODES.noResult;

/**
 * The seconds of `--timeout` (default 10), checked before anything is sent or read.
 *
 * @example
 * ```ts
 * waitTimeout({ timeout: "2.5" }); // 2.5
 * ```
 *
 * @param values parsed flags
 * @returns seconds > 0, finite (a wait past 24.8 days waits in steps, see long_timeout.ts)
 * @throws {UsageError} when `--timeout` is no finite number of seconds > 0
 */
export function waitTimeout(values: Record<string, string | boolean | undefined>): number {
  return positiveNumber(values.timeout as string | undefined, "--timeout") ?? 10;
}

/** How the outcome is printed. */
export interface OutcomeOptions {
  /** Seconds to wait for it. */
  timeout: number;
  /** One JSON object on stdout (Celery's result meta names), nothing on stderr. */
  json?: boolean;
  /** Also print a failed task's traceback (on stderr). */
  traceback?: boolean;
  /** Added to the line of a wait that timed out: where to read the result later. */
  later?: string;
  /**
   * The result backend's URL, password masked, named by the line of a wait
   * that timed out on a task still PENDING (the worker must store there).
   */
  results?: string;
}

/**
 * Wait for the task's outcome and print it: the result as JSON on stdout;
 * a failure (`FAILURE: ValueError: boom`, with `traceback` its traceback)
 * on stderr; no result within the timeout, a line naming the task and its
 * last state. With `json`, one object on stdout instead:
 * `{"task_id", "status": "SUCCESS", "result"}`, `{"task_id", "status":
 * "FAILURE", "result": {"exc_type", "exc_message", "exc_module"},
 * "traceback"}`, or `{"task_id", "status": <its last state, null when
 * unread>, "timeout": <seconds>}`.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const code = await printOutcome(app.asyncResult("5c0e4e3a-…"), { timeout: 10, json: true });
 * ```
 *
 * @param result the task's result handle
 * @param options see {@link OutcomeOptions}
 * @returns 0, {@link TASK_FAILED_EXIT} or {@link NO_RESULT_EXIT}
 */
export async function printOutcome(result: AsyncResult, options: OutcomeOptions): Promise<number> {
  const id = result.id;
  const { timeout, json } = options;
  try {
    const value = await result.get({ timeout: timeout * 1000 });
    console.log(
      jsonText(json ? { task_id: id, status: "SUCCESS", result: value } : value, 2),
    );
    return 0;
  } catch (err) {
    if (err instanceof TaskError) {
      if (json) {
        const exc = {
          exc_type: err.excType,
          exc_message: err.excMessage,
          exc_module: err.excModule,
        };
        const meta = { task_id: id, status: err.state, result: exc, traceback: err.traceback };
        console.log(jsonText(meta, 2));
      } else {
        console.error(`${err.state}: ${err.excType}: ${excArgsText(err.excMessage)}`);
        if (options.traceback && err.traceback) console.error(err.traceback);
      }
      return TASK_FAILED_EXIT;
    }
    if (err instanceof TimeoutError) {
      if (json) {
        console.log(jsonText({ task_id: id, status: err.state ?? null, timeout }, 2));
      } else {
        const queue = err.queue === undefined ? "its queue" : `queue "${err.queue}"`;
        const store = options.results
          ? ` and stores results to ${withKvFile(options.results)}`
          : "";
        const state = err.state === undefined || err.state === "PENDING"
          ? `still pending, or unknown: check that a worker consumes ${queue}${store}`
          : `its state is ${err.state}`;
        console.error(`No result for ${id} within ${timeout} s (${state})${options.later ?? ""}`);
      }
      return NO_RESULT_EXIT;
    }
    throw err;
  }
}
