/**
 * The dashboard's default feed: the app's own event receiver and inspect
 * replies (`app.events.receiveBatches`, `app.control.inspect`).
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import type { EventSourceFn, Inspector } from "./feed.ts";

/**
 * Events from the app's broker: every worker's and client's, Celeriac and
 * Python alike, in batches (what arrived since the previous step).
 *
 * @example
 * ```ts ignore
 * const events = clientEvents(app);
 * for await (const batch of events(AbortSignal.timeout(10_000))) console.log(batch);
 * ```
 *
 * @param app the app
 * @returns the event source
 */
export function clientEvents(app: Celery): EventSourceFn {
  return (signal) => app.events.receiveBatches({ signal });
}

/**
 * Inspect replies collected by the app's remote control.
 *
 * @example
 * ```ts ignore
 * const replies = await clientInspector(app)("active", { destination: ["celery@host"] });
 * ```
 *
 * @param app the app
 * @returns the inspector
 */
export function clientInspector(app: Celery): Inspector {
  return async (command, { destination, timeout, signal }) => {
    const inspect = app.control.inspect({ destination, timeout: timeout ?? 1, signal });
    switch (command) {
      case "active":
        return await inspect.active();
      case "reserved":
        return await inspect.reserved();
      case "scheduled":
        return await inspect.scheduled();
      case "registered":
        return await inspect.registered();
      case "stats":
        return await inspect.stats();
      case "active_queues":
        return await inspect.activeQueues();
    }
  };
}
