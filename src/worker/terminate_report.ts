/**
 * How the `threads` pool reports a Web Worker it terminated for a task (its
 * hard time limit, or a revoke with terminate): the log line, the other
 * tasks it held that had started (interrupted: each is requeued or fails
 * with `WorkerLostError`, logged per task) and those that had not (handed
 * on: the worker runs them on another Web Worker).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { PoolEvents } from "./pool.ts";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * Log a terminate and report it: `lost` to `onLost`, then `seq` with the
 * tasks handed on to `onTimeLimit`. A time limit is logged at error; a
 * terminate the user asked for at info, as Celery's "Terminating ID
 * (signal)", or at warning when it stops others. When `seq` is no longer
 * held (it finished while its Web Worker, halted, waited to be ended for
 * the outcomes it posted), the others go to `onLost` alone.
 *
 * @example
 * ```ts ignore
 * reportTerminate(events, { seq: 7, task: "tasks.report", id, held: true }, 30, [], [8]);
 * ```
 *
 * @param events where the pool reports
 * @param run the task its Web Worker was terminated for, and whether it still held it
 * @param seconds its hard time limit, or 0 for a revoke with terminate
 * @param lost the other tasks it held that had started
 * @param abandoned the other tasks it held that had not started: handed on
 */
export function reportTerminate(
  events: PoolEvents,
  run: { seq: number; task: string; id: string; held: boolean },
  seconds: number,
  lost: number[],
  abandoned: number[],
): void {
  if (!run.held) {
    if (lost.length || abandoned.length) {
      events.onLost(lost, `its Web Worker was terminated for ${run.task}[${run.id}]`, abandoned);
    }
    return;
  }
  const what = seconds > 0
    ? `Hard time limit (${seconds}s) exceeded for {task}[{id}]`
    : "Terminating {task}[{id}] (revoked with terminate)";
  log[seconds > 0 ? "error" : lost.length + abandoned.length ? "warn" : "info"](
    `${what}: its Web Worker is replaced; of the other tasks it held, {n} that had not ` +
      `started are handed on and {lost} that had are interrupted (each requeued or failed with ` +
      `WorkerLostError as its own line says)`,
    { task: run.task, id: run.id, n: abandoned.length, lost: lost.length },
  );
  if (lost.length) {
    const why = seconds > 0
      ? `exceeded its hard time limit (${seconds}s)`
      : "was revoked with terminate";
    events.onLost(lost, `its Web Worker was terminated: ${run.task}[${run.id}] ${why}`);
  }
  events.onTimeLimit(run.seq, seconds, abandoned);
}
