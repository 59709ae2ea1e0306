/**
 * What a guarded pool Web Worker throws where task code ends its thread
 * (see exit_guard.ts), and which task that code belongs to: the runner drops
 * that task's outcome (the main thread reports it lost with the thread).
 *
 * @module
 */

import { currentTask, type RunningTask } from "../client/current.ts";

/**
 * Thrown by `Deno.exit()` and `close()` in a pool Web Worker: it ends the
 * caller's synchronous code, and the thread ends from a timer queued by
 * the call, whatever catches this. Left uncaught (in a timer, a promise),
 * it is not reported as an error.
 *
 * @example
 * ```ts
 * const err = new ExitCalled("Deno.exit(3)");
 * err.code; // "EXIT_CALLED"
 * err.how; // "Deno.exit(3)"
 * ```
 */
export class ExitCalled extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "EXIT_CALLED";
  /** What task code called, as `Deno.exit(3)` or `close()`. */
  readonly how: string;

  /**
   * Say what was called.
   *
   * @param how what task code called
   */
  constructor(how: string) {
    super(`${how} was called: this Web Worker ends once the current turn is over`);
    this.name = "ExitCalled";
    this.how = how;
  }
}

const seqs = new WeakMap<RunningTask, number>();

/**
 * Note that `running` (the store a task's handler runs with) is the run of
 * dispatch number `seq`.
 *
 * @example
 * ```ts
 * import { currentTask } from "../client/current.ts";
 * const running = { id: "a", rootId: "a" };
 * noteRunning(running, 7);
 * currentTask.run(running, runningSeq); // 7
 * ```
 *
 * @param running the task's store in {@link currentTask}
 * @param seq its dispatch number
 */
export function noteRunning(running: RunningTask, seq: number): void {
  seqs.set(running, seq);
}

/**
 * The dispatch number of the task whose code is running now (its async
 * context), if it is one noted with {@link noteRunning}.
 *
 * @example
 * ```ts
 * runningSeq(); // undefined outside a task's handler
 * ```
 *
 * @returns its dispatch number, or undefined
 */
export function runningSeq(): number | undefined {
  const running = currentTask.getStore();
  return running && seqs.get(running);
}
