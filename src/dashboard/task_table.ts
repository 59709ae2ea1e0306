/**
 * The dashboard's tasks: the last N tasks seen in events, each with its
 * state, fields and timeline; filters and paging for the Tasks page. Pure:
 * no I/O, no timers.
 *
 * @module
 */

import { type EventTaskState, TASK_EVENT_STATE } from "../client/event_state.ts";
import { OldestKeys } from "../client/oldest_keys.ts";
import type { DashboardEvent, EventCore } from "./feed.ts";

/** Task states as Celery names them. */
export type TaskState = EventTaskState;

/**
 * Event type → the state it puts a task in (Celery's `TASK_EVENT_TO_STATE`;
 * the client's `TASK_EVENT_STATE`).
 *
 * @example
 * ```ts ignore
 * EVENT_STATE["task-sent"]; // "PENDING"
 * ```
 */
export const EVENT_STATE: Readonly<Record<string, TaskState>> = TASK_EVENT_STATE;

/** States after which a task does nothing more. */
export const READY_STATES: ReadonlySet<TaskState> = new Set([
  "SUCCESS",
  "FAILURE",
  "REVOKED",
  "REJECTED",
]);

/**
 * One step of a task's timeline.
 *
 * @example
 * ```ts
 * import type { TimelineStep } from "@celeriac/celeriac/dashboard";
 * const step: TimelineStep = { state: "STARTED", timestamp: 1795490261.98, hostname: "celery@h" };
 * ```
 */
export interface TimelineStep {
  /** The state the event put the task in. */
  state: TaskState;
  /** When, Unix seconds. */
  timestamp: number;
  /** The node that sent the event. */
  hostname: string;
}

/**
 * What the dashboard knows of a task.
 *
 * @example
 * ```ts
 * import { TaskTable } from "@celeriac/celeriac/dashboard";
 * const table = new TaskTable({ maxTasks: 100 });
 * table.apply({ type: "task-received", hostname: "w@h", timestamp: 1, uuid: "t1", name: "add" });
 * table.get("t1")?.state; // "RECEIVED"
 * ```
 */
export interface TaskRecord {
  /** Task id. */
  uuid: string;
  /** Task name, once an event carried it. */
  name: string | null;
  /** Current state (that of the latest event by timestamp). */
  state: TaskState;
  /** The worker that received it (or the client that sent it). */
  worker: string | null;
  /** Python repr of the positional arguments. */
  args: string | null;
  /** Python repr of the keyword arguments. */
  kwargs: string | null;
  /** Repr of the return value. */
  result: string | null;
  /** Repr of the exception. */
  exception: string | null;
  /** Traceback text. */
  traceback: string | null;
  /** Retries so far. */
  retries: number;
  /** Seconds it ran. */
  runtime: number | null;
  /** ETA, ISO 8601. */
  eta: string | null;
  /** Expiry, ISO 8601. */
  expires: string | null;
  /** Queue (from `task-sent`). */
  queue: string | null;
  /** Parent task id. */
  parentId: string | null;
  /** Workflow root id. */
  rootId: string | null;
  /** Time of the first event (Unix seconds). */
  firstSeen: number;
  /** Time of the latest event (Unix seconds). */
  lastSeen: number;
  /** Received timestamp, for prefetch time. */
  received: number | null;
  /** Started timestamp. */
  started: number | null;
  /** Every state change in timestamp order (at most 100). */
  timeline: TimelineStep[];
}

/**
 * Filters of {@link TaskTable.query}.
 *
 * @example
 * ```ts
 * import type { TaskQuery } from "@celeriac/celeriac/dashboard";
 * const q: TaskQuery = { state: "FAILURE", name: "tasks.add", offset: 0, limit: 50 };
 * ```
 */
export interface TaskQuery {
  /** Only tasks in this state. */
  state?: string;
  /** Only tasks whose name contains this (case-insensitive). */
  name?: string;
  /** Only tasks of this worker. */
  worker?: string;
  /** Only tasks whose id, args, kwargs, result or exception contain this text. */
  text?: string;
  /** Rows to skip. Default 0. */
  offset?: number;
  /** Rows to return. Default 50, at most 500. */
  limit?: number;
}

/**
 * Options of {@link TaskTable}.
 *
 * @example
 * ```ts
 * import { TaskTable } from "@celeriac/celeriac/dashboard";
 * new TaskTable({ maxTasks: 10_000 });
 * ```
 */
export interface TaskTableOptions {
  /**
   * Tasks kept; the least recently updated go first (a task updated while in the newer half
   * of the table keeps its place there). Default 10,000 (Flower's `max_tasks`).
   */
  maxTasks?: number;
}

const MAX_CHILDREN = 1000;
const MAX_TIMELINE = 100;
/** Node and task names kept once each (see TaskTable's #intern). */
const MAX_NAMES = 1000;

/** A task and its place in the table's eviction order. */
interface Slot {
  task: TaskRecord;
  seq: number;
}

function newRecord(uuid: string, state: TaskState, ts: number): TaskRecord {
  return {
    uuid,
    name: null,
    state,
    worker: null,
    args: null,
    kwargs: null,
    result: null,
    exception: null,
    traceback: null,
    retries: 0,
    runtime: null,
    eta: null,
    expires: null,
    queue: null,
    parentId: null,
    rootId: null,
    firstSeen: ts,
    lastSeen: ts,
    received: null,
    started: null,
    timeline: [],
  };
}

/**
 * `timeline` with `step` last. Up to 4 steps (a task's sent, received, started and outcome)
 * a new array of the exact size: push() would reserve room for 16 more steps, kept as long
 * as the task is.
 */
function appended(timeline: TimelineStep[], step: TimelineStep): TimelineStep[] {
  switch (timeline.length) {
    case 0:
      return [step];
    case 1:
      return [timeline[0], step];
    case 2:
      return [timeline[0], timeline[1], step];
    case 3:
      return [timeline[0], timeline[1], timeline[2], step];
    default:
      timeline.push(step);
      return timeline;
  }
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

/**
 * The last N tasks, newest-updated last.
 *
 * @example
 * ```ts
 * import { TaskTable } from "@celeriac/celeriac/dashboard";
 * const table = new TaskTable();
 * table.apply({ type: "task-failed", hostname: "w@h", timestamp: 2, uuid: "t1", exception: "E()" });
 * table.query({ state: "FAILURE" }).total; // 1
 * ```
 */
export class TaskTable {
  /** Task id → the task and its place in the eviction order (ascending `seq`). */
  readonly #tasks = new Map<string, Slot>();
  /** Parent id → child ids, kept apart so a parent seen after its children finds them. */
  readonly #children = new Map<string, string[]>();
  /** Root id → ids of the other tasks of its workflow (chord headers have no parent). */
  readonly #members = new Map<string, string[]>();
  readonly #oldest = new OldestKeys(this.#tasks);
  readonly #oldestParent = new OldestKeys(this.#children);
  readonly #oldestRoot = new OldestKeys(this.#members);
  readonly #max: number;
  /** Node and task names seen, each kept once (see #intern). */
  readonly #names = new Map<string, string>();
  /** The `seq` of the latest task inserted or moved to the newest end. */
  #seq = 0;

  /**
   * An empty table.
   *
   * @param options `maxTasks`
   * @throws {RangeError} when `maxTasks` is not a whole number >= 1
   */
  constructor(options: TaskTableOptions = {}) {
    const max = options.maxTasks ?? 10_000;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxTasks must be a whole number >= 1, got ${max}`);
    }
    this.#max = max;
  }

  /** Tasks held now. */
  get size(): number {
    return this.#tasks.size;
  }

  /**
   * Apply a task event; returns the updated record (null for non-task events).
   *
   * @param e the event
   * @returns the task, or null
   */
  apply(event: EventCore | DashboardEvent): TaskRecord | null {
    const e = event as DashboardEvent;
    const state = TASK_EVENT_STATE[e.type];
    if (state === undefined || typeof e.uuid !== "string") return null;
    const ts = typeof e.timestamp === "number" ? e.timestamp : Date.now() / 1000;
    let slot = this.#tasks.get(e.uuid);
    if (!slot) {
      slot = { task: newRecord(e.uuid, state, ts), seq: ++this.#seq };
      this.#tasks.set(e.uuid, slot);
      if (this.#tasks.size > this.#max) this.#oldest.evict();
    } else if (this.#seq - slot.seq >= this.#max >> 1) {
      // In the older half: move it to the newest end. A task in the newer half stays where
      // it is (one lookup per event instead of a delete and an insert): it is still newer
      // than at least half of the table.
      this.#tasks.delete(e.uuid);
      slot.seq = ++this.#seq;
      this.#tasks.set(e.uuid, slot);
    }
    this.#merge(slot.task, e, state, ts);
    return slot.task;
  }

  /** Add `id` under `key`, bounded: at most maxTasks keys, 1,000 ids a key. */
  #index(map: Map<string, string[]>, oldest: OldestKeys<string>, key: string, id: string): void {
    let ids = map.get(key);
    if (!ids) {
      ids = [];
      map.set(key, ids);
      if (map.size > this.#max) oldest.evict();
    }
    if (ids.length < MAX_CHILDREN) ids.push(id);
  }

  /**
   * The table's copy of a node name or task name equal to `s`: each event carries its own
   * copy (a fresh string from the JSON), and a task keeps several (its worker, each step of
   * its timeline), so keeping one copy keeps the table's memory, and the garbage collector's
   * work, down. Bounded: forgotten past 1,000 names.
   */
  #intern(s: string): string {
    const known = this.#names.get(s);
    if (known !== undefined) return known;
    if (this.#names.size >= MAX_NAMES) this.#names.clear();
    this.#names.set(s, s);
    return s;
  }

  #merge(t: TaskRecord, e: DashboardEvent, state: TaskState, ts: number): void {
    const name = str(e.name);
    if (name !== null && name !== t.name) t.name = this.#intern(name);
    t.args = str(e.args) ?? t.args;
    t.kwargs = str(e.kwargs) ?? t.kwargs;
    t.eta = str(e.eta) ?? t.eta;
    t.expires = str(e.expires) ?? t.expires;
    t.queue = str(e.queue) ?? t.queue;
    const root = str(e.root_id);
    if (root !== null && t.rootId === null) {
      t.rootId = root === t.uuid ? t.uuid : root;
      if (root !== t.uuid) this.#index(this.#members, this.#oldestRoot, root, t.uuid);
    }
    if (typeof e.retries === "number") t.retries = Math.max(t.retries, e.retries);
    const hostname = this.#intern(e.hostname);
    if (e.type !== "task-sent") t.worker = hostname;
    if (e.type === "task-received") t.received = ts;
    if (e.type === "task-started") t.started = ts;
    if (e.type === "task-succeeded") {
      t.result = str(e.result);
      if (typeof e.runtime === "number") t.runtime = e.runtime;
    }
    if (e.type === "task-failed" || e.type === "task-retried") {
      t.exception = str(e.exception);
      t.traceback = str(e.traceback);
    }
    const parent = str(e.parent_id);
    if (parent !== null && parent !== t.uuid && t.parentId === null) {
      t.parentId = parent;
      this.#index(this.#children, this.#oldestParent, parent, t.uuid);
    }
    const step: TimelineStep = { state, timestamp: ts, hostname };
    let timeline = t.timeline;
    let i = timeline.length;
    while (i > 0 && timeline[i - 1].timestamp > ts) i--;
    if (i < timeline.length) timeline.splice(i, 0, step);
    else timeline = t.timeline = appended(timeline, step); // in order: the usual case
    if (timeline.length > MAX_TIMELINE) timeline.shift();
    t.state = timeline[timeline.length - 1].state;
    t.firstSeen = Math.min(t.firstSeen, ts);
    t.lastSeen = Math.max(t.lastSeen, ts);
  }

  /**
   * A task by id.
   *
   * @param id task id
   * @returns the record, or undefined
   */
  get(id: string): TaskRecord | undefined {
    return this.#tasks.get(id)?.task;
  }

  /**
   * Ids of the tasks whose parent is `id`, in the order seen (at most 1,000).
   *
   * @param id task id
   * @returns the child ids
   */
  children(id: string): readonly string[] {
    return this.#children.get(id) ?? [];
  }

  /**
   * Ids of the other tasks whose workflow root is `id`, in the order seen
   * (at most 1,000).
   *
   * @param id the root task's id
   * @returns the ids
   */
  members(id: string): readonly string[] {
    return this.#members.get(id) ?? [];
  }

  /**
   * Tasks matching the filters, newest first (by latest event).
   *
   * @param q filters and paging
   * @returns the page and how many match
   */
  query(q: TaskQuery = {}): { total: number; tasks: TaskRecord[] } {
    const offset = Math.max(0, Math.floor(q.offset ?? 0));
    const limit = Math.min(500, Math.max(1, Math.floor(q.limit ?? 50)));
    const name = q.name?.toLowerCase();
    const text = q.text?.toLowerCase();
    const all = Array.from(this.#tasks.values(), (s) => s.task);
    all.sort((a, b) => b.firstSeen - a.firstSeen);
    const match = all.filter((t) =>
      (!q.state || t.state === q.state) &&
      (!q.worker || t.worker === q.worker) &&
      (!name || (t.name ?? "").toLowerCase().includes(name)) &&
      (!text || [t.uuid, t.args, t.kwargs, t.result, t.exception]
        .some((f) => f !== null && f.toLowerCase().includes(text)))
    );
    return { total: match.length, tasks: match.slice(offset, offset + limit) };
  }

  /**
   * How many tasks are in each state.
   *
   * @returns counts by state
   */
  countByState(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const { task } of this.#tasks.values()) counts[task.state] = (counts[task.state] ?? 0) + 1;
    return counts;
  }

  /**
   * Task names seen, sorted.
   *
   * @returns the names
   */
  names(): string[] {
    const names = new Set<string>();
    for (const { task } of this.#tasks.values()) if (task.name) names.add(task.name);
    return [...names].sort();
  }
}
