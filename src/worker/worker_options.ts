/**
 * The options of a worker, with Celery's names for each.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import type { TaskPermissions } from "../client/permissions.ts";
import type { AutoscaleOptions } from "./autoscale_policy.ts";

/**
 * Options of {@link Worker}. Celery's names are given in brackets.
 *
 * @example A worker for two queues, on the main thread
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { Worker, type WorkerOptions } from "@celeriac/celeriac/worker";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const options: WorkerOptions = {
 *   app,
 *   pool: "inline", // "threads" (the default) also needs appModule
 *   queues: ["celery", "emails"],
 *   prefetch: 50,
 *   hostname: "emails@%h",
 *   acksLate: true,
 * };
 * const worker = new Worker(options); // nothing runs before worker.start()
 * worker.queues; // ["celery", "emails"]
 * ```
 */
export interface WorkerOptions {
  /** The app whose tasks run (its broker and backend are used). */
  app: Celery;
  /**
   * URL of the module that exports the app, imported by every Web Worker.
   * Required for the `threads` pool.
   */
  appModule?: string;
  /** Export name of the app in that module; default `app` / `default`. */
  appExport?: string;
  /** Queues to consume [`-Q`]; default the app's default queue. */
  queues?: string[];
  /** `threads` (Web Workers, default) or `inline` (main thread) [`-P`]. */
  pool?: "threads" | "inline";
  /** Number of Web Workers [`-c`]; default the number of CPUs. */
  concurrency?: number;
  /**
   * Grow and shrink the Web Worker pool between `min` and `max` with the
   * load [`--autoscale MAX,MIN`]; `concurrency` is then ignored and the
   * pool starts with `min` (at least 1) Web Workers. It grows while the
   * worker holds more tasks than Web Workers, and retires idle ones after
   * `keepalive` seconds of surplus. Threads pool only. Default: a fixed pool.
   */
  autoscale?: AutoscaleOptions;
  /**
   * Tasks each Web Worker holds at once, running or waiting
   * [`--prefetch-multiplier`, `worker_prefetch_multiplier`]. The worker never
   * takes more messages than it has free slots. Default: adaptive, from 1 up to
   * 64 (inline pool: 100 in total) as tasks prove short (see `prefetch_window.ts`).
   */
  prefetch?: number;
  /**
   * Node name [`-n`], as Celery builds it: `%h` is the host name, `%n` its
   * first label, `%d` its domain, `%%` a `%`; a name without `@` is a host
   * name (`web1` is `celeriac@web1`). Default `celeriac@%h`.
   */
  hostname?: string;
  /** Acknowledge after the task finishes, for every task [`task_acks_late`]. Default false. */
  acksLate?: boolean;
  /**
   * Deno permissions of task code, for tasks without a `permissions`
   * option [`--task-permissions`]. Default `"inherit"`: the process's.
   * Each distinct permission set among the tasks gets its own group of
   * `concurrency` Web Workers (threads pool only).
   */
  taskPermissions?: TaskPermissions;
  /**
   * Hard time limit in seconds for tasks without one [`--time-limit`,
   * `task_time_limit`]: the Web Worker is terminated and the task fails
   * with `TimeLimitExceeded`. A message's `timelimit` header and the
   * task's `timeLimit` option come first.
   */
  timeLimit?: number;
  /**
   * Soft time limit in seconds for tasks without one [`--soft-time-limit`,
   * `task_soft_time_limit`]: `ctx.signal` fires with `SoftTimeLimitExceeded`.
   */
  softTimeLimit?: number;
  /**
   * Restart once this many threads of terminated Web Workers still run,
   * keeping a core busy 5 s after their terminate: a task in a synchronous
   * loop past its hard time limit (or revoked with terminate), which Deno
   * does not stop (denoland/deno#35657); each keeps a core busy until the
   * process exits. The worker logs each at WARNING and
   * makes a warm shutdown, with a `LeakedThreadsError` as its `failure`; the
   * command line then starts its process over [`--leaked-threads-restart`,
   * default 1 there]. 0: only report them (inspect `stats`). Seeing them
   * takes `-A` on Linux. Default 0 (`DEFAULT_LEAKED_THREADS_RESTART`): a
   * program running a `Worker` has nothing that starts it again, and a
   * stopped worker does not end the threads (only the process's exit does);
   * set it when a supervisor restarts the program once `worker.finished`
   * resolves with this failure.
   */
  leakedThreadsRestart?: number;
  /**
   * Seconds a thread of a terminated Web Worker must keep running to count
   * as leaked (`leakedThreadsRestart`); synchronous code that returns
   * sooner is not a leak [`--leaked-threads-grace`]. Default 5.
   */
  leakedThreadsGrace?: number;
  /**
   * Requeue late-ack tasks whose Web Worker dies, for tasks that do not set
   * `rejectOnWorkerLost` [`task_reject_on_worker_lost`]. Default false.
   */
  rejectOnWorkerLost?: boolean;
  /**
   * Replace a Web Worker after it ran this many tasks
   * [`--max-tasks-per-child`]. Default: never.
   */
  maxTasksPerChild?: number;
  /**
   * Replace a Web Worker whose V8 heap (used heap plus external memory)
   * exceeds this many KiB after a task [`--max-memory-per-child`, KiB as
   * in Celery]. Default: never.
   */
  maxMemoryPerChild?: number;
  /**
   * On brokers without leases (AMQP), the longest time in seconds an ETA
   * task is held unacknowledged: past it the message is published again
   * and the held copy acknowledged, so RabbitMQ's `consumer_timeout`
   * (default 30 minutes) never closes the channel. Early-ack tasks waiting
   * in a Web Worker's queue are acknowledged after as long, started or not.
   * Default 600.
   */
  etaHoldLimit?: number;
  /**
   * Hold at most this many ETA tasks [`--eta-task-limit`, Celery 5.6
   * `worker_eta_task_limit`]: at the limit the worker takes nothing more and
   * leaves further tasks on the broker until a held one is due. Default: no
   * limit.
   */
  etaTaskLimit?: number;
  /**
   * On a cold shutdown (`terminate()`, the second SIGINT/SIGTERM, or
   * SIGQUIT), give running tasks this many seconds to finish before the
   * rest are requeued [`--soft-shutdown-timeout`, Celery 5.5
   * `worker_soft_shutdown_timeout`]. Default 0: requeue at once.
   */
  softShutdownTimeout?: number;
  /** Answer remote-control requests on the `celery.pidbox` fanout. Default true. */
  remoteControl?: boolean;
  /**
   * Park a message as poison (with a FAILURE for its task) once consumers
   * have died holding it this many times (its `x-delivery-count`: counted
   * by the Redis and KV restore sweeps, by RabbitMQ on quorum queues; on
   * RabbitMQ classic queues nothing counts, so this does nothing there, as
   * in Celery). 0 never parks. Default 5.
   */
  maxDeliveries?: number;
  /**
   * The most bytes a compressed message body (its `compression` header:
   * zlib, bzip2, brotli, zstd, lzma) may decompress to. Decoding stops as
   * soon as it passes this, and the message is parked unrun with a
   * `ProtocolError` FAILURE saying so: a small message that would inflate
   * to gigabytes (a decompression bomb) costs about this much memory, not
   * the worker. Uncompressed bodies are not limited here. A whole number
   * of bytes >= 1 [`--max-decompressed-size`]. Default
   * `MAX_DECOMPRESSED_SIZE`, 64 MiB.
   */
  maxDecompressedSize?: number;
  /**
   * Send task events (`task-received`, `task-succeeded`, ...) for monitors
   * such as Flower and `celery events` [`-E`, `worker_send_task_events`].
   * Default: the app's `workerSendTaskEvents` (false). The `enable_events`
   * and `disable_events` control commands switch them at run time.
   */
  taskEvents?: boolean;
  /**
   * Seconds between `worker-heartbeat` events [`--heartbeat-interval`];
   * 0 sends no `worker-online`, `worker-heartbeat` or `worker-offline`
   * [`--without-heartbeat`], but the `heartbeat` control command still gets
   * its `worker-heartbeat`, as from Celery's worker. Default 2.
   */
  heartbeatInterval?: number;
}
