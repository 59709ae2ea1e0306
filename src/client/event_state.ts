/**
 * A tracker of workers and tasks fed by Celery events, like Celery's
 * `celery.events.state.State` (what Flower and `celery events` run):
 * workers alive or offline by their heartbeats, tasks by state, and a
 * bounded memory (the most recently active tasks).
 *
 * @module
 */

import type { CeleryEvent, WorkerEvent } from "../protocol/events.ts";
import { OldestKeys } from "./oldest_keys.ts";

/**
 * A worker as events describe it.
 *
 * @example
 * ```ts
 * import { EventState } from "@celeriac/celeriac";
 * const state = new EventState(); // fed with state.event(e) for each event received
 * for (const w of state.workers.values()) console.log(w.hostname, state.isAlive(w) ? "up" : "down");
 * ```
 */
export interface WorkerView {
  /** Node name. */
  hostname: string;
  /** Process id. */
  pid: number | null;
  /** Heartbeat interval, seconds. */
  freq: number;
  /** Unix seconds of the last heartbeat (or online event), in the sender's clock. */
  lastHeartbeat: number | null;
  /** Unix seconds (this machine's clock) the last worker event arrived. */
  lastSeen: number;
  /** Whether it said goodbye (`worker-offline`). */
  offline: boolean;
  /** Tasks running at the last heartbeat. */
  active: number;
  /** Tasks it started, at the last heartbeat. */
  processed: number;
  /** Load average at the last heartbeat. */
  loadavg: number[];
  /** Software (`celeriac`, `py-celery`), version and system. */
  software: { ident: string; version: string; system: string } | null;
}

/** Celery task states that events move a task through. */
export type EventTaskState =
  | "PENDING"
  | "RECEIVED"
  | "STARTED"
  | "SUCCESS"
  | "FAILURE"
  | "RETRY"
  | "REVOKED"
  | "REJECTED";

/**
 * A task as events describe it.
 *
 * @example
 * ```ts
 * import { EventState } from "@celeriac/celeriac";
 * const state = new EventState(); // fed with state.event(e) for each event received
 * const t = state.tasks.get("5c0e4e3a-…");
 * console.log(t?.state, t?.runtime);
 * ```
 */
export interface TaskView {
  /** Task id. */
  uuid: string;
  /** Task name, once known. */
  name: string | null;
  /** Latest state. */
  state: EventTaskState;
  /** Node that received it. */
  hostname: string | null;
  /** Python repr of the positional arguments. */
  args: string | null;
  /** Python repr of the keyword arguments. */
  kwargs: string | null;
  /** Python repr of the return value. */
  result: string | null;
  /** Exception repr, for failures and retries. */
  exception: string | null;
  /** Traceback, for failures and retries. */
  traceback: string | null;
  /** Seconds it ran. */
  runtime: number | null;
  /** Retries so far. */
  retries: number;
  /** ETA, ISO 8601. */
  eta: string | null;
  /** Expiry, ISO 8601. */
  expires: string | null;
  /** Root and parent ids. */
  rootId: string | null;
  /** Parent id. */
  parentId: string | null;
  /** Unix seconds of each step seen (`sent`, `received`, `started`, `succeeded`, ...). */
  timestamps: Partial<Record<string, number>>;
  /** Unix seconds of the latest event. */
  updated: number;
}

/**
 * Options of {@link EventState}.
 *
 * @example
 * ```ts
 * import { EventState } from "@celeriac/celeriac";
 * const state = new EventState({ maxTasks: 5000 });
 * ```
 */
export interface EventStateOptions {
  /** Tasks remembered; the least recently updated are forgotten. Default 10,000. */
  maxTasks?: number;
  /** Workers remembered. Default 1,000. */
  maxWorkers?: number;
  /** A worker is alive while its last heartbeat is younger than `freq × expiry`. Default 2. */
  heartbeatExpiry?: number;
  /** The clock, in unix seconds (for tests). Default `Date.now() / 1000`. */
  now?: () => number;
}

/**
 * Event type → the state it puts a task in, as Celery's `TASK_EVENT_TO_STATE`
 * (a sent task is PENDING).
 *
 * @example
 * ```ts
 * TASK_EVENT_STATE["task-started"]; // "STARTED"
 * ```
 */
export const TASK_EVENT_STATE: Readonly<Record<string, EventTaskState>> = {
  "task-sent": "PENDING",
  "task-received": "RECEIVED",
  "task-started": "STARTED",
  "task-succeeded": "SUCCESS",
  "task-failed": "FAILURE",
  "task-retried": "RETRY",
  "task-revoked": "REVOKED",
  "task-rejected": "REJECTED",
};

const READY = new Set<EventTaskState>(["SUCCESS", "FAILURE", "REVOKED"]);
const STEP_OF: Record<string, string> = {
  "task-sent": "sent",
  "task-received": "received",
  "task-started": "started",
  "task-succeeded": "succeeded",
  "task-failed": "failed",
  "task-retried": "retried",
  "task-revoked": "revoked",
  "task-rejected": "rejected",
};

/**
 * Workers and tasks, kept up to date by events.
 *
 * @example Tracking a cluster
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const signal = AbortSignal.timeout(60_000);
 * const state = new EventState();
 * for await (const e of app.events.receive({ signal })) {
 *   state.event(e);
 *   console.log(state.aliveWorkers().length, "workers,", state.countByState().STARTED ?? 0, "running");
 * }
 * ```
 */
export class EventState {
  /** Workers by node name. */
  readonly workers: Map<string, WorkerView> = new Map();
  /** Tasks by id, least recently updated first. */
  readonly tasks: Map<string, TaskView> = new Map();
  /** Events applied. */
  eventCount = 0;
  readonly #maxTasks: number;
  readonly #maxWorkers: number;
  readonly #oldestTask = new OldestKeys(this.tasks);
  readonly #oldestWorker = new OldestKeys(this.workers);
  readonly #expiry: number;
  readonly #now: () => number;

  /**
   * An empty state.
   *
   * @param options bounds and clock
   * @throws {RangeError} when a bound is below 1
   */
  constructor(options: EventStateOptions = {}) {
    this.#maxTasks = options.maxTasks ?? 10_000;
    this.#maxWorkers = options.maxWorkers ?? 1_000;
    this.#expiry = options.heartbeatExpiry ?? 2;
    this.#now = options.now ?? (() => Date.now() / 1000);
    if (!(this.#maxTasks >= 1) || !(this.#maxWorkers >= 1)) {
      throw new RangeError("maxTasks and maxWorkers must be >= 1");
    }
  }

  /**
   * Apply one event. Unknown event types only refresh their sender.
   *
   * @param e the event
   */
  event(e: CeleryEvent): void {
    this.eventCount++;
    if (e.type.startsWith("worker-")) return this.#worker(e as WorkerEvent);
    const state = TASK_EVENT_STATE[e.type];
    if (!state) return;
    const uuid = (e as { uuid?: unknown }).uuid;
    if (typeof uuid !== "string") return;
    const ts = this.#local(e);
    let t = this.tasks.get(uuid);
    if (t) this.tasks.delete(uuid);
    else {
      t = {
        uuid,
        name: null,
        state: "PENDING",
        hostname: null,
        args: null,
        kwargs: null,
        result: null,
        exception: null,
        traceback: null,
        runtime: null,
        retries: 0,
        eta: null,
        expires: null,
        rootId: null,
        parentId: null,
        timestamps: {},
        updated: ts,
      };
      while (this.tasks.size >= this.#maxTasks) this.#oldestTask.evict();
    }
    this.tasks.set(uuid, t);
    const f = e as unknown as Record<string, unknown>;
    if (typeof f.name === "string") t.name = f.name;
    if (typeof f.args === "string") t.args = f.args;
    if (typeof f.kwargs === "string") t.kwargs = f.kwargs;
    if (typeof f.result === "string") t.result = f.result;
    if (typeof f.exception === "string") t.exception = f.exception;
    if (typeof f.traceback === "string") t.traceback = f.traceback;
    if (typeof f.runtime === "number") t.runtime = f.runtime;
    if (typeof f.retries === "number") t.retries = f.retries;
    if (f.eta !== undefined) t.eta = (f.eta as string | null) ?? null;
    if (f.expires !== undefined) t.expires = (f.expires as string | null) ?? null;
    if (f.root_id !== undefined) t.rootId = (f.root_id as string | null) ?? null;
    if (f.parent_id !== undefined) t.parentId = (f.parent_id as string | null) ?? null;
    if (e.type !== "task-sent") {
      t.hostname = e.hostname;
      this.#touch(e.hostname, ts);
    }
    t.timestamps[STEP_OF[e.type]] = ts;
    t.updated = ts;
    // Events may arrive out of order (batches, several senders): a task
    // that reached a ready state keeps it against older steps.
    const late = READY.has(t.state) && !READY.has(state) &&
      (t.timestamps.succeeded ?? t.timestamps.failed ?? t.timestamps.revoked ?? 0) >= ts;
    if (!late) t.state = state;
  }

  /**
   * Whether a worker is alive: not offline, and heard from within
   * `freq × heartbeatExpiry` seconds.
   *
   * @param w the worker
   * @returns true when alive
   */
  isAlive(w: WorkerView): boolean {
    return !w.offline && this.#now() < w.lastSeen + w.freq * this.#expiry;
  }

  /**
   * The workers alive now.
   *
   * @returns them
   */
  aliveWorkers(): WorkerView[] {
    return [...this.workers.values()].filter((w) => this.isAlive(w));
  }

  /**
   * Tasks in a state, most recently updated first.
   *
   * @param state the state
   * @param limit at most this many
   * @returns them
   */
  tasksByState(state: EventTaskState, limit = Infinity): TaskView[] {
    const out: TaskView[] = [];
    const all = [...this.tasks.values()];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
      if (all[i].state === state) out.push(all[i]);
    }
    return out;
  }

  /**
   * The most recently updated tasks.
   *
   * @param limit how many
   * @returns them, newest first
   */
  latest(limit: number): TaskView[] {
    return [...this.tasks.values()].slice(-limit).reverse();
  }

  /**
   * How many remembered tasks are in each state.
   *
   * @returns state → count
   */
  countByState(): Partial<Record<EventTaskState, number>> {
    const out: Partial<Record<EventTaskState, number>> = {};
    for (const t of this.tasks.values()) out[t.state] = (out[t.state] ?? 0) + 1;
    return out;
  }

  /** The event's time on this machine's clock (Celery corrects by `utcoffset` the same way). */
  #local(e: CeleryEvent): number {
    return typeof e.timestamp === "number" ? e.timestamp : this.#now();
  }

  #touch(hostname: string, _ts: number): WorkerView {
    let w = this.workers.get(hostname);
    if (!w) {
      while (this.workers.size >= this.#maxWorkers) this.#oldestWorker.evict();
      w = {
        hostname,
        pid: null,
        freq: 2,
        lastHeartbeat: null,
        lastSeen: this.#now(),
        offline: false,
        active: 0,
        processed: 0,
        loadavg: [],
        software: null,
      };
      this.workers.set(hostname, w);
    }
    return w;
  }

  #worker(e: WorkerEvent): void {
    const w = this.#touch(e.hostname, e.timestamp);
    w.pid = e.pid ?? w.pid;
    if (typeof e.freq === "number" && e.freq > 0) w.freq = e.freq;
    if (typeof e.active === "number") w.active = e.active;
    if (typeof e.processed === "number") w.processed = e.processed;
    if (Array.isArray(e.loadavg)) w.loadavg = e.loadavg;
    if (typeof e.sw_ident === "string") {
      const text = (v: unknown) => typeof v === "string" ? v : "";
      w.software = { ident: e.sw_ident, version: text(e.sw_ver), system: text(e.sw_sys) };
    }
    w.lastSeen = this.#now();
    if (e.type === "worker-offline") w.offline = true;
    else {
      w.offline = false;
      w.lastHeartbeat = e.timestamp;
    }
  }
}
