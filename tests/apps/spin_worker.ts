/**
 * A Web Worker for thread_leak_test: once it runs it posts its thread's id
 * (as the threads pool's Web Workers say it in their `ready`), and on a
 * message (an `Int32Array` on a `SharedArrayBuffer`) it posts "spinning" and
 * enters a synchronous loop that never yields, left only once the test sets
 * the array's first element: the test's own check is done by then, and the
 * thread, which Deno's terminate() does not stop, no longer takes a core for
 * the rest of the test file.
 */

import { ownThreadId } from "../../src/worker/thread_self.ts";

self.postMessage({ ready: ownThreadId() ?? null });
self.onmessage = (e: MessageEvent<Int32Array>) => {
  const stop = e.data;
  self.postMessage("spinning");
  while (Atomics.load(stop, 0) === 0) {
    // Deno does not stop this at terminate (denoland/deno#35657).
  }
};
