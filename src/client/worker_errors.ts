/**
 * Errors a worker reports about how a task ran, rather than about what the
 * task computed: time limits, a Web Worker that died, a permission the
 * task's sandbox does not grant. Each carries the Python class name and
 * module Celery uses, so a Python client re-raises the same exception.
 *
 * @module
 */

/**
 * Where a time limit was exceeded: seconds, and the task it applied to.
 *
 * @example
 * ```ts
 * import type { TimeLimitInfo } from "@celeriac/celeriac";
 * const info: TimeLimitInfo = { seconds: 30, task: "reports.build", id: "5c0e…" };
 * ```
 */
export interface TimeLimitInfo {
  /** The limit, in seconds. */
  seconds: number;
  /** Task name, for the message. */
  task?: string;
  /** Task id, for the message. */
  id?: string;
}

function taskLabel(info: { task?: string; id?: string }): string {
  if (!info.task) return "the task";
  return info.id ? `${info.task}[${info.id}]` : info.task;
}

/**
 * The reason of a task's `ctx.signal` when its soft time limit is reached
 * (Celery's `SoftTimeLimitExceeded`). The handler may clean up and return;
 * if it throws instead, the task fails with this exception, stored as
 * `billiard.exceptions.SoftTimeLimitExceeded()` as Celery stores it.
 *
 * @example Cleaning up when the soft limit is reached
 * ```ts
 * import { Celery, SoftTimeLimitExceeded } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * app.task("reports.build", { bind: true, softTimeLimit: 60 }, async (ctx) => {
 *   const rows: number[] = [];
 *   while (!ctx.signal.aborted && rows.length < 1e6) {
 *     rows.push(rows.length);
 *     await new Promise((r) => setTimeout(r, 0));
 *   }
 *   if (ctx.signal.reason instanceof SoftTimeLimitExceeded) return { partial: rows.length };
 *   return { rows: rows.length };
 * });
 * ```
 */
export class SoftTimeLimitExceeded extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "SOFT_TIME_LIMIT_EXCEEDED";
  /** Python module of the class, as Celery stores it. */
  readonly excModule: string = "billiard.exceptions";
  /** Python exception arguments: none, as in Celery. */
  readonly args: unknown[] = [];
  /** The soft limit, in seconds. */
  readonly seconds: number;

  /**
   * Describe a soft time limit that was reached.
   *
   * @param info the limit and the task
   */
  constructor(info: TimeLimitInfo) {
    super(`Soft time limit (${info.seconds}s) exceeded for ${taskLabel(info)}`);
    this.name = "SoftTimeLimitExceeded";
    this.seconds = info.seconds;
  }
}

/**
 * A task ran past its hard time limit: its Web Worker was terminated
 * (Celery's `TimeLimitExceeded`, stored as
 * `billiard.exceptions.TimeLimitExceeded(<seconds>)`).
 *
 * @example What a client sees
 * ```ts
 * import { TimeLimitExceeded } from "@celeriac/celeriac";
 * import { exceptionInfo } from "@celeriac/celeriac/protocol";
 * exceptionInfo(new TimeLimitExceeded({ seconds: 30 }));
 * // { exc_type: "TimeLimitExceeded", exc_message: [30], exc_module: "billiard.exceptions" }
 * ```
 */
export class TimeLimitExceeded extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "TIME_LIMIT_EXCEEDED";
  /** Python module of the class, as Celery stores it. */
  readonly excModule: string = "billiard.exceptions";
  /** Python exception arguments: the limit in seconds, as in Celery. */
  readonly args: unknown[];
  /** The hard limit, in seconds. */
  readonly seconds: number;

  /**
   * Describe a hard time limit that was exceeded.
   *
   * @param info the limit and the task
   */
  constructor(info: TimeLimitInfo) {
    super(`Hard time limit (${info.seconds}s) exceeded for ${taskLabel(info)}`);
    this.name = "TimeLimitExceeded";
    this.seconds = info.seconds;
    this.args = [info.seconds];
  }
}

/**
 * The Web Worker running a task died before the task finished (Celery's
 * `WorkerLostError`, stored as `billiard.exceptions.WorkerLostError`).
 *
 * @example
 * ```ts
 * import { WorkerLostError } from "@celeriac/celeriac";
 * import { exceptionInfo } from "@celeriac/celeriac/protocol";
 * exceptionInfo(new WorkerLostError("Uncaught Error: boom")).exc_message;
 * // ["Worker exited prematurely: Uncaught Error: boom"]
 * ```
 */
export class WorkerLostError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "WORKER_LOST";
  /** Python module of the class, as Celery stores it. */
  readonly excModule: string = "billiard.exceptions";
  /** Python exception arguments: the message. */
  readonly args: unknown[];

  /**
   * Describe a Web Worker that died.
   *
   * @param reason why it died (its uncaught error)
   */
  constructor(reason: string) {
    super(`Worker exited prematurely: ${reason}`);
    this.name = "WorkerLostError";
    this.args = [this.message];
  }
}

/**
 * Task code touched something it has no permission for: in a permission
 * sandbox (the task's `permissions` option, or the worker's
 * `--task-permissions`), what the sandbox does not grant; else (its tasks
 * get the worker's own permissions) what the worker was not started with.
 * Stored as `PermissionDenied` (module `celeriac`; Python synthesises a
 * class of that name).
 *
 * @example
 * ```ts
 * import { PermissionDenied } from "@celeriac/celeriac";
 * const err = new PermissionDenied({ permission: "read", target: '"/etc/passwd"', task: "t.peek" });
 * err.message; // 'Task t.peek is not allowed read access to "/etc/passwd": start the worker with --allow-read=/etc/passwd …'
 * ```
 */
export class PermissionDenied extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "PERMISSION_DENIED";
  /** Python module: none matches, so Python synthesises the class. */
  readonly excModule: string = "celeriac";
  /** Python exception arguments: the message. */
  readonly args: unknown[];
  /** The Deno permission, e.g. `read`, `net`, `env`. */
  readonly permission: string;
  /** What was accessed, as Deno names it (e.g. `"/etc/passwd"`), if known. */
  readonly target: string | null;

  /**
   * Describe a denied access.
   *
   * @param info the permission, what was accessed, the task, and whether
   *   it ran in a permission sandbox (else with the worker's permissions)
   */
  constructor(
    info: { permission: string; target?: string | null; task: string; sandboxed?: boolean },
  ) {
    const what = `${info.permission} access${info.target ? ` to ${info.target}` : ""}`;
    // Deno quotes what it names: "example.com:443".
    const item = info.target ? `=${info.target.replace(/^"(.*)"$/, "$1")}` : "";
    super(
      info.sandboxed
        ? `Task ${info.task} is not allowed ${what}: grant it in the task's \`permissions\` ` +
          `option (or the worker's --task-permissions) if it needs it`
        : `Task ${info.task} is not allowed ${what}: start the worker with ` +
          `--allow-${info.permission}${item} if it needs it (its tasks have the worker's ` +
          `permissions; a task's \`permissions\` option can only narrow them)`,
    );
    this.name = "PermissionDenied";
    this.permission = info.permission;
    this.target = info.target ?? null;
    this.args = [this.message];
  }
}
