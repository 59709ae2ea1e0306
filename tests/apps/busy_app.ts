/** A task that keeps its thread busy: with `--pool inline`, the worker's main thread. */

import { Celery } from "../../mod.ts";

export const app = new Celery();

/** Blocks its thread for `ms` (a synchronous loop): nothing else runs on it meanwhile. */
export const block = app.task("busy.block", (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy: the thread's event loop does not turn
  }
  return ms;
});
