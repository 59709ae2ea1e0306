/**
 * How the `threads` pool logs a Web Worker that died (an uncaught error,
 * an app module that failed to load, or task code ending it).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * Log the death of a Web Worker: why, how many tasks it interrupted (naming
 * up to three), how many not started are handed on (the worker runs them
 * on another Web Worker), and what replaces it.
 * What becomes of an interrupted task is not known here: the worker logs it
 * per task (late-ack `rejectOnWorkerLost` tasks are requeued, the others
 * fail with `WorkerLostError`), so the line does not call them lost.
 *
 * @example
 * ```ts
 * logDeath("it called Deno.exit(3)", [7], [8], ["tasks.add[0f1e...]"], "replacing it in 0 ms");
 * // A Web Worker died (it called Deno.exit(3)); 1 task(s) interrupted (tasks.add[0f1e...]),
 * // each requeued or failed with WorkerLostError as its own line says, 1 not started handed on; ...
 * ```
 *
 * @param reason why it died
 * @param interrupted the tasks it stopped (those it had started, or all it
 *   held when it never loaded the app)
 * @param back the tasks handed on
 * @param named `name[id]` of the first (at most three) started tasks
 * @param what what replaces it ("replacing it in N ms", or that it was replaced already)
 */
export function logDeath(
  reason: string,
  interrupted: number[],
  back: number[],
  named: string[],
  what: string,
): void {
  log.error(
    "A Web Worker died ({reason}); {n} task(s) interrupted{names}, each requeued or failed with " +
      "WorkerLostError as its own line says, {back} not started handed on; {what}",
    {
      reason,
      n: interrupted.length,
      names: named.length ? ` (${named.join(", ")}${interrupted.length > 3 ? ", ..." : ""})` : "",
      back: back.length,
      what,
    },
  );
}
