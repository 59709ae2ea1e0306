/**
 * What the worker does with a leaked thread (a terminated Web Worker's thread
 * that keeps running; `thread_leaks.ts` finds them): the {@link LeakedThread}
 * it is told of, the warning it logs, the {@link LeakedThreadsError} it
 * stops with at `leakedThreadsRestart`, and that option's default.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * Leaked threads at which a `Worker` stops itself by default
 * (`leakedThreadsRestart`): 0, it only reports them. A program running a
 * `Worker` has nothing that would start it again, and stopping does not end
 * the threads (only the process's exit does). The command line, which starts
 * its process over, defaults to 1 (`--leaked-threads-restart`).
 *
 * @example
 * ```ts
 * import { DEFAULT_LEAKED_THREADS_RESTART } from "@celeriac/celeriac/worker";
 * DEFAULT_LEAKED_THREADS_RESTART; // 0
 * ```
 */
export const DEFAULT_LEAKED_THREADS_RESTART = 0;

/**
 * A Web Worker's thread still running after the Web Worker was terminated.
 *
 * @example
 * ```ts
 * import type { LeakedThread } from "@celeriac/celeriac/worker";
 * const leak: LeakedThread = {
 *   task: "tasks.spin", id: "5c0e…", tid: 4242, terminatedAt: Date.now(), cpuSeconds: 1, busy: 1,
 * };
 * ```
 */
export interface LeakedThread {
  /** The task whose hard time limit (or revoke with terminate) ended its Web Worker. */
  task: string;
  /** That task's id. */
  id: string;
  /** The thread's id. */
  tid: number;
  /** Unix milliseconds the Web Worker was terminated. */
  terminatedAt: number;
  /** CPU seconds the thread used since. */
  cpuSeconds: number;
  /** Share of a core it used when last looked at (0 to 1 and a little more). */
  busy: number;
}

/**
 * Why a worker stopped itself: threads of terminated Web Workers still run,
 * as many as its `leakedThreadsRestart` (see the module documentation). Only
 * a new process gets their CPU back: the command line starts its process
 * over; a program running a {@link Worker} finds this in `worker.failure`.
 *
 * @example
 * ```ts
 * import { LeakedThreadsError } from "@celeriac/celeriac/worker";
 * const err = new LeakedThreadsError([
 *   { task: "tasks.spin", id: "5c0e…", tid: 4242, terminatedAt: 0, cpuSeconds: 3, busy: 1 },
 * ]);
 * err.code; // "LEAKED_THREADS"
 * ```
 */
export class LeakedThreadsError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "LEAKED_THREADS";
  /** The threads leaked when the worker stopped. */
  readonly threads: LeakedThread[];

  /**
   * Describe the leaked threads.
   *
   * @param threads the threads leaked
   */
  constructor(threads: LeakedThread[]) {
    super(
      `${threads.length} thread(s) of terminated Web Workers still run (${
        threads.map((t) => `${t.task}[${t.id}] thread ${t.tid}`).join(", ")
      }): only a new process gets their CPU back`,
    );
    this.name = "LeakedThreadsError";
    this.threads = threads;
  }
}

/**
 * Log a leaked thread at WARNING, naming its task, with what the worker does
 * about it: `restart` (it restarts now), `stopping` (it already is), or
 * `report` (fewer leaked than its `leakedThreadsRestart`, or that is 0).
 *
 * @example
 * ```ts
 * import { logThreadLeak } from "./leaked_threads.ts";
 * const leak = { task: "tasks.spin", id: "5c0e…", tid: 4242, terminatedAt: Date.now(), cpuSeconds: 1, busy: 1 };
 * logThreadLeak(leak, 1, 0, "report");
 * ```
 *
 * @param leak the thread
 * @param count threads leaked now
 * @param restartAt the worker's `leakedThreadsRestart`
 * @param action what the worker does
 */
export function logThreadLeak(
  leak: LeakedThread,
  count: number,
  restartAt: number,
  action: "restart" | "stopping" | "report",
): void {
  const what = action === "restart"
    ? "restarting the worker (warm shutdown, then the same command) to get the CPU back"
    : action === "stopping"
    ? "the worker is stopping"
    : restartAt > 0
    ? `the worker restarts at ${restartAt} (--leaked-threads-restart, leakedThreadsRestart)`
    : "only a restart of the worker gets the CPU back (--leaked-threads-restart, " +
      "leakedThreadsRestart 0: it does not restart itself)";
  log.warn(
    "The thread {tid} of {task}[{id}] still runs {seconds} s after its Web Worker was " +
      "terminated, keeping {percent} % of a core busy: Deno does not stop a synchronous loop " +
      "(denoland/deno#35657). {count} thread(s) leaked; {what}",
    {
      tid: leak.tid,
      task: leak.task,
      id: leak.id,
      seconds: Math.round((Date.now() - leak.terminatedAt) / 100) / 10,
      percent: Math.round(leak.busy * 100),
      count,
      what,
    },
  );
}
