/**
 * Execution pools: a pool of Web Workers (`threads`, the default) and the
 * `inline` pool that runs tasks on the main thread.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Celery } from "../client/app.ts";
import type { CeleryOptions } from "../client/config.ts";
import type { PublishTarget } from "../broker/port.ts";
import type { Message } from "../protocol/message.ts";
import { BatchRunner, type RunOutcome, type RunRequest } from "./executor.ts";
import type { FromRunner, ToRunner } from "./pool_protocol.ts";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * What a pool reports back to the consumer.
 *
 * @example Receiving outcomes from an inline pool
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { InlinePool, type PoolEvents } from "@celeriac/celeriac/worker";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const events: PoolEvents = {
 *   onOutcomes: (outcomes) => {
 *     for (const o of outcomes) console.log(o.seq, o.ok ? "ok" : o.exc?.exc_type);
 *   },
 *   onPublish: (message, target) => app.publish(message, target),
 *   onLost: (seqs, reason) => console.warn(`tasks ${seqs.join(", ")} lost: ${reason}`),
 * };
 * const pool = new InlinePool(app, 10, events);
 * await pool.start();
 * await pool.close();
 * ```
 */
export interface PoolEvents {
  /** Outcomes of finished tasks. */
  onOutcomes(outcomes: RunOutcome[]): void;
  /** Publish a message for a task (tasks sent from tasks). */
  onPublish(message: Message, target: PublishTarget): Promise<void>;
  /** A Web Worker died: these dispatched tasks did not finish. */
  onLost(seqs: number[], reason: string): void;
}

/**
 * A pool runs task requests and reports outcomes.
 *
 * @example Handing a pool no more than it can hold
 * ```ts
 * import type { Pool, RunRequest } from "@celeriac/celeriac/worker";
 * // Run what fits in the pool's free slots; return the rest.
 * function dispatch(pool: Pool, busy: number, waiting: RunRequest[]): RunRequest[] {
 *   const free = Math.max(0, pool.capacity - busy);
 *   if (free > 0) pool.run(waiting.slice(0, free));
 *   return waiting.slice(free);
 * }
 * ```
 */
export interface Pool {
  /** Total task slots. */
  readonly capacity: number;
  /** Start the pool; resolves when it can run tasks. */
  start(): Promise<void>;
  /** Run requests (never more than there are free slots). */
  run(requests: RunRequest[]): void;
  /** Ask running tasks to stop (their AbortSignal fires). */
  abort(seqs: number[]): void;
  /** Stop the pool; running tasks are abandoned. */
  close(): Promise<void>;
}

/**
 * Options of {@link ThreadPool}.
 *
 * @example Four Web Workers without file access
 * ```ts
 * import { ThreadPool, type ThreadPoolOptions } from "@celeriac/celeriac/worker";
 * const options: ThreadPoolOptions = {
 *   size: 4,
 *   slots: 32,
 *   module: new URL("./tasks.ts", import.meta.url).href,
 *   exportName: "app",
 *   permissions: { net: true, env: true, read: false, write: false },
 *   config: { broker: "redis://127.0.0.1:6379/0" },
 * };
 * const pool = new ThreadPool(options, {
 *   onOutcomes: () => {},
 *   onPublish: () => Promise.resolve(),
 *   onLost: () => {},
 * });
 * pool.capacity; // 128; Web Workers start with pool.start()
 * ```
 */
export interface ThreadPoolOptions {
  /** Number of Web Workers. */
  size: number;
  /** Tasks one Web Worker may hold at once. */
  slots: number;
  /** URL of the app module each Web Worker imports. */
  module: string;
  /** Export holding the app. */
  exportName?: string;
  /** Deno permissions of the Web Workers; default inherit the process's. */
  permissions?: Deno.PermissionOptions;
  /** The worker's app configuration, applied to the app in each Web Worker. */
  config: CeleryOptions;
}

interface Member {
  worker: Worker;
  load: number;
  inflight: Set<number>;
  ready: Promise<void>;
  up: boolean;
  dead: boolean;
}

/**
 * A pool of Web Workers, each importing the app module and running many
 * tasks at a time (async handlers interleave; sync handlers run in turn).
 * A Web Worker that dies is replaced (with backoff if replacements keep
 * failing), and the tasks it held are reported lost.
 *
 * @example
 * ```ts ignore
 * const pool = new ThreadPool({ size: 2, slots: 16, module: "file:///srv/tasks.ts", config: {} }, events);
 * await pool.start();
 * ```
 */
export class ThreadPool implements Pool {
  readonly capacity: number;
  readonly #options: ThreadPoolOptions;
  readonly #events: PoolEvents;
  #members: Member[] = [];
  readonly #owner = new Map<number, Member>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #failures = 0;
  #closed = false;

  /**
   * Configure the pool; its Web Workers start with {@link ThreadPool.start}.
   *
   * @param options size, slots, module and permissions
   * @param events where outcomes go
   */
  constructor(options: ThreadPoolOptions, events: PoolEvents) {
    if (!(options.size >= 1) || !(options.slots >= 1)) {
      throw new RangeError("A pool needs at least 1 Web Worker with at least 1 slot");
    }
    this.#options = options;
    this.#events = events;
    this.capacity = options.size * options.slots;
  }

  async start(): Promise<void> {
    this.#members = Array.from({ length: this.#options.size }, () => this.#spawn());
    try {
      await Promise.all(this.#members.map((m) => m.ready));
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  #spawn(): Member {
    const worker = new Worker(new URL("./runner.ts", import.meta.url), {
      type: "module",
      name: "celeriac-task-runner",
      deno: { permissions: this.#options.permissions ?? "inherit" },
    });
    const { promise: ready, resolve, reject } = Promise.withResolvers<void>();
    ready.catch(() => {});
    const member: Member = { worker, load: 0, inflight: new Set(), ready, up: false, dead: false };
    const fail = (reason: string) => {
      reject(new Error(`A Web Worker failed: ${reason}`));
      this.#fail(member, reason);
    };
    worker.onmessage = (e: MessageEvent<FromRunner>) => {
      const msg = e.data;
      switch (msg.type) {
        case "ready":
          member.up = true;
          this.#failures = 0;
          resolve();
          break;
        case "init-error":
          fail(`the app module failed to load:\n${msg.error}`);
          break;
        case "outcomes":
          for (const o of msg.outcomes) {
            member.inflight.delete(o.seq);
            this.#owner.delete(o.seq);
          }
          member.load -= msg.outcomes.length;
          this.#events.onOutcomes(msg.outcomes);
          break;
        case "publish":
          this.#events.onPublish(msg.message, msg.target).then(
            () => this.#post(member, { type: "published", id: msg.id }),
            (err) => this.#post(member, { type: "published", id: msg.id, error: String(err) }),
          );
          break;
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      fail(e.message);
    };
    this.#post(member, {
      type: "init",
      module: this.#options.module,
      exportName: this.#options.exportName,
      config: this.#options.config,
    });
    return member;
  }

  #post(member: Member, msg: ToRunner): void {
    if (!member.dead) member.worker.postMessage(msg);
  }

  /** A Web Worker crashed or could not load the app: report its tasks lost, replace it. */
  #fail(member: Member, reason: string): void {
    if (member.dead) return;
    member.dead = true;
    member.worker.terminate();
    const seqs = [...member.inflight];
    for (const s of seqs) this.#owner.delete(s);
    const i = this.#members.indexOf(member);
    if (this.#closed || i < 0) return;
    if (seqs.length) this.#events.onLost(seqs, reason);
    const wasUp = member.up;
    if (!wasUp) this.#failures++;
    const delay = wasUp ? 0 : Math.min(30_000, 500 * 2 ** Math.min(this.#failures, 6));
    log.error("A Web Worker died ({reason}); {n} task(s) lost; replacing it in {delay} ms", {
      reason,
      n: seqs.length,
      delay,
    });
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#closed) this.#members[i] = this.#spawn();
    }, delay);
    this.#timers.add(timer);
  }

  run(requests: RunRequest[]): void {
    const batches = new Map<Member, RunRequest[]>();
    const live = this.#members.filter((m) => !m.dead);
    for (const req of requests) {
      if (live.length === 0) {
        this.#events.onLost([req.seq], "no Web Worker is running (replacements are failing)");
        continue;
      }
      let best = live[0];
      for (const m of live) if (m.load < best.load) best = m;
      best.load++;
      best.inflight.add(req.seq);
      this.#owner.set(req.seq, best);
      let b = batches.get(best);
      if (!b) batches.set(best, b = []);
      b.push(req);
    }
    for (const [m, batch] of batches) this.#post(m, { type: "run", batch });
  }

  abort(seqs: number[]): void {
    const by = new Map<Member, number[]>();
    for (const s of seqs) {
      const m = this.#owner.get(s);
      if (m) by.set(m, [...(by.get(m) ?? []), s]);
    }
    for (const [m, list] of by) this.#post(m, { type: "abort", seqs: list });
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const m of this.#members) {
      m.dead = true;
      m.worker.terminate();
    }
    this.#members = [];
    return Promise.resolve();
  }
}

/**
 * Runs tasks on the main thread, many at a time: for I/O-bound async
 * tasks, and where Web Workers are not wanted.
 *
 * @example
 * ```ts ignore
 * const pool = new InlinePool(app, 100, events);
 * ```
 */
export class InlinePool implements Pool {
  readonly capacity: number;
  readonly #app: Celery;
  readonly #runner: BatchRunner;

  /**
   * Configure the inline pool.
   *
   * @param app the app whose tasks run
   * @param slots how many tasks may run at once
   * @param events where outcomes go
   */
  constructor(app: Celery, slots: number, events: PoolEvents) {
    if (!(slots >= 1)) throw new RangeError("The inline pool needs at least 1 slot");
    this.#app = app;
    this.capacity = slots;
    this.#runner = new BatchRunner((outcomes) => events.onOutcomes(outcomes));
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  run(requests: RunRequest[]): void {
    this.#runner.run(this.#app.tasks, requests);
  }

  abort(seqs: number[]): void {
    this.#runner.abort(seqs);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
