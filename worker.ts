/**
 * The Celeriac worker: entry point of `deno run -A worker.ts --app ./tasks.ts`,
 * and the {@link Worker} class for running a worker from code.
 *
 * @example Command line
 * ```sh
 * deno run -A jsr:@celeriac/celeriac/worker --app ./tasks.ts -c 2 -Q celery
 * ```
 *
 * @example From code
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { Worker } from "@celeriac/celeriac/worker";
 * // In a program, import app from tasks.ts: the module that defines the app and its tasks,
 * // which appModule names so that the pool's threads load it too.
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * app.task("tasks.add", (a: number, b: number) => a + b);
 * const worker = new Worker({ app, appModule: new URL("./tasks.ts", import.meta.url).href });
 * await worker.start();
 * Deno.addSignalListener("SIGTERM", () => worker.stop());
 * await worker.finished;
 * await app.close();
 * ```
 *
 * @module
 */

import { main } from "./src/cli/main.ts";

export { main, type MainOptions } from "./src/cli/main.ts";
export { LEAKED_THREADS_EXIT_CODE } from "./src/cli/start_over.ts";
export { EXIT_CODES, UsageError } from "./src/cli/exit_codes.ts";
export { USAGE } from "./src/cli/options.ts";
export {
  cliLogLevels,
  closeLogging,
  type LogLevel,
  parseLogLevel,
  setupLogging,
} from "./src/cli/logging.ts";
export {
  type LogFields,
  type LogFormat,
  type LogSinkOptions,
  parseLogFormat,
} from "./src/cli/log_output.ts";
export { loadApp, moduleUrl, parseAppSpec } from "./src/worker/load_app.ts";
export {
  REVOKE_TTL_MS,
  Worker,
  type WorkerOptions,
  type WorkerStats,
} from "./src/worker/worker.ts";
export { type ControlTarget, handleControl, RemoteControl } from "./src/worker/remote_control.ts";
export {
  Lifecycle,
  type LifecycleEvent,
  type LifecycleSubscriber,
  type TaskFailed,
  type TaskHeld,
  type TaskReceived,
  type TaskRejected,
  type TaskRetried,
  type TaskReturned,
  type TaskRevoked,
  type TaskStarted,
  type TaskSucceeded,
  type TaskWaiting,
} from "./src/worker/lifecycle.ts";
export { countStats } from "./src/worker/worker_stats.ts";
export { logLifecycle } from "./src/worker/lifecycle_log.ts";
export { type HeldTask, TaskRegistries } from "./src/worker/task_registries.ts";
export { RevokedIds } from "./src/worker/revoked_ids.ts";
export type { RevokeTasksOptions } from "./src/worker/revoke.ts";
export {
  brokerInfo,
  confReply,
  queueInfo,
  reportText,
  type RequestInfo,
  requestInfo,
  scheduledInfo,
} from "./src/worker/inspect_replies.ts";
export {
  isInspectCommand,
  runInspect,
  type WorkerInspection,
} from "./src/worker/inspect_commands.ts";
export { type TimerHandle, TimerQueue } from "./src/worker/timer_queue.ts";
export {
  type RunOutcome,
  type RunRequest,
  type RunServices,
  runTask,
} from "./src/worker/executor.ts";
export {
  resolveTimeLimits,
  type TimeLimitHandlers,
  type TimeLimitOptions,
  type TimeLimits,
  TimeLimitTimers,
} from "./src/worker/time_limits.ts";
export { type RecycleOptions, RecyclePolicy } from "./src/worker/recycling.ts";
export {
  moduleDirs,
  normalizePermissions,
  parseTaskPermissions,
  permissionDenied,
  permissionsKey,
  planSandboxes,
  type Revocation,
  type Sandbox,
  type SpawnPermissions,
  spawnPermissions,
} from "./src/worker/sandboxes.ts";
export { reportedError } from "./src/worker/reported_error.ts";
export {
  autoretryOptions,
  backoffDelay,
  type BackoffOptions,
  DEFAULT_MAX_RETRIES,
  DEFAULT_RETRY_BACKOFF_MAX,
  DEFAULT_RETRY_DELAY,
  type PlannedRetry,
  planRetry,
  type RetryState,
} from "./src/worker/retry_policy.ts";
export {
  type BucketState,
  LocalTokenBuckets,
  RateLimiter,
  type RateLimiterOptions,
  takeTokens,
} from "./src/worker/rate_limit.ts";
export { InlinePool } from "./src/worker/inline_pool.ts";
export {
  DEFAULT_LEAKED_THREADS_RESTART,
  type LeakedThread,
  LeakedThreadsError,
} from "./src/worker/leaked_threads.ts";
export type { Pool, PoolEvents } from "./src/worker/pool.ts";
export { ThreadPool } from "./src/worker/thread_pool.ts";
export type { ThreadPoolOptions } from "./src/worker/thread_pool_options.ts";
export {
  AUTOSCALE_KEEPALIVE,
  type AutoscaleOptions,
  AutoscalePolicy,
  parseAutoscale,
  type PoolReading,
  rangeProblem,
} from "./src/worker/autoscale_policy.ts";
export { Autoscaler, type AutoscalerHost, type AutoscalerInfo } from "./src/worker/autoscaler.ts";

if (import.meta.main) {
  // Not a top-level await: an --app module that imports worker.ts back (a program that runs its
  // own worker, not an app module) would wait for this module forever, and Deno end the process
  // with "Top-level await promise never resolved"; so it loads, and --app says what it expects.
  main(Deno.args, { v8Flags: true, releaseStartupPages: true, startOver: true }).then((code) =>
    Deno.exit(code)
  );
}
