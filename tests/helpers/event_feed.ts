/**
 * An event source a test feeds by hand, for a dashboard in the test's
 * process (`new Dashboard({ events: f.source })`).
 */

import type { DashboardEvent } from "../../dashboard.ts";

/** A feed: `push` events; `source` yields them until its signal aborts. */
export interface EventFeed {
  /** Queue events for the source to yield. */
  push(...e: DashboardEvent[]): void;
  /** The source: yields what was pushed, waiting for more until `signal` aborts. */
  source(signal: AbortSignal): AsyncGenerator<DashboardEvent>;
}

/** A new, empty feed. */
export function feed(): EventFeed {
  const queue: DashboardEvent[] = [];
  let wake = () => {};
  return {
    push(...e: DashboardEvent[]) {
      queue.push(...e);
      wake();
    },
    source: async function* (signal: AbortSignal) {
      while (!signal.aborted) {
        while (queue.length) yield queue.shift()!;
        await new Promise<void>((r) => {
          wake = r;
          signal.addEventListener("abort", () => r(), { once: true });
        });
      }
    },
  };
}
