/**
 * The worker's task event shapes (src/worker/task_events.ts) built from a
 * checkout's own `EventShape`, so a benchmark comparing two checkouts
 * (`--base`) builds each side's events with that side's class.
 *
 * @module
 */

/** The `task-received`, `task-started` and `task-succeeded` shapes of one checkout. */
export interface TaskShapes {
  // deno-lint-ignore no-explicit-any
  received: any;
  // deno-lint-ignore no-explicit-any
  started: any;
  // deno-lint-ignore no-explicit-any
  succeeded: any;
}

/**
 * Build the shapes a worker writes its task events with, from `EventShape`
 * as one checkout exports it (from `src/protocol/event_writer.ts`).
 *
 * @example
 * ```ts
 * import { EventShape } from "../src/protocol/event_writer.ts";
 * import { taskShapes } from "./event_shapes.ts";
 * const { received } = taskShapes({ EventShape });
 * ```
 *
 * @param m the checkout's module namespace holding `EventShape`
 * @returns the three shapes
 */
// deno-lint-ignore no-explicit-any
export function taskShapes(m: Record<string, any>): TaskShapes {
  return {
    received: new m.EventShape("task-received", [
      "uuid",
      "name",
      "args",
      "kwargs",
      "root_id",
      "parent_id",
      "retries",
      "eta",
      "expires",
    ], ["name", "args", "kwargs", "parent_id", "retries", "eta", "expires"]),
    started: new m.EventShape("task-started", ["uuid"]),
    succeeded: new m.EventShape("task-succeeded", ["uuid", "result", "runtime"]),
  };
}
