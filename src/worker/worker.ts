/**
 * The worker: the main thread takes deliveries, decodes their headers,
 * holds ETA tasks, hands tasks to a pool, stores results, publishes
 * follow-ups and settles every delivery exactly once.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ResultBackend, StoreEntry } from "../backend/port.ts";
import type { Broker, Delivery, PublishTarget, Rejection } from "../broker/port.ts";
import type { Celery } from "../client/app.ts";
import { hostName } from "../client/runtime.ts";
import type { Task } from "../client/task.ts";
import { codecsFor, loadCodecs } from "../protocol/codecs.ts";
import { ContentDisallowedError, ProtocolError } from "../protocol/errors.ts";
import { exceptionInfo } from "../protocol/exceptions.ts";
import { pyJsonLoads } from "../protocol/json.ts";
import type { Message } from "../protocol/message.ts";
import {
  encodeResultMeta,
  type ExceptionInfo,
  type ResultMeta,
  type TaskState,
} from "../protocol/result_meta.ts";
import { decodeTaskHeaders, type TaskRequest } from "../protocol/task_request.ts";
import type { TaskPermissions } from "../client/permissions.ts";
import { TimeLimitExceeded, WorkerLostError } from "../client/worker_errors.ts";
import type { RunOutcome, RunRequest } from "./executor.ts";
import { chainStepIds, failureFollowUps, type Outgoing, successFollowUps } from "./follow_ups.ts";
import { InlinePool, type Pool, type PoolEvents, ThreadPool } from "./pool.ts";
import { type DueRetry, settleRetries } from "./retries.ts";
import { LocalTokenBuckets, RateLimiter } from "./rate_limit.ts";
import { parseRate } from "../protocol/rate.ts";
import type { TokenGrant, TokenRequest } from "../broker/port.ts";
import { type ControlTarget, RemoteControl } from "./remote_control.ts";
import { planSandboxes } from "./sandboxes.ts";
import { resolveTimeLimits } from "./time_limits.ts";
import { type TimerHandle, TimerQueue } from "./timer_queue.ts";
import { storeResults } from "./store_results.ts";
import { PrefetchWindow } from "./prefetch_window.ts";

const log = getLogger(["celeriac", "worker"]);

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
   * Tasks each Web Worker holds at once, running or waiting
   * [`--prefetch-multiplier`, `worker_prefetch_multiplier`]. The worker never
   * takes more messages than it has free slots. Default: adaptive, from 1 up to
   * 32 (inline pool: 100 in total) as tasks prove short (see `prefetch_window.ts`).
   */
  prefetch?: number;
  /** Node name [`-n`]; `%h` is replaced by the host name. Default `celeriac@%h`. */
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
   * (default 30 minutes) never closes the channel. Default 600.
   */
  etaHoldLimit?: number;
  /** Answer remote-control requests on the `celery.pidbox` fanout. Default true. */
  remoteControl?: boolean;
}

/** How long a revoked id is remembered (Celery's `REVOKES_MAX_AGE`: 3 hours). */
export const REVOKE_TTL_MS = 10_800_000;
/** How many revoked ids a worker remembers (Celery's `REVOKES_MAX`). */
const REVOKES_MAX = 50_000;

interface Running {
  delivery: Delivery;
  req: TaskRequest;
  acked: boolean;
  started: number;
}

interface Held {
  delivery: Delivery;
  req: TaskRequest;
  task: Task<never, unknown>;
  handle?: TimerHandle;
}

/**
 * Counters of what the worker did.
 *
 * @example Counting what a worker did
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { Worker, type WorkerStats } from "@celeriac/celeriac/worker";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const worker = new Worker({ app, pool: "inline" });
 * await worker.start();
 * await (await add.delay(2, 3)).get({ timeout: 5000 }); // 5
 * await worker.stop();
 * const stats: WorkerStats = worker.stats;
 * console.log(`${stats.succeeded} of ${stats.received} succeeded, ${stats.failed} failed`);
 * await app.close();
 * ```
 */
export interface WorkerStats {
  /** Task messages received. */
  received: number;
  /** Tasks that returned. */
  succeeded: number;
  /** Tasks that threw (or whose Web Worker died). */
  failed: number;
  /** Messages parked (malformed, unregistered, refused content). */
  parked: number;
  /** Tasks not run because they expired. */
  expired: number;
  /** Tasks that asked to be retried (`ctx.retry()`, `autoretryFor`). */
  retried: number;
  /** Tasks not run (or stopped) because they were revoked. */
  revoked: number;
}

function exc(type: string, module: string, args: unknown[]): ExceptionInfo {
  return { exc_type: type, exc_message: args, exc_module: module };
}

function failureEntry(taskId: string, info: ExceptionInfo, traceback: string | null): StoreEntry {
  return {
    taskId,
    status: "FAILURE",
    meta: encodeResultMeta({
      taskId,
      status: "FAILURE",
      result: info,
      traceback,
      dateDone: new Date(),
    }),
  };
}

/**
 * A Celeriac worker.
 *
 * @example
 * ```ts ignore
 * import { Worker } from "@celeriac/celeriac/worker";
 * import { app } from "./tasks.ts";
 * const worker = new Worker({ app, appModule: new URL("./tasks.ts", import.meta.url).href });
 * await worker.start();
 * Deno.addSignalListener("SIGTERM", () => worker.stop());
 * await worker.finished;
 * ```
 */
export class Worker {
  /** The node name, e.g. `celeriac@myhost`. */
  readonly hostname: string;
  /** The queues consumed. */
  readonly queues: readonly string[];
  /** Counters. */
  readonly stats: WorkerStats = {
    received: 0,
    succeeded: 0,
    failed: 0,
    parked: 0,
    expired: 0,
    retried: 0,
    revoked: 0,
  };
  readonly #app: Celery;
  readonly #options: WorkerOptions;
  #broker!: Broker;
  #backend: ResultBackend | null = null;
  #pool!: Pool;
  #window!: PrefetchWindow;
  readonly #running = new Map<number, Running>();
  readonly #held = new TimerQueue<Held>((h) => this.#heldDue(h));
  readonly #heldById = new Map<string, Held>();
  /** Rate limits set at run time, as given (for `registered`). */
  readonly #rateText = new Map<string, string>();
  readonly #revoked = new Map<string, number>();
  readonly #terminated = new Set<number>();
  readonly #control = new AbortController();
  #leaseTimer: ReturnType<typeof setInterval> | undefined;
  readonly #settling = new Set<Promise<void>>();
  readonly #limiter: RateLimiter<Held>;
  readonly #localBuckets = new LocalTokenBuckets();
  #seq = 0;
  #logInfo = false;
  #stopping = false;
  #cold = false;
  readonly #takeAbort = new AbortController();
  #wake: (() => void) | null = null;
  #loop: Promise<void> | null = null;
  readonly #finished = Promise.withResolvers<void>();

  /**
   * Configure a worker; nothing runs until {@link Worker.start}.
   *
   * @param options see {@link WorkerOptions}
   */
  constructor(options: WorkerOptions) {
    this.#app = options.app;
    this.#options = options;
    this.queues = options.queues?.length ? options.queues : [options.app.config.defaultQueue];
    this.hostname = (options.hostname ?? "celeriac@%h").replaceAll("%h", hostName());
    if ((options.pool ?? "threads") === "threads" && !options.appModule) {
      throw new TypeError(
        "The threads pool needs appModule: the URL of the module exporting the app",
      );
    }
    this.#limiter = new RateLimiter<Held>({
      acquire: (requests) => this.#acquireTokens(requests),
      onReady: (items) => this.#admit(items),
    });
    for (const task of this.#app.tasks.values()) {
      const limit = task.options.rateLimit;
      if (limit !== undefined) {
        this.#limiter.setRate(task.name, parseRate(limit, `rateLimit of task "${task.name}"`));
      }
    }
  }

  /**
   * Change a task's rate limit at run time (Celery's `rate_limit` remote
   * control command). Tasks already waiting for a token are released at
   * once when the limit is removed.
   *
   * @example
   * ```ts ignore
   * worker.setRateLimit("tasks.scrape", "5/s");
   * worker.setRateLimit("tasks.scrape", null); // no limit
   * ```
   *
   * @param name a task this worker runs
   * @param rate `"10/s"`, `"100/m"`, `"1000/h"`, a number per second; `null` or 0 for none
   * @throws {TypeError} for an unknown task or a malformed rate
   */
  setRateLimit(name: string, rate: string | number | null): void {
    if (!this.#app.tasks.get(name)?.handler) {
      throw new TypeError(`Cannot set the rate limit of "${name}": this worker does not run it`);
    }
    this.#limiter.setRate(name, rate === null ? null : parseRate(rate, "rate"));
    if (rate === null) this.#rateText.delete(name);
    else this.#rateText.set(name, String(rate));
  }

  /**
   * A task's rate limit in runs per second, or `null` without one.
   *
   * @example
   * ```ts ignore
   * worker.rateLimit("tasks.scrape"); // 10 for "10/s"
   * ```
   *
   * @param name task name
   * @returns the rate
   */
  rateLimit(name: string): number | null {
    return this.#limiter.rate(name);
  }

  /** Shared buckets when the broker has them (Redis), else this worker's own. */
  #acquireTokens(requests: readonly TokenRequest[]): Promise<TokenGrant[]> {
    const broker = this.#broker;
    if (broker.acquireTokens) return broker.acquireTokens(requests);
    return Promise.resolve(this.#localBuckets.acquire(requests));
  }

  #admit(items: Held[]): void {
    for (const h of items) this.#heldDue(h, true);
    this.#wake?.();
    this.#wake = null;
  }

  /** Resolves when the worker has stopped and settled everything. */
  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  /** How many tasks are running now. */
  get active(): number {
    return this.#running.size;
  }

  /**
   * Connect, start the pool and begin consuming.
   *
   * @example
   * ```ts ignore
   * await worker.start();
   * ```
   */
  async start(): Promise<void> {
    this.#logInfo = log.isEnabledFor("info");
    this.#broker = await this.#app.broker();
    this.#backend = this.#app.config.backend === null ? null : await this.#app.resultBackend();
    for (const q of this.queues) await this.#broker.declareQueue(q);
    for (const e of await this.#broker.listRevoked()) {
      this.#revoked.set(e.id, e.expiresAt.getTime());
    }
    const events: PoolEvents = {
      onOutcomes: (outs) => this.#onOutcomes(outs),
      onPublish: (message, target) => this.#app.publish(message, target),
      onLost: (seqs, reason) => this.#onLost(seqs, reason),
      onTimeLimit: (seq, seconds, abandoned) => this.#onTimeLimit(seq, seconds, abandoned),
    };
    const o = this.#options;
    const sandboxes = planSandboxes(this.#app.tasks.values(), o.taskPermissions);
    if ((o.pool ?? "threads") === "inline") {
      const sandboxed = sandboxes.filter((s) => s.permissions !== "inherit");
      if (sandboxed.length) {
        throw new TypeError(
          `Tasks ${sandboxed.flatMap((s) => s.tasks).join(", ")} have permission sandboxes, ` +
            `which the inline pool cannot enforce: use the threads pool`,
        );
      }
    }
    this.#pool = (o.pool ?? "threads") === "inline"
      ? new InlinePool(this.#app, o.prefetch ?? 100, events)
      : new ThreadPool({
        size: o.concurrency ?? navigator.hardwareConcurrency,
        slots: o.prefetch ?? 32,
        module: o.appModule!,
        exportName: o.appExport,
        sandboxes,
        recycle: { maxTasksPerChild: o.maxTasksPerChild, maxMemoryPerChild: o.maxMemoryPerChild },
        config: this.#app.config,
      }, events);
    this.#window = new PrefetchWindow({
      size: (o.pool ?? "threads") === "inline" ? 1 : o.concurrency ?? navigator.hardwareConcurrency,
      max: o.prefetch ?? ((o.pool ?? "threads") === "inline" ? 100 : 32),
      fixed: o.prefetch,
    });
    await this.#pool.start();
    if (this.#options.remoteControl ?? true) {
      await new RemoteControl(this.#broker, this.#controlTarget()).start(this.#control.signal);
    }
    this.#startLeases();
    log.info("{hostname} ready: {n} slot(s), queues {queues}, tasks {tasks}", {
      hostname: this.hostname,
      n: this.#pool.capacity,
      queues: this.queues.join(","),
      tasks: [...this.#app.tasks.keys()].join(", "),
    });
    if (sandboxes.length > 1 || sandboxes[0]?.permissions !== "inherit") {
      for (const s of sandboxes) {
        log.info("Permission sandbox {permissions}: {tasks}", {
          permissions: s.key,
          tasks: s.tasks.join(", "),
        });
      }
    }
    this.#loop = this.#consume();
  }

  async #consume(): Promise<void> {
    let backoff = 500;
    while (!this.#stopping) {
      const free = Math.min(this.#pool.capacity, this.#window.limit) - this.#running.size;
      // Tasks waiting for a rate-limit token do not take slots, but their number is bounded.
      if (free <= 0 || this.#limiter.size >= Math.max(100, 4 * this.#pool.capacity)) {
        await new Promise<void>((r) => this.#wake = r);
        continue;
      }
      let got: Delivery[];
      try {
        got = await this.#broker.take(this.queues, { max: free, signal: this.#takeAbort.signal });
        backoff = 500;
      } catch (err) {
        log.error("Cannot take messages: {error}; retrying in {ms} ms", {
          error: (err as Error).message,
          ms: backoff,
        });
        await new Promise<void>((r) => {
          const t = setTimeout(r, backoff);
          this.#takeAbort.signal.addEventListener("abort", () => {
            clearTimeout(t);
            r();
          }, { once: true });
        });
        backoff = Math.min(backoff * 2, 10_000);
        continue;
      }
      if (got.length) await this.#receive(got);
    }
  }

  #track(p: Promise<void>): void {
    this.#settling.add(p);
    p.catch((err) => log.error("Settling failed: {error}", { error: (err as Error).message }))
      .finally(() => this.#settling.delete(p));
  }

  async #receive(deliveries: Delivery[]): Promise<void> {
    for (const d of deliveries) {
      // A protocol-1 message keeps its task name in the body, which the main thread decodes.
      if (typeof d.headers.task !== "string") {
        const needs = codecsFor(d.contentType, d.headers.compression);
        if (needs.msgpack || needs.compression) await loadCodecs(needs);
      }
    }
    const now = Date.now();
    const stores: StoreEntry[] = [];
    const rejects: Rejection[] = [];
    const acks: Delivery[] = [];
    const runs: RunRequest[] = [];
    for (const d of deliveries) {
      this.stats.received++;
      let req: TaskRequest;
      try {
        req = decodeTaskHeaders(d);
      } catch (err) {
        const taskId = err instanceof ProtocolError ? err.taskId ?? null : null;
        const reason = `malformed task message: ${(err as Error).message}`;
        log.error("Parked message {taskId} from {queue}: {reason}", {
          taskId: taskId ?? "(no id)",
          queue: d.queue,
          reason,
        });
        rejects.push({
          delivery: d,
          reason,
          taskId,
          taskName: String(d.headers.task ?? "") || null,
        });
        if (taskId) stores.push(failureEntry(taskId, this.#refusal(err as Error), null));
        continue;
      }
      const task = this.#app.tasks.get(req.task);
      if (!task?.handler) {
        const reason = `unregistered task "${req.task}"`;
        log.error("Parked task {name}[{id}]: {reason} (this worker runs: {known})", {
          name: req.task,
          id: req.id,
          reason,
          known: [...this.#app.tasks.keys()].join(", "),
        });
        rejects.push({ delivery: d, reason, taskId: req.id, taskName: req.task });
        stores.push({
          ...failureEntry(req.id, exc("NotRegistered", "celery.exceptions", [req.task]), null),
          replyTo: req.replyTo,
        });
        continue;
      }
      if (this.#isRevoked(req.id)) {
        stores.push(this.#revokedEntry(req, "revoked"));
        acks.push(d);
        continue;
      }
      if (req.expires && req.expires.getTime() <= now) {
        stores.push(this.#expired(req));
        acks.push(d);
        continue;
      }
      if (req.eta && req.eta.getTime() > now) {
        this.#hold({ delivery: d, req, task });
        continue;
      }
      if (this.#logInfo) log.info("Task {name}[{id}] received", { name: req.task, id: req.id });
      if (this.#limiter.rate(req.task) !== null) {
        this.#limiter.submit(req.task, { delivery: d, req, task });
        continue;
      }
      runs.push(this.#prepare(d, req, task, stores, acks));
    }
    this.stats.parked += rejects.length;
    if (runs.length) this.#pool.run(runs);
    if (rejects.length || stores.length || acks.length) {
      this.#track(this.#settle(stores, rejects, acks, []));
    }
  }

  #refusal(err: Error): ExceptionInfo {
    return err instanceof ContentDisallowedError
      ? exceptionInfo(err)
      : exc("DecodeError", "kombu.exceptions", [err.message]);
  }

  #expired(req: TaskRequest): StoreEntry {
    this.stats.expired++;
    log.warn("Task {name}[{id}] expired at {expires}: not run", {
      name: req.task,
      id: req.id,
      expires: req.expires?.toISOString(),
    });
    const meta = encodeResultMeta({
      taskId: req.id,
      status: "REVOKED",
      result: exc("TaskRevokedError", "celery.exceptions", ["expired"]),
      dateDone: new Date(),
      groupId: req.group,
      parentId: req.parentId,
    });
    return { taskId: req.id, status: "REVOKED", meta, replyTo: req.replyTo };
  }

  #revokedEntry(req: TaskRequest, reason: "revoked" | "terminated"): StoreEntry {
    this.stats.revoked++;
    log.warn("Task {name}[{id}] {reason}: not run", { name: req.task, id: req.id, reason });
    const meta = encodeResultMeta({
      taskId: req.id,
      status: "REVOKED",
      result: exc("TaskRevokedError", "celery.exceptions", [reason]),
      dateDone: new Date(),
      groupId: req.group,
      parentId: req.parentId,
    });
    return { taskId: req.id, status: "REVOKED", meta, replyTo: req.replyTo };
  }

  #isRevoked(id: string): boolean {
    const until = this.#revoked.get(id);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#revoked.delete(id);
    return false;
  }

  /**
   * Hold an ETA task, unacknowledged, until it is due. Where the broker has
   * leases they are renewed while it waits; where it has none (AMQP) it is
   * held at most `etaHoldLimit` and then published again.
   */
  #hold(h: Held): void {
    const eta = h.req.eta!.getTime();
    const limit = this.#broker.visibilityTimeout === null
      ? Date.now() + (this.#options.etaHoldLimit ?? 600) * 1000
      : Infinity;
    if (this.#logInfo) {
      log.info("Task {name}[{id}] received, ETA {eta}", {
        name: h.req.task,
        id: h.req.id,
        eta: h.req.eta!.toISOString(),
      });
    }
    h.handle = this.#held.add(Math.min(eta, limit), h);
    this.#heldById.set(h.req.id, h);
  }

  #heldDue(h: Held, admitted = false): void {
    this.#heldById.delete(h.req.id);
    const { delivery: d, req, task } = h;
    const stores: StoreEntry[] = [];
    const acks: Delivery[] = [];
    const publishes: Outgoing[] = [];
    if (this.#isRevoked(req.id)) {
      stores.push(this.#revokedEntry(req, "revoked"));
      acks.push(d);
    } else if (req.expires && req.expires.getTime() <= Date.now()) {
      stores.push(this.#expired(req));
      acks.push(d);
    } else if (req.eta && req.eta.getTime() > Date.now()) {
      log.debug("Task {name}[{id}] held for long: publishing it again until its ETA", {
        name: req.task,
        id: req.id,
      });
      publishes.push({
        taskId: req.id,
        message: d,
        target: { exchange: d.exchange, routingKey: d.routingKey },
      });
      acks.push(d);
    } else if (!admitted && this.#limiter.rate(req.task) !== null) {
      this.#limiter.submit(req.task, { delivery: d, req, task });
      return;
    } else {
      this.#pool.run([this.#prepare(d, req, task, stores, acks)]);
    }
    this.#track(this.#settle(stores, [], acks, publishes));
  }

  /** Renew the leases of every unacknowledged delivery this worker holds. */
  #startLeases(): void {
    const visibility = this.#broker.visibilityTimeout;
    if (visibility === null) return;
    const every = Math.min(60_000, Math.max(200, visibility / 4));
    this.#leaseTimer = setInterval(() => {
      const mine = [...this.#held.items(), ...this.#limiter.held()].map((h) => h.delivery);
      for (const r of this.#running.values()) if (!r.acked) mine.push(r.delivery);
      if (mine.length === 0) return;
      this.#broker.extend(mine).catch((err) =>
        log.warn("Cannot renew {n} lease(s): {error}", {
          n: mine.length,
          error: (err as Error).message,
        })
      );
    }, every);
  }

  #controlTarget(): ControlTarget {
    return {
      hostname: this.hostname,
      revoke: (ids, terminate) => this.revoke(ids, { terminate }),
      revoked: () => [...this.#revoked.keys()].filter((id) => this.#isRevoked(id)),
      registered: () =>
        [...this.#app.tasks.values()].filter((t) => t.handler).map((t) => {
          const rate = this.rateLimit(t.name);
          if (rate === null) return t.name;
          const text = this.#rateText.get(t.name) ?? t.options.rateLimit ?? `${rate}/s`;
          return `${t.name} [rate_limit=${text}]`;
        }).sort(),
      setRateLimit: (name, rate) => {
        if (!this.#app.tasks.get(name)?.handler) throw new RangeError(`unknown task ${name}`);
        this.setRateLimit(name, rate);
      },
      shutdown: () => void this.stop(),
    };
  }

  /**
   * Revoke tasks: they are skipped when they arrive (or, if held for an
   * ETA, at once); with `terminate`, running ones are stopped and stored as
   * REVOKED "terminated". Remote `revoke` commands call this.
   *
   * @example
   * ```ts ignore
   * worker.revoke([taskId], { terminate: true });
   * ```
   *
   * @param ids task ids
   * @param options `terminate`: also stop running ones
   * @returns the ids that were running and are being terminated
   */
  revoke(ids: readonly string[], options: { terminate?: boolean } = {}): string[] {
    const until = Date.now() + REVOKE_TTL_MS;
    for (const id of ids) {
      this.#revoked.delete(id);
      this.#revoked.set(id, until);
    }
    while (this.#revoked.size > REVOKES_MAX) {
      this.#revoked.delete(this.#revoked.keys().next().value!);
    }
    this.#broker?.addRevoked(ids.map((id) => ({ id, expiresAt: new Date(until) }))).catch((err) =>
      log.warn("Cannot remember revoked ids in the broker: {error}", {
        error: (err as Error).message,
      })
    );
    const stores: StoreEntry[] = [];
    const acks: Delivery[] = [];
    for (const id of ids) {
      const h = this.#heldById.get(id);
      if (h && this.#held.cancel(h.handle!)) {
        this.#heldById.delete(id);
        stores.push(this.#revokedEntry(h.req, "revoked"));
        acks.push(h.delivery);
      }
    }
    const wanted = new Set(ids);
    for (const h of this.#limiter.remove((x) => wanted.has(x.req.id))) {
      stores.push(this.#revokedEntry(h.req, "revoked"));
      acks.push(h.delivery);
    }
    if (stores.length) this.#track(this.#settle(stores, [], acks, []));
    if (!options.terminate) return [];
    const seqs: number[] = [];
    const killed: string[] = [];
    for (const [seq, r] of this.#running) {
      if (wanted.has(r.req.id) && !this.#terminated.has(seq)) {
        seqs.push(seq);
        killed.push(r.req.id);
        this.#terminated.add(seq);
      }
    }
    if (seqs.length) this.#pool.terminate(seqs);
    return killed;
  }

  #prepare(
    d: Delivery,
    req: TaskRequest,
    task: Task<never, unknown>,
    stores: StoreEntry[],
    acks: Delivery[],
  ): RunRequest {
    const seq = ++this.#seq;
    const lateAck = task.options.acksLate ?? this.#options.acksLate ?? false;
    if (!lateAck) acks.push(d);
    this.#running.set(seq, { delivery: d, req, acked: !lateAck, started: performance.now() });
    if (task.options.trackStarted && this.#backend) {
      stores.push({
        taskId: req.id,
        status: "STARTED",
        meta: encodeResultMeta({
          taskId: req.id,
          status: "STARTED",
          result: { pid: Deno.pid, hostname: this.hostname },
          groupId: req.group,
          parentId: req.parentId,
        }),
        replyTo: req.replyTo,
      });
    }
    const compression = d.headers.compression;
    return {
      seq,
      task: req.task,
      id: req.id,
      body: d.body,
      contentType: d.contentType,
      contentEncoding: d.contentEncoding,
      headers: task.options.bind ? d.headers : compression ? { compression } : {},
      decoded: req.body,
      storeResult: this.#backend !== null && !req.ignoreResult,
      timeLimits: resolveTimeLimits(req.timeLimit, task.options, this.#options),
      info: {
        retries: req.retries,
        rootId: req.rootId,
        parentId: req.parentId,
        group: req.group,
        eta: req.eta,
        expires: req.expires,
        queue: d.queue,
        redelivered: d.redelivered,
        hostname: this.hostname,
      },
    };
  }

  #onOutcomes(outcomes: RunOutcome[]): void {
    this.#window.observe(outcomes);
    const stores: StoreEntry[] = [];
    const rejects: Rejection[] = [];
    const acks: Delivery[] = [];
    const publishes: Outgoing[] = [];
    const retries: DueRetry[] = [];
    const now = new Date();
    for (const o of outcomes) {
      const r = this.#running.get(o.seq);
      if (!r) continue;
      this.#running.delete(o.seq);
      const { req, delivery } = r;
      if (this.#terminated.delete(o.seq)) {
        stores.push(this.#revokedEntry(req, "terminated"));
        if (!r.acked) acks.push(delivery);
        continue;
      }
      if (o.refused) {
        log.error("Parked task {name}[{id}]: {reason}", {
          name: req.task,
          id: req.id,
          reason: o.refused,
        });
        this.stats.parked++;
        rejects.push({ delivery, reason: o.refused, taskId: req.id, taskName: req.task });
        if (o.meta) {
          stores.push({ taskId: req.id, status: "FAILURE", meta: o.meta, replyTo: req.replyTo });
        }
        continue;
      }
      if (o.retry) {
        this.stats.retried++;
        log.info("Task {name}[{id}] retry: Retry {when}{cause}", {
          name: req.task,
          id: req.id,
          when: o.retry.when,
          cause: o.exc ? `: ${o.exc.exc_type}(${o.exc.exc_message.map(String).join(", ")})` : "",
        });
        retries.push({ delivery, req, acked: r.acked, outcome: o });
        continue;
      }
      const status: TaskState = o.ok ? "SUCCESS" : "FAILURE";
      if (o.meta) stores.push({ taskId: req.id, status, meta: o.meta, replyTo: req.replyTo });
      const parent = {
        id: req.id,
        rootId: req.rootId ?? req.id,
        origin: this.hostname,
        defaultQueue: this.#app.config.defaultQueue,
      };
      if (o.ok) {
        this.stats.succeeded++;
        if (this.#logInfo) {
          log.info("Task {name}[{id}] succeeded in {seconds}s", {
            name: req.task,
            id: req.id,
            seconds: (o.runtime / 1000).toFixed(6),
          });
        }
        if (o.followUp) {
          publishes.push(...successFollowUps(o.followUp.embed, o.followUp.value, parent, now));
        }
      } else {
        this.stats.failed++;
        log.warn("Task {name}[{id}] raised {type}: {message}", {
          name: req.task,
          id: req.id,
          type: o.exc?.exc_type,
          message: o.exc?.exc_message.map(String).join(", "),
        });
        if (o.followUp) {
          publishes.push(...failureFollowUps(o.followUp.embed, parent, now));
          if (o.meta) stores.push(...this.#chainFailures(chainStepIds(o.followUp.embed), o.meta));
        }
      }
      const chord = o.followUp?.embed.chord;
      if (chord) {
        log.error(
          "Task {name}[{id}] is a member of chord {group}: Celeriac workers do not join chords " +
            "yet, so its body {body} will not be triggered by this worker",
          { name: req.task, id: req.id, group: req.group, body: chord.task },
        );
      }
      if (!r.acked) acks.push(delivery);
    }
    if (stores.length || rejects.length || acks.length || publishes.length) {
      this.#track(this.#settle(stores, rejects, acks, publishes));
    }
    if (retries.length) {
      const io = {
        broker: this.#broker,
        backend: this.#backend,
        publish: (m: Message, t: PublishTarget) => this.#app.publish(m, t),
        origin: this.hostname,
      };
      this.#track(settleRetries(retries, io));
    }
    this.#wake?.();
    this.#wake = null;
  }

  #chainFailures(ids: string[], meta: string): StoreEntry[] {
    const m = pyJsonLoads(meta) as ResultMeta;
    return ids.map((taskId) => ({
      taskId,
      status: "FAILURE" as const,
      meta: encodeResultMeta({
        taskId,
        status: "FAILURE",
        result: m.result,
        traceback: m.traceback,
        dateDone: new Date(),
      }),
    }));
  }

  /**
   * A Web Worker died with these tasks: late-ack tasks that reject on
   * worker loss are requeued; the others fail with `WorkerLostError`.
   */
  #onLost(seqs: number[], reason: string): void {
    const stores: StoreEntry[] = [];
    const acks: Delivery[] = [];
    const requeues: Delivery[] = [];
    for (const seq of seqs) {
      const r = this.#running.get(seq);
      if (!r) continue;
      this.#running.delete(seq);
      if (this.#terminated.delete(seq)) {
        stores.push(this.#revokedEntry(r.req, "terminated"));
        if (!r.acked) acks.push(r.delivery);
        continue;
      }
      const task = this.#app.tasks.get(r.req.task);
      if (
        !r.acked &&
        (task?.options.rejectOnWorkerLost ?? this.#options.rejectOnWorkerLost ?? false)
      ) {
        log.warn("Task {name}[{id}] requeued: its Web Worker died ({reason})", {
          name: r.req.task,
          id: r.req.id,
          reason,
        });
        requeues.push(r.delivery);
        continue;
      }
      this.stats.failed++;
      stores.push({
        ...failureEntry(r.req.id, exceptionInfo(new WorkerLostError(reason)), null),
        replyTo: r.req.replyTo,
      });
      if (!r.acked) acks.push(r.delivery);
    }
    this.#track(
      this.#settle(stores, [], acks, []).then(() =>
        requeues.length ? this.#broker.requeue(requeues) : undefined
      ),
    );
    this.#wake?.();
    this.#wake = null;
  }

  /**
   * Task `seq` ran past its hard limit: it fails with `TimeLimitExceeded`;
   * the tasks stopped with it are put back in their queues (requeued if
   * unacknowledged, republished if already acknowledged), never failed.
   */
  #onTimeLimit(seq: number, seconds: number, abandoned: number[]): void {
    const stores: StoreEntry[] = [];
    const acks: Delivery[] = [];
    const r = this.#running.get(seq);
    if (r && this.#terminated.delete(seq)) {
      this.#running.delete(seq);
      stores.push(this.#revokedEntry(r.req, "terminated"));
      if (!r.acked) acks.push(r.delivery);
    } else if (r) {
      this.#running.delete(seq);
      this.stats.failed++;
      const err = new TimeLimitExceeded({ seconds, task: r.req.task, id: r.req.id });
      log.warn("Task {name}[{id}] raised {type}: {message}", {
        name: r.req.task,
        id: r.req.id,
        type: err.name,
        message: err.message,
      });
      stores.push({ ...failureEntry(r.req.id, exceptionInfo(err), null), replyTo: r.req.replyTo });
      if (!r.acked) acks.push(r.delivery);
    }
    const back: Running[] = [];
    for (const s of abandoned) {
      const a = this.#running.get(s);
      if (!a) continue;
      this.#running.delete(s);
      if (this.#terminated.delete(s)) {
        stores.push(this.#revokedEntry(a.req, "terminated"));
        if (!a.acked) acks.push(a.delivery);
      } else {
        back.push(a);
      }
    }
    this.#track(this.#settle(stores, [], acks, []).then(() => this.#putBack(back)));
    this.#wake?.();
    this.#wake = null;
  }

  /** Put tasks that were stopped through no fault of their own back in their queues. */
  async #putBack(tasks: Running[]): Promise<void> {
    const unacked = tasks.filter((t) => !t.acked).map((t) => t.delivery);
    if (unacked.length) await this.#broker.requeue(unacked);
    for (const t of tasks.filter((x) => x.acked)) {
      await this.#broker.publish(t.delivery, {
        exchange: t.delivery.exchange,
        routingKey: t.delivery.routingKey,
      });
    }
  }

  /**
   * Park refused messages, store results, publish follow-ups, then
   * acknowledge: nothing is acknowledged before its outcome is stored, and a
   * refused message is parked before its failure is announced.
   */
  async #settle(
    stores: StoreEntry[],
    rejects: Rejection[],
    acks: Delivery[],
    publishes: Outgoing[],
  ): Promise<void> {
    const backend = this.#backend;
    if (rejects.length) await this.#broker.reject(rejects);
    if (backend && stores.length) await storeResults(backend, stores);
    for (const p of publishes) await this.#app.publish(p.message, p.target);
    if (acks.length) await this.#broker.ack(acks);
  }

  /**
   * Warm shutdown: stop taking messages, let running tasks finish, store
   * and settle everything, put held ETA tasks back in their queues.
   *
   * @example
   * ```ts ignore
   * Deno.addSignalListener("SIGTERM", () => worker.stop());
   * ```
   */
  async stop(): Promise<void> {
    if (this.#stopping) return await this.#finished.promise;
    this.#stopping = true;
    log.info("{hostname}: warm shutdown, waiting for {n} running task(s)", {
      hostname: this.hostname,
      n: this.#running.size,
    });
    this.#takeAbort.abort();
    this.#control.abort();
    this.#wake?.();
    await this.#loop;
    await this.#requeueHeld();
    while (this.#running.size > 0 && !this.#cold) await new Promise<void>((r) => this.#wake = r);
    // A cold shutdown that started meanwhile finishes the job (and resolves `finished`).
    if (this.#cold) return await this.#finished.promise;
    await this.#drainSettling();
    clearInterval(this.#leaseTimer);
    await this.#pool.close();
    this.#finished.resolve();
  }

  /**
   * Cold shutdown: put tasks that are still running back in their queues
   * (unacknowledged ones are requeued, acknowledged ones republished), then
   * stop without waiting for them.
   *
   * @example
   * ```ts ignore
   * Deno.addSignalListener("SIGINT", () => worker.stop().then(() => {}, () => {}));
   * ```
   */
  async terminate(): Promise<void> {
    if (this.#cold) return await this.#finished.promise;
    this.#cold = true;
    this.#stopping = true;
    this.#takeAbort.abort();
    this.#control.abort();
    const seqs = [...this.#running.keys()];
    const running = [...this.#running.values()];
    this.#running.clear();
    this.#pool?.abort(seqs);
    this.#wake?.();
    log.warn("{hostname}: cold shutdown, requeueing {n} running task(s)", {
      hostname: this.hostname,
      n: running.length,
    });
    await this.#pool?.close();
    await this.#requeueHeld();
    const unacked = running.filter((r) => !r.acked).map((r) => r.delivery);
    if (unacked.length) await this.#broker.requeue(unacked);
    for (const r of running.filter((x) => x.acked)) {
      await this.#broker.publish(r.delivery, {
        exchange: r.delivery.exchange,
        routingKey: r.delivery.routingKey,
      });
    }
    await this.#drainSettling();
    clearInterval(this.#leaseTimer);
    this.#finished.resolve();
  }

  async #requeueHeld(): Promise<void> {
    const held = [...this.#held.clear(), ...this.#limiter.drain()];
    this.#heldById.clear();
    if (held.length) await this.#broker.requeue(held.map((h) => h.delivery));
  }

  async #drainSettling(): Promise<void> {
    while (this.#settling.size > 0) await Promise.allSettled([...this.#settling]);
  }
}
