/**
 * The dashboard's in-memory view of the cluster: workers, the last N tasks,
 * throughput and metrics, fed one event at a time by
 * {@link ViewModel.apply}. Pure and bounded: no I/O, no timers; what
 * changed since the last {@link ViewModel.takeChanges} is what the live
 * stream sends.
 *
 * @module
 */

import type { DashboardEvent, EventCore } from "./feed.ts";
import { OldestKeys } from "../client/oldest_keys.ts";
import { Metrics } from "./metrics.ts";
import type { TaskFacts, TaskRecord } from "./task_record.ts";
import { TaskTable } from "./task_table.ts";
import { MAX_KEY } from "./text_caps.ts";
import { Throughput } from "./throughput.ts";
import { type WorkerRecord, WorkerTable } from "./worker_table.ts";

/**
 * Options of {@link ViewModel}.
 *
 * @example
 * ```ts
 * import { ViewModel } from "@celeriac/celeriac/dashboard";
 * new ViewModel({ maxTasks: 5_000, seriesSeconds: 900 });
 * ```
 */
export interface ViewModelOptions {
  /** Tasks kept. Default 10,000. */
  maxTasks?: number;
  /** Seconds of throughput history. Default 600. */
  seriesSeconds?: number;
}

/**
 * What changed since the last call of {@link ViewModel.takeChanges}.
 *
 * @example
 * ```ts
 * import { ViewModel } from "@celeriac/celeriac/dashboard";
 * const vm = new ViewModel();
 * vm.apply({ type: "task-started", hostname: "w@h", timestamp: 1, uuid: "t1" });
 * vm.takeChanges().tasks.length; // 1
 * ```
 */
export interface Changes {
  /** Workers that changed. */
  workers: WorkerRecord[];
  /** Tasks that changed (the latest 200; `more` tells if others did too). */
  tasks: TaskRecord[];
  /** True when more tasks changed than `tasks` holds. */
  more: boolean;
  /** Events applied since the last call. */
  events: number;
}

const MAX_CHANGED_TASKS = 200;

/**
 * Queues kept in {@link ViewModel.queuesSeen}: past it the least recently seen is dropped, so
 * that a client sending to ever new queues does not grow the list (and the depth asked of the
 * broker at each /metrics scrape) without end.
 */
export const MAX_QUEUES_SEEN = 1000;

/** Whether an event's field is a string too long for a key (see MAX_KEY). */
function long(v: unknown): boolean {
  return typeof v === "string" && v.length > MAX_KEY;
}

/**
 * Everything the dashboard shows that comes from events.
 *
 * @example Feeding recorded events
 * ```ts
 * import { ViewModel } from "@celeriac/celeriac/dashboard";
 * const vm = new ViewModel();
 * vm.apply({ type: "worker-online", hostname: "celery@h", timestamp: Date.now() / 1000 });
 * vm.workers.list()[0].online; // true
 * ```
 */
export class ViewModel {
  /** The last N tasks. */
  readonly tasks: TaskTable;
  /** Workers by node name. */
  readonly workers: WorkerTable;
  /** Outcomes per second. */
  readonly throughput: Throughput;
  /** Prometheus metrics. */
  readonly metrics: Metrics = new Metrics();
  /** Events applied since start. */
  eventCount: number = 0;
  /** Events that could not be applied (no `type` or `hostname`). */
  malformed: number = 0;
  /** The latest MAX_CHANGED_TASKS tasks changed since the last takeChanges(). */
  #changedTasks = new Map<string, true>();
  #oldestChanged = new OldestKeys(this.#changedTasks);
  /** Whether more tasks changed than #changedTasks holds. */
  #moreTasks = false;
  readonly #changedWorkers = new Set<string>();
  /** What the task table tells of the task each event updated (one object, refilled). */
  readonly #facts: TaskFacts = {
    name: null,
    queue: null,
    eta: null,
    received: null,
    started: null,
  };
  #eventsSince = 0;
  /**
   * Queues seen in `task-sent` events and `active_queues` replies, least recently seen first;
   * at most {@link MAX_QUEUES_SEEN}.
   */
  readonly queuesSeen: Set<string> = new Set();
  readonly #oldestQueue = new OldestKeys(this.queuesSeen);
  /**
   * Whether {@link ViewModel.apply} notes which tasks changed, for
   * {@link ViewModel.takeChanges}. Default true; the dashboard turns it off
   * while no browser follows the live stream. Off, the state is kept whole
   * and a change only sets `more` (tasks changed that `tasks` does not list);
   * workers changed and the event count are noted either way.
   *
   * @example
   * ```ts
   * import { ViewModel } from "@celeriac/celeriac/dashboard";
   * const vm = new ViewModel();
   * vm.recordTaskChanges = false;
   * vm.apply({ type: "task-started", hostname: "w@h", timestamp: 1, uuid: "t1" });
   * const changes = vm.takeChanges();
   * changes.tasks.length; // 0
   * changes.more; // true
   * vm.tasks.get("t1")?.state; // "STARTED"
   * ```
   */
  recordTaskChanges: boolean = true;

  /**
   * An empty view.
   *
   * @param options `maxTasks`, `seriesSeconds`
   */
  constructor(options: ViewModelOptions = {}) {
    this.tasks = new TaskTable({ maxTasks: options.maxTasks });
    this.workers = new WorkerTable();
    this.throughput = new Throughput({ seconds: options.seriesSeconds });
  }

  /**
   * Apply one event. Events without a string `type` and `hostname`, or with
   * a `hostname`, `uuid`, `name`, `parent_id` or `root_id` over 512 characters, are counted in
   * {@link ViewModel.malformed} and otherwise ignored.
   *
   * @param e the event
   */
  apply(event: EventCore | DashboardEvent): void {
    const e = event as DashboardEvent;
    if (
      typeof e?.type !== "string" || typeof e.hostname !== "string" || long(e.hostname) ||
      long(e.uuid) || long(e.name) || long(e.parent_id) || long(e.root_id)
    ) {
      this.malformed++;
      return;
    }
    this.eventCount++;
    this.#eventsSince++;
    const facts = this.#facts;
    const isTask = this.tasks.apply(e, facts);
    if (isTask) {
      const uuid = e.uuid as string;
      if (!this.recordTaskChanges) this.#moreTasks = true;
      else if (!this.#changedTasks.has(uuid)) {
        this.#changedTasks.set(uuid, true);
        if (this.#changedTasks.size > MAX_CHANGED_TASKS) {
          this.#oldestChanged.evict();
          this.#moreTasks = true;
        }
      }
      if (e.type === "task-sent" && facts.queue) this.#seeQueue(facts.queue);
      this.throughput.record(
        e.type,
        e.timestamp,
        typeof e.runtime === "number" ? e.runtime : undefined,
      );
    }
    const worker = this.workers.apply(e);
    if (worker) this.#changedWorkers.add(worker.hostname);
    if (isTask) this.metrics.apply(e, facts.name ?? "", facts);
    else this.metrics.apply(e, typeof e.name === "string" ? e.name : "");
  }

  /** Note a queue as the most recently seen; past {@link MAX_QUEUES_SEEN}, drop the least. */
  #seeQueue(queue: string): void {
    this.queuesSeen.delete(queue);
    this.queuesSeen.add(queue);
    if (this.queuesSeen.size > MAX_QUEUES_SEEN) this.#oldestQueue.evict();
  }

  /**
   * Apply an `inspect active_queues` reply: which queues each worker consumes.
   *
   * @param replies node name → list of queue declarations (`{ name, ... }`)
   */
  applyActiveQueues(replies: Record<string, unknown>): void {
    for (const [node, list] of Object.entries(replies)) {
      if (!Array.isArray(list)) continue;
      const names = list
        .map((q) => (q as { name?: unknown })?.name)
        .filter((n): n is string => typeof n === "string");
      for (const n of names) this.#seeQueue(n);
      if (this.workers.setInspected(node, { queues: names })) this.#changedWorkers.add(node);
    }
  }

  /**
   * Apply an `inspect stats` reply: each worker's pool size (see {@link poolSize});
   * a worker whose size changed is in the next {@link ViewModel.takeChanges}.
   *
   * @param replies node name → stats
   */
  applyStats(replies: Record<string, unknown>): void {
    for (const [node, stats] of Object.entries(replies)) {
      const pool = poolSize(stats);
      if (pool === null) continue;
      const before = this.workers.get(node)?.pool;
      if (this.workers.setInspected(node, { pool }) && pool !== before) {
        this.#changedWorkers.add(node);
      }
    }
  }

  /**
   * Check heartbeats: workers silent for twice their interval go offline.
   *
   * @param now Unix seconds
   */
  tick(now: number): void {
    for (const w of this.workers.expire(now)) {
      this.#changedWorkers.add(w.hostname);
      this.metrics.offline(w.hostname);
    }
  }

  /**
   * What changed since the last call (and forget it).
   *
   * @returns the changes
   */
  takeChanges(): Changes {
    const tasks: TaskRecord[] = [];
    for (const id of this.#changedTasks.keys()) {
      const t = this.tasks.get(id);
      if (t) tasks.push(t);
    }
    const workers: WorkerRecord[] = [];
    for (const name of this.#changedWorkers) {
      const w = this.workers.get(name);
      if (w) workers.push(w);
    }
    const changes = {
      workers,
      tasks,
      more: this.#moreTasks,
      events: this.#eventsSince,
    };
    this.#changedTasks = new Map();
    this.#oldestChanged = new OldestKeys(this.#changedTasks);
    this.#moreTasks = false;
    this.#changedWorkers.clear();
    this.#eventsSince = 0;
    return changes;
  }
}

/**
 * A worker's pool size from its `inspect stats` reply: the number of
 * `pool.processes` when the pool lists them (Celery's prefork and solo pools,
 * one per Web Worker for Celeriac), else `pool["max-concurrency"]` (threads,
 * eventlet, gevent). A prefork pool's `max-concurrency` is the size it started
 * with: it stays put through `pool_grow`, `pool_shrink` and autoscaling, while
 * `processes` follows them.
 *
 * @example
 * ```ts
 * import { poolSize } from "./view_model.ts";
 * poolSize({ pool: { "max-concurrency": 2, processes: [11, 12, 13] } }); // 3, after a pool_grow 1
 * poolSize({ pool: { "max-concurrency": 2, processes: [] } }); // 0, after a pool_shrink 2
 * poolSize({ pool: { "max-concurrency": 8, threads: 0 } }); // 8
 * ```
 *
 * @param stats one node's `inspect stats` reply
 * @returns the size, or null when the reply gives none
 */
export function poolSize(stats: unknown): number | null {
  const pool = (stats as { pool?: Record<string, unknown> } | null)?.pool;
  const processes = pool?.processes;
  // An empty list is a pool shrunk to nothing (pool_shrink takes a prefork pool to 0)
  if (Array.isArray(processes)) return processes.length;
  const max = pool?.["max-concurrency"];
  return typeof max === "number" ? max : null;
}
