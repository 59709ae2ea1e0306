/**
 * The dashboard's default inspect replies: the app's remote control
 * (`app.control.inspect`). Its default events are the app's receiver's
 * (`app.events.listen`, see server.ts).
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import type { Inspector } from "./feed.ts";

/**
 * Inspect replies collected by the app's remote control.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
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
