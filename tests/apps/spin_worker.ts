/**
 * A Web Worker for thread_leak_test: once it runs it posts its thread's id
 * (as the threads pool's Web Workers say it in their `ready`), and on a
 * message it posts "spinning" and enters an endless synchronous loop.
 */

import { ownThreadId } from "../../src/worker/thread_self.ts";

self.postMessage({ ready: ownThreadId() ?? null });
self.onmessage = () => {
  self.postMessage("spinning");
  for (;;) {
    // Deno does not stop this at terminate (denoland/deno#35657).
  }
};
