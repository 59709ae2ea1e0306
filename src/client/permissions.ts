/**
 * The permission set a task's code runs with (Deno's `PermissionOptions`
 * for Web Workers, spelled out so that the client stays runtime-neutral).
 *
 * @module
 */

/**
 * One kind of permission: `true` (everything the worker process has),
 * `false` (nothing), `"inherit"` (as the process), or a list of what is
 * allowed (paths, `host:port`, variable names, ...).
 *
 * @example
 * ```ts
 * import type { PermissionValue } from "@celeriac/celeriac";
 * const net: PermissionValue = ["api.example.com:443"];
 * ```
 */
export type PermissionValue = boolean | "inherit" | string[];

/**
 * Deno permissions of task code: `"inherit"` (those of the worker
 * process), `"none"`, or an object naming what is allowed. A kind the
 * object leaves out is denied. A sandbox can never exceed the worker
 * process's own permissions.
 *
 * @example A task that may call one API and read one directory
 * ```ts
 * import { Celery, type TaskPermissions } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const permissions: TaskPermissions = { net: ["api.example.com:443"], read: ["./data"] };
 * app.task("tasks.fetch_rates", { permissions }, async () => {
 *   const res = await fetch("https://api.example.com/rates");
 *   return await res.json();
 * });
 * ```
 */
export type TaskPermissions = "inherit" | "none" | {
  /** File system reads (paths). */
  read?: PermissionValue;
  /** File system writes (paths). */
  write?: PermissionValue;
  /** Network (`host`, `host:port`). */
  net?: PermissionValue;
  /** Environment variables (names). */
  env?: PermissionValue;
  /** System information (`hostname`, `osRelease`, ...). */
  sys?: PermissionValue;
  /** Subprocesses (program names or paths). */
  run?: PermissionValue;
  /** Foreign function interface (library paths). */
  ffi?: PermissionValue;
  /** Dynamic imports of remote modules (hosts); default as the process. */
  import?: PermissionValue;
};
