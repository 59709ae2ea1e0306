/**
 * Starting a task-running Web Worker. Giving a Web Worker its own Deno
 * permissions is an unstable API (`--unstable-worker-options`), so a worker
 * whose tasks inherit the process's permissions starts without it; only task
 * sandboxes need the flag (without it Deno stops the process with "Unstable
 * API 'Worker.deno.permissions'", which cannot be caught).
 *
 * @module
 */

import type { TaskPermissions } from "../client/permissions.ts";

/**
 * Start a Web Worker running `url`: with its own permissions only when they
 * are not `"inherit"`.
 *
 * @example
 * ```ts
 * const w = spawnRunner(new URL("./runner.ts", import.meta.url), "inherit");
 * ```
 *
 * @param url the module the Web Worker runs
 * @param permissions its Deno permissions
 * @returns the Web Worker
 */
export function spawnRunner(url: URL, permissions: TaskPermissions): Worker {
  const options: WorkerOptions = { type: "module", name: "celeriac-task-runner" };
  if (permissions === "inherit") return new Worker(url, options);
  return new Worker(url, { ...options, deno: { permissions } });
}
