/**
 * Errors left behind on the worker's own thread (the inline pool runs
 * tasks there): a rejected promise nobody handles, a throw from a timer.
 * Deno ends the process on either by default (status 1), losing every task
 * running then; while they are caught, each is logged as an error and the
 * worker goes on. Every such error on the thread is caught, task code's and
 * the worker's own alike: nothing tells them apart, and the log line says
 * so. An unhandled rejection names its task (Deno
 * dispatches it in the async context of the promise the task made); a
 * throw from a timer shows its stack only (its `error` event comes after
 * the callback, outside the task's context). An error another listener has
 * already handled (`preventDefault`) is left alone.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { currentTask } from "../client/current.ts";
import { tracebackText } from "../protocol/exceptions.ts";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * Catch and log unhandled rejections and uncaught errors on this thread
 * until the returned function is called.
 *
 * @example
 * ```ts
 * const release = catchStrayErrors();
 * // ... run task code on this thread ...
 * release();
 * ```
 *
 * @returns the function that stops catching them
 */
export function catchStrayErrors(): () => void {
  const onRejection = (e: PromiseRejectionEvent) => {
    if (e.defaultPrevented) return;
    e.preventDefault();
    report("unhandled rejection", e.reason);
  };
  const onError = (e: ErrorEvent) => {
    if (e.defaultPrevented) return;
    e.preventDefault();
    report("uncaught error", e.error ?? e.message);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}

function report(kind: string, error: unknown): void {
  const task = currentTask.getStore();
  let text: string;
  try {
    text = tracebackText(error);
  } catch {
    text = "(an error that cannot be shown)";
  }
  log.error(
    "Caught an {kind}{where}: {error}; it may come from task code or from the worker itself " +
      "(the inline pool runs both on this thread and cannot tell them apart); the worker goes on",
    { kind, where: task ? ` (task ${task.name ?? ""}[${task.id}])` : "", error: text },
  );
}
