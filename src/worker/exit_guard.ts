/**
 * Inside a pool Web Worker: task code that ends the thread — `Deno.exit()`
 * (which `node:process`'s `exit` calls too) or `close()` — tells the main
 * thread first. Deno fires no event on the `Worker` object when its thread
 * ends that way (no `error`, no `close`), so without word from it the pool
 * would keep posting tasks to a thread that is gone. Installed before the
 * app module loads, so task code only ever sees the guarded functions.
 *
 * The thread does not end inside the call: the call throws
 * `ExitCalled` (exit_called.ts), which ends the caller's synchronous code, and the
 * thread ends from a timer queued then. The microtasks queued before it run
 * first: tasks started in the same turn that had already returned hand on
 * their outcomes instead of being reported lost with the thread (a Celery
 * prefork child sent a finished task's result before its next task ran).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { ExitCalled } from "./exit_called.ts";

/** What a guarded Web Worker does when task code ends its thread (see {@link guardExit}). */
export interface ExitHooks {
  /**
   * Called inside the first call that ends the thread, in the caller's
   * async context, before it throws: the thread is to start nothing more.
   */
  calling(how: string): void;
  /**
   * Called from the timer the first call queued, once the microtasks queued
   * before it ran; the thread ends right after, whatever this throws.
   */
  dying(how: string): void;
}

/**
 * Replace `Deno.exit` and `close` in this Web Worker's scope: the first
 * call runs `hooks.calling`, queues a timer that runs `hooks.dying` then ends
 * the thread as before, and every call throws {@link ExitCalled}. An
 * `ExitCalled` nothing caught (thrown in a timer, or rejecting a promise
 * nobody awaits) does not end the thread as an uncaught error would.
 *
 * @example
 * ```ts ignore
 * guardExit({
 *   calling: () => runner.halt(),
 *   dying: (how) => self.postMessage({ type: "dying", how }),
 * });
 * ```
 *
 * @param hooks told what task code called, at once and before the thread ends
 */
export function guardExit(hooks: ExitHooks): void {
  const exit = Deno.exit;
  const close = globalThis.close;
  let ending = false;
  const end = (how: string, last: () => void): never => {
    if (!ending) {
      ending = true;
      setTimeout(() => {
        try {
          hooks.dying(how);
        } finally {
          last();
        }
      }, 0);
      try {
        hooks.calling(how);
      } catch {
        // The thread ends all the same; its caller gets the ExitCalled below, not this.
      }
    }
    throw new ExitCalled(how);
  };
  (Deno as { exit: (code?: number) => never }).exit = (code?: number): never =>
    end(`Deno.exit(${code ?? ""})`, () => exit(code));
  globalThis.close = () => end("close()", close);
  globalThis.addEventListener("error", (e) => {
    if (e.error instanceof ExitCalled) e.preventDefault();
  });
  globalThis.addEventListener("unhandledrejection", (e) => {
    if (e.reason instanceof ExitCalled) e.preventDefault();
  });
}
