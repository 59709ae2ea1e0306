/**
 * The lines a worker logs once it is ready: its node name, pool, queues and
 * tasks (a warning when it has none), then its permission sandboxes when
 * tasks have any of their own (category `["celeriac", "worker"]`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Sandbox } from "./sandboxes.ts";

const log = getLogger(["celeriac", "worker"]);

/** What {@link logReady} reports. */
export interface ReadyInfo {
  /** The node name. */
  hostname: string;
  /** Whether the pool is the inline one (else Web Workers). */
  inline: boolean;
  /** Web Workers (1 for the inline pool). */
  concurrency: number;
  /** Task slots in total. */
  capacity: number;
  /** The queues consumed. */
  queues: readonly string[];
  /** Every task the app defines (Celery's built-ins `celery.*` are left out). */
  tasks: Iterable<string>;
  /** The permission sandboxes the tasks run in. */
  sandboxes: readonly Sandbox[];
}

/**
 * Log that the worker is ready, and its sandboxes unless every task
 * inherits the worker's permissions.
 *
 * @example
 * ```ts ignore
 * logReady({
 *   hostname: "celeriac@myhost",
 *   inline: false,
 *   concurrency: pool.concurrency,
 *   capacity: pool.capacity,
 *   queues: ["celery"],
 *   tasks: app.tasks.keys(),
 *   sandboxes,
 * });
 * // celeriac@myhost ready: concurrency 4 (Web Workers, 256 task slots), queues celery, tasks tasks.add
 * ```
 *
 * @param info the worker, its pool, queues, tasks and sandboxes
 */
export function logReady(info: ReadyInfo): void {
  const tasks = [...info.tasks].filter((n) => !n.startsWith("celery."));
  log.info(
    "{hostname} ready: concurrency {c} ({pool}, {n} task slots), queues {queues}, tasks {tasks}",
    {
      hostname: info.hostname,
      c: info.concurrency,
      pool: info.inline ? "inline" : "Web Workers",
      n: info.capacity,
      queues: info.queues.join(","),
      tasks: tasks.length > 0 ? tasks.join(", ") : "none",
    },
  );
  if (tasks.length === 0) {
    // Celery's layout (the app in one module, `include=[...]` naming the task modules) loads none.
    log.warn(
      "{hostname} has no tasks but Celery's built-ins: it parks what it takes as " +
        "unregistered. Define them with app.task() in the module the worker loads (--app), " +
        "or import the modules that do from it",
      { hostname: info.hostname },
    );
  }
  const sandboxes = info.sandboxes;
  if (sandboxes.length > 1 || sandboxes[0]?.permissions !== "inherit") {
    for (const sb of sandboxes) {
      log.info("Permission sandbox {permissions}: {tasks}", {
        permissions: sb.key,
        tasks: sb.tasks.join(", "),
      });
    }
  }
}
