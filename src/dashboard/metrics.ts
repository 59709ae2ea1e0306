/**
 * Prometheus metrics with the names and labels of Flower's exporter, so a
 * Grafana board made for Flower works: `flower_events_total`,
 * `flower_task_runtime_seconds`, `flower_task_prefetch_time_seconds`,
 * `flower_worker_prefetched_tasks`, `flower_worker_online`,
 * `flower_worker_number_of_currently_executing_tasks`; Flower has no queue
 * metric, so queue depth is `celeriac_queue_length`. Pure: rendered to the
 * text exposition format on demand.
 *
 * @module
 */

import type { DashboardEvent, EventCore } from "./feed.ts";
import { OldestKeys } from "../client/oldest_keys.ts";
import { TASK_EVENT_STATE } from "../client/event_state.ts";

/**
 * The task event types counted: Celery's own. Any other `task-…` type is not counted, so that a
 * sender making up types cannot add series (each type is a series of its cell).
 */
const TASK_EVENT_TYPES: ReadonlySet<string> = new Set(Object.keys(TASK_EVENT_STATE));

/**
 * (worker, task name) cells kept, each with a series per task event type Celery defines (others
 * are not counted): past it the tenth least recently updated are dropped (their
 * counters start again from 0 if they come back, which Prometheus reads as a reset), so that ever
 * new task names or worker names do not grow a scrape without end.
 */
export const MAX_METRIC_CELLS = 10_000;

/**
 * Tasks not finished yet whose name and times the metrics keep, apart from the dashboard's task
 * table: a task the table evicted (a small `--max-tasks`) still has its later events counted
 * under its name and its prefetch counted off. Past it the oldest go (one still prefetched is
 * counted off then).
 */
export const MAX_METRIC_PENDING = 10_000;

/** Workers kept for `flower_worker_online` and `..._executing_tasks`: the least recently seen go. */
export const MAX_METRIC_WORKERS = 1000;

/** Runtime histogram buckets: prometheus_client's defaults, as Flower uses them. */
export const RUNTIME_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.075,
  0.1,
  0.25,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
];

interface Histogram {
  /** Observations per bucket: `counts[i]` those in (le[i-1], le[i]]; cumulated when rendered. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * What one worker did with one task name. Found with two map lookups on the
 * event's own strings: no label key is built per event.
 */
interface Cell {
  /** Event type → count. */
  events: Map<string, number>;
  runtime: Histogram | null;
  prefetchTime: number | null;
  prefetched: number | null;
  /** When it was last updated (a count of updates). */
  touched: number;
}

/** A task not finished: its name, when it was received, and the cell counting its prefetch. */
interface Pending {
  name: string;
  received: number | null;
  /** The cell whose `prefetched` counts the task while it waits for a process, else null. */
  prefetchedIn: Cell | null;
  /** Whether it started after waiting as prefetched (its outcome sets the prefetch time 0). */
  started: boolean;
}

/** The event types that end a task. */
const OUTCOMES: ReadonlySet<string> = new Set([
  "task-succeeded",
  "task-failed",
  "task-revoked",
  "task-rejected",
]);

/**
 * @param value a label value
 * @returns it escaped for the exposition format
 */
function esc(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** A bucket's bound as prometheus_client (Flower) writes it: `1.0`, `10.0`, `0.005`. */
function bound(le: number): string {
  return Number.isInteger(le) ? `${le}.0` : num(le);
}

function num(n: number): string {
  return Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : n < 0 ? "-Inf" : "NaN";
}

/**
 * Counters, gauges and histograms fed by events.
 *
 * @example
 * ```ts
 * import { Metrics } from "@celeriac/celeriac/dashboard";
 * const m = new Metrics();
 * m.apply({ type: "worker-online", hostname: "celery@h", timestamp: 1 }, "");
 * m.render(new Map([["celery", 3]])).includes('flower_worker_online{worker="celery@h"} 1'); // true
 * ```
 */
export class Metrics {
  /** Worker → task name → its cell. */
  readonly #cells = new Map<string, Map<string, Cell>>();
  #cellCount = 0;
  #clock = 0;
  /** Worker → 1 online, 0 offline; least recently seen first. */
  readonly #online = new Map<string, number>();
  readonly #oldestWorker = new OldestKeys(this.#online);
  readonly #executing = new Map<string, number>();
  /** Task id → what is kept of it until it ends (at most MAX_METRIC_PENDING, oldest first). */
  readonly #pending = new Map<string, Pending>();
  readonly #oldestPending = new OldestKeys(this.#pending);

  /**
   * Apply an event.
   *
   * @param e the event
   * @param taskName the task's name (events after `task-received` do not carry it)
   * @param task what is known of the task: `received`/`started` timestamps and `eta`
   */
  apply(
    event: EventCore | DashboardEvent,
    taskName: string,
    task?: { received: number | null; started: number | null; eta: string | null },
  ): void {
    const e = event as DashboardEvent;
    const worker = e.hostname;
    if (TASK_EVENT_TYPES.has(e.type)) {
      const id = typeof e.uuid === "string" ? e.uuid : null;
      const pending = id === null ? undefined : this.#pending.get(id);
      const cell = this.#cell(worker, taskName || pending?.name || "");
      cell.events.set(e.type, (cell.events.get(e.type) ?? 0) + 1);
      if (typeof e.runtime === "number" && e.runtime > 0) {
        const h = cell.runtime ??= { counts: RUNTIME_BUCKETS.map(() => 0), sum: 0, count: 0 };
        let i = 0;
        while (i < RUNTIME_BUCKETS.length && e.runtime > RUNTIME_BUCKETS[i]) i++;
        if (i < RUNTIME_BUCKETS.length) h.counts[i]++;
        h.sum += e.runtime;
        h.count++;
      }
      if (id !== null) this.#prefetch(e, id, pending, cell, taskName, task);
    } else if (e.type === "worker-online" || e.type === "worker-heartbeat") {
      this.#seeWorker(worker, 1);
      if (typeof e.active === "number") this.#executing.set(worker, e.active);
    } else if (e.type === "worker-offline") {
      this.#seeWorker(worker, 0);
    }
  }

  /**
   * Count a task in `flower_worker_prefetched_tasks` from its `task-received` (without an ETA)
   * until it starts or ends, and set `flower_task_prefetch_time_seconds`, as Flower.
   */
  #prefetch(
    e: DashboardEvent,
    id: string,
    pending: Pending | undefined,
    cell: Cell,
    name: string,
    task?: { received: number | null; started: number | null; eta: string | null },
  ): void {
    const received = task?.received ?? pending?.received ?? null;
    if (e.type === "task-received") {
      if (pending?.prefetchedIn) return;
      const entry = pending ?? { name, received, prefetchedIn: null, started: false };
      if (!task?.eta && received !== null) {
        entry.prefetchedIn = cell;
        cell.prefetched = (cell.prefetched ?? 0) + 1;
      }
      if (!pending) this.#keepPending(id, entry);
    } else if (pending && (e.type === "task-started" || OUTCOMES.has(e.type))) {
      const waited = pending.prefetchedIn;
      if (waited) waited.prefetched! -= 1;
      pending.prefetchedIn = null;
      if (e.type === "task-started") {
        const started = task?.started ?? (typeof e.timestamp === "number" ? e.timestamp : null);
        if (waited && started !== null && received !== null) {
          cell.prefetchTime = started - received;
          pending.started = true;
        }
      } else {
        if (pending.started && e.type !== "task-revoked" && e.type !== "task-rejected") {
          cell.prefetchTime = 0;
        }
        this.#pending.delete(id);
      }
    }
  }

  /** Keep a task until it ends; past MAX_METRIC_PENDING the oldest goes, counted off. */
  #keepPending(id: string, entry: Pending): void {
    this.#pending.set(id, entry);
    if (this.#pending.size <= MAX_METRIC_PENDING) return;
    const old = this.#oldestPending.evictEntry()?.[1];
    if (old?.prefetchedIn) old.prefetchedIn.prefetched! -= 1;
  }

  /** Note a worker as the most recently seen; past {@link MAX_METRIC_WORKERS}, drop the least. */
  #seeWorker(worker: string, online: number): void {
    this.#online.delete(worker);
    this.#online.set(worker, online);
    if (this.#online.size > MAX_METRIC_WORKERS) {
      const gone = this.#oldestWorker.evict();
      if (gone !== undefined) this.#executing.delete(gone);
    }
  }

  /**
   * Mark a worker offline (its heartbeats stopped).
   *
   * @param worker node name
   */
  offline(worker: string): void {
    this.#seeWorker(worker, 0);
  }

  #cell(worker: string, taskName: string): Cell {
    let tasks = this.#cells.get(worker);
    if (!tasks) {
      tasks = new Map();
      this.#cells.set(worker, tasks);
    }
    let cell = tasks.get(taskName);
    if (!cell) {
      cell = { events: new Map(), runtime: null, prefetchTime: null, prefetched: null, touched: 0 };
      tasks.set(taskName, cell);
      this.#cellCount++;
    }
    cell.touched = ++this.#clock;
    if (this.#cellCount > MAX_METRIC_CELLS) this.#dropOldestCells();
    return cell;
  }

  /** Drop the tenth of the cells least recently updated (one sort per tenth: amortized cheap). */
  #dropOldestCells(): void {
    const touched: number[] = [];
    for (const [, , cell] of this.#each()) touched.push(cell.touched);
    touched.sort((a, b) => a - b);
    const keepFrom = touched[Math.floor(MAX_METRIC_CELLS / 10)];
    for (const [worker, tasks] of this.#cells) {
      for (const [name, cell] of tasks) {
        if (cell.touched >= keepFrom) continue;
        tasks.delete(name);
        this.#cellCount--;
      }
      if (tasks.size === 0) this.#cells.delete(worker);
    }
  }

  /** Every (worker, task name, cell), in the order first seen. */
  *#each(): Generator<[string, string, Cell]> {
    for (const [worker, tasks] of this.#cells) {
      for (const [task, cell] of tasks) yield [worker, task, cell];
    }
  }

  /**
   * The metrics in Prometheus' text format (version 0.0.4).
   *
   * @param queues queue name → depth
   * @returns the exposition text
   */
  render(queues: ReadonlyMap<string, number>): string {
    const out: string[] = [];
    const family = (name: string, help: string, type: string) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    const labels = (names: string[], values: string[]) =>
      `{${names.map((n, i) => `${n}="${esc(values[i])}"`).join(",")}}`;

    family("flower_events_total", "Number of events", "counter");
    for (const [worker, task, cell] of this.#each()) {
      for (const [type, v] of cell.events) {
        out.push(
          `flower_events_total${labels(["worker", "type", "task"], [worker, type, task])} ${v}`,
        );
      }
    }
    family("flower_task_runtime_seconds", "Task runtime", "histogram");
    for (const [worker, task, { runtime: h }] of this.#each()) {
      if (!h) continue;
      let cumulative = 0;
      RUNTIME_BUCKETS.forEach((le, i) => {
        cumulative += h.counts[i];
        out.push(
          `flower_task_runtime_seconds_bucket${
            labels(["worker", "task", "le"], [worker, task, bound(le)])
          } ${cumulative}`,
        );
      });
      const base = labels(["worker", "task"], [worker, task]);
      out.push(
        `flower_task_runtime_seconds_bucket${
          labels(["worker", "task", "le"], [worker, task, "+Inf"])
        } ${h.count}`,
        `flower_task_runtime_seconds_sum${base} ${num(h.sum)}`,
        `flower_task_runtime_seconds_count${base} ${h.count}`,
      );
    }
    family(
      "flower_task_prefetch_time_seconds",
      "The time the task spent waiting at the worker to be executed",
      "gauge",
    );
    for (const [worker, task, { prefetchTime: v }] of this.#each()) {
      if (v !== null) {
        out.push(
          `flower_task_prefetch_time_seconds${labels(["worker", "task"], [worker, task])} ${v}`,
        );
      }
    }
    family(
      "flower_worker_prefetched_tasks",
      "Number of tasks of given type prefetched at a worker",
      "gauge",
    );
    for (const [worker, task, { prefetched: v }] of this.#each()) {
      if (v !== null) {
        out.push(
          `flower_worker_prefetched_tasks${labels(["worker", "task"], [worker, task])} ${v}`,
        );
      }
    }
    family("flower_worker_online", "Worker online status", "gauge");
    for (const [w, v] of this.#online) {
      out.push(`flower_worker_online${labels(["worker"], [w])} ${v}`);
    }
    family(
      "flower_worker_number_of_currently_executing_tasks",
      "Number of tasks currently executing at a worker",
      "gauge",
    );
    for (const [w, v] of this.#executing) {
      out.push(
        `flower_worker_number_of_currently_executing_tasks${labels(["worker"], [w])} ${v}`,
      );
    }
    family("celeriac_queue_length", "Messages waiting in a broker queue", "gauge");
    for (const [q, v] of queues) out.push(`celeriac_queue_length${labels(["queue"], [q])} ${v}`);
    return out.join("\n") + "\n";
  }
}
