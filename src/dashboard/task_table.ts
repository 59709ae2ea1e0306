/**
 * The dashboard's tasks: the last N tasks seen in events, each with its
 * state, fields and timeline; filters and paging for the Tasks page. Pure:
 * no I/O, no timers.
 *
 * @module
 */

import { TASK_EVENT_STATE } from "../client/event_state.ts";
import { OldestKeys } from "../client/oldest_keys.ts";
import type { DashboardEvent, EventCore } from "./feed.ts";
import type { TaskFacts, TaskQuery, TaskRecord, TaskState, TimelineStep } from "./task_record.ts";

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
/**
 * Timeline steps a task keeps in the table's columns (sent, received, started and outcome);
 * a longer timeline (retries) gets an array of its own.
 */
const SHORT_TIMELINE = 4;

/**
 * The states, by the code the table keeps: each task event type's, in
 * Celery's order, so `PENDING` (of `task-sent`) is 0, a new row's state.
 */
const STATES: readonly TaskState[] = Object.values(TASK_EVENT_STATE);
const STATE_CODE = new Map(STATES.map((state, code) => [state, code]));
/** Event type → the code of the state it puts a task in. */
const EVENT_CODE = new Map(
  Object.entries(TASK_EVENT_STATE).map(([type, state]) => [type, STATE_CODE.get(state)!]),
);

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

/** A timestamp column's value: NaN stands for none. */
function stamp(n: number): number | null {
  return Number.isNaN(n) ? null : n;
}

/**
 * The last N tasks, newest-updated last.
 *
 * The tasks are kept in columns, one row (slot) per task, rather than one
 * object per task: an event writes numbers and strings into arrays the table
 * already holds and allocates nothing, and the garbage collector has no
 * task objects to trace, promote and sweep. The {@link TaskRecord} that
 * {@link TaskTable.get} and {@link TaskTable.query} return is built when
 * asked: a copy, which later events do not change.
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
  /** Task id → its slot, in eviction order (ascending `#seq`). */
  readonly #slots = new Map<string, number>();
  /**
   * The eviction order, read through one iterator kept across evictions: see OldestKeys
   * (deleting the first entry over and over through fresh iterators grows quadratic).
   */
  #order: Iterator<number> | null = null;
  /** Parent id → child ids, kept apart so a parent seen after its children finds them. */
  readonly #children = new Map<string, string[]>();
  /** Root id → ids of the other tasks of its workflow (chord headers have no parent). */
  readonly #members = new Map<string, string[]>();
  readonly #oldestParent = new OldestKeys(this.#children);
  readonly #oldestRoot = new OldestKeys(this.#members);
  readonly #max: number;
  /** Node and task names seen, each kept once (see #intern). */
  readonly #names = new Map<string, string>();
  /** The `#seq` of the latest task inserted or moved to the newest end. */
  #lastSeq = 0;
  // The columns, indexed by slot. Numbers are NaN where the record has null.
  readonly #uuid: string[] = [];
  readonly #seq: number[] = [];
  readonly #state: number[] = [];
  readonly #name: (string | null)[] = [];
  readonly #worker: (string | null)[] = [];
  readonly #args: (string | null)[] = [];
  readonly #kwargs: (string | null)[] = [];
  readonly #result: (string | null)[] = [];
  readonly #exception: (string | null)[] = [];
  readonly #traceback: (string | null)[] = [];
  readonly #retries: number[] = [];
  readonly #runtime: number[] = [];
  readonly #eta: (string | null)[] = [];
  readonly #expires: (string | null)[] = [];
  readonly #queue: (string | null)[] = [];
  readonly #parentId: (string | null)[] = [];
  readonly #rootId: (string | null)[] = [];
  readonly #firstSeen: number[] = [];
  readonly #lastSeen: number[] = [];
  readonly #received: number[] = [];
  readonly #started: number[] = [];
  /** Steps in the slot's short timeline; SHORT_TIMELINE + 1 once it has a long one. */
  readonly #steps: number[] = [];
  // The short timelines: SHORT_TIMELINE entries a slot, in timestamp order.
  readonly #stepState: number[] = [];
  readonly #stepTime: number[] = [];
  readonly #stepHost: string[] = [];
  /** Slot → its timeline, for the tasks with more than SHORT_TIMELINE steps. */
  readonly #long = new Map<number, TimelineStep[]>();

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
    return this.#slots.size;
  }

  /**
   * Apply a task event.
   *
   * @param event the event
   * @param facts when given, filled with what is known of the task after the event
   * @returns whether it was a task event (one with a task id), now applied
   */
  apply(event: EventCore | DashboardEvent, facts?: TaskFacts): boolean {
    const e = event as DashboardEvent;
    const code = EVENT_CODE.get(e.type);
    if (code === undefined || typeof e.uuid !== "string") return false;
    const ts = typeof e.timestamp === "number" ? e.timestamp : Date.now() / 1000;
    let slot = this.#slots.get(e.uuid);
    if (slot === undefined) slot = this.#insert(e.uuid, ts);
    else if (this.#lastSeq - this.#seq[slot] >= this.#max >> 1) {
      // In the older half: move it to the newest end. A task in the newer half stays where
      // it is (one lookup per event instead of a delete and an insert): it is still newer
      // than at least half of the table.
      const id = this.#uuid[slot];
      this.#slots.delete(id);
      this.#seq[slot] = ++this.#lastSeq;
      this.#slots.set(id, slot);
    }
    this.#merge(slot, e, code, ts);
    if (facts) {
      facts.name = this.#name[slot];
      facts.queue = this.#queue[slot];
      facts.eta = this.#eta[slot];
      facts.received = stamp(this.#received[slot]);
      facts.started = stamp(this.#started[slot]);
    }
    return true;
  }

  /** A row for a new task: a new slot while the table is not full, else the oldest task's. */
  #insert(uuid: string, ts: number): number {
    const slot = this.#slots.size < this.#max ? this.#slots.size : this.#evict();
    // A new slot is the columns' length: storing there appends.
    this.#uuid[slot] = uuid;
    this.#seq[slot] = ++this.#lastSeq;
    this.#state[slot] = 0;
    this.#name[slot] = null;
    this.#worker[slot] = null;
    this.#args[slot] = null;
    this.#kwargs[slot] = null;
    this.#result[slot] = null;
    this.#exception[slot] = null;
    this.#traceback[slot] = null;
    this.#retries[slot] = 0;
    this.#runtime[slot] = NaN;
    this.#eta[slot] = null;
    this.#expires[slot] = null;
    this.#queue[slot] = null;
    this.#parentId[slot] = null;
    this.#rootId[slot] = null;
    this.#firstSeen[slot] = ts;
    this.#lastSeen[slot] = ts;
    this.#received[slot] = NaN;
    this.#started[slot] = NaN;
    this.#steps[slot] = 0;
    const base = slot * SHORT_TIMELINE;
    for (let i = base; i < base + SHORT_TIMELINE; i++) {
      this.#stepState[i] = 0;
      this.#stepTime[i] = 0;
      this.#stepHost[i] = "";
    }
    this.#slots.set(uuid, slot);
    return slot;
  }

  /** Forget the least recently updated task; returns its slot. */
  #evict(): number {
    let next = this.#order?.next();
    if (!next || next.done) {
      this.#order = this.#slots.values();
      next = this.#order.next();
    }
    const slot = next.value as number;
    this.#slots.delete(this.#uuid[slot]);
    if (this.#steps[slot] > SHORT_TIMELINE) this.#long.delete(slot);
    return slot;
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

  #merge(slot: number, e: DashboardEvent, code: number, ts: number): void {
    const name = e.name;
    if (typeof name === "string" && name !== this.#name[slot]) {
      this.#name[slot] = this.#intern(name);
    }
    if (typeof e.args === "string") this.#args[slot] = e.args;
    if (typeof e.kwargs === "string") this.#kwargs[slot] = e.kwargs;
    if (typeof e.eta === "string") this.#eta[slot] = e.eta;
    if (typeof e.expires === "string") this.#expires[slot] = e.expires;
    if (typeof e.queue === "string") this.#queue[slot] = e.queue;
    const uuid = this.#uuid[slot];
    const root = e.root_id;
    if (typeof root === "string" && this.#rootId[slot] === null) {
      if (root === uuid) this.#rootId[slot] = uuid;
      else {
        this.#rootId[slot] = root;
        this.#index(this.#members, this.#oldestRoot, root, uuid);
      }
    }
    if (typeof e.retries === "number") {
      this.#retries[slot] = Math.max(this.#retries[slot], e.retries);
    }
    const hostname = this.#intern(e.hostname);
    const type = e.type;
    if (type !== "task-sent") this.#worker[slot] = hostname;
    if (type === "task-received") this.#received[slot] = ts;
    else if (type === "task-started") this.#started[slot] = ts;
    else if (type === "task-succeeded") {
      this.#result[slot] = str(e.result);
      if (typeof e.runtime === "number") this.#runtime[slot] = e.runtime;
    } else if (type === "task-failed" || type === "task-retried") {
      this.#exception[slot] = str(e.exception);
      this.#traceback[slot] = str(e.traceback);
    }
    const parent = e.parent_id;
    if (typeof parent === "string" && parent !== uuid && this.#parentId[slot] === null) {
      this.#parentId[slot] = parent;
      this.#index(this.#children, this.#oldestParent, parent, uuid);
    }
    this.#step(slot, code, ts, hostname);
    if (ts < this.#firstSeen[slot]) this.#firstSeen[slot] = ts;
    if (ts > this.#lastSeen[slot]) this.#lastSeen[slot] = ts;
  }

  /** Add a step to the slot's timeline, in timestamp order; the task's state is the last's. */
  #step(slot: number, code: number, ts: number, hostname: string): void {
    const n = this.#steps[slot];
    if (n < SHORT_TIMELINE) {
      const base = slot * SHORT_TIMELINE;
      let i = base + n;
      for (; i > base && this.#stepTime[i - 1] > ts; i--) {
        this.#stepState[i] = this.#stepState[i - 1];
        this.#stepTime[i] = this.#stepTime[i - 1];
        this.#stepHost[i] = this.#stepHost[i - 1];
      }
      this.#stepState[i] = code;
      this.#stepTime[i] = ts;
      this.#stepHost[i] = hostname;
      this.#steps[slot] = n + 1;
      this.#state[slot] = this.#stepState[base + n];
      return;
    }
    let timeline = this.#long.get(slot);
    if (!timeline) {
      timeline = this.#shortTimeline(slot);
      this.#long.set(slot, timeline);
      this.#steps[slot] = SHORT_TIMELINE + 1;
    }
    const step: TimelineStep = { state: STATES[code], timestamp: ts, hostname };
    let i = timeline.length;
    while (i > 0 && timeline[i - 1].timestamp > ts) i--;
    timeline.splice(i, 0, step);
    if (timeline.length > MAX_TIMELINE) timeline.shift();
    this.#state[slot] = STATE_CODE.get(timeline[timeline.length - 1].state)!;
  }

  #shortTimeline(slot: number): TimelineStep[] {
    const base = slot * SHORT_TIMELINE;
    const steps: TimelineStep[] = [];
    for (let i = base; i < base + Math.min(this.#steps[slot], SHORT_TIMELINE); i++) {
      steps.push({
        state: STATES[this.#stepState[i]],
        timestamp: this.#stepTime[i],
        hostname: this.#stepHost[i],
      });
    }
    return steps;
  }

  /** The task in `slot`, as a record of its own. */
  #record(slot: number): TaskRecord {
    return {
      uuid: this.#uuid[slot],
      name: this.#name[slot],
      state: STATES[this.#state[slot]],
      worker: this.#worker[slot],
      args: this.#args[slot],
      kwargs: this.#kwargs[slot],
      result: this.#result[slot],
      exception: this.#exception[slot],
      traceback: this.#traceback[slot],
      retries: this.#retries[slot],
      runtime: stamp(this.#runtime[slot]),
      eta: this.#eta[slot],
      expires: this.#expires[slot],
      queue: this.#queue[slot],
      parentId: this.#parentId[slot],
      rootId: this.#rootId[slot],
      firstSeen: this.#firstSeen[slot],
      lastSeen: this.#lastSeen[slot],
      received: stamp(this.#received[slot]),
      started: stamp(this.#started[slot]),
      timeline: this.#steps[slot] > SHORT_TIMELINE
        ? this.#long.get(slot)!.map((step) => ({ ...step }))
        : this.#shortTimeline(slot),
    };
  }

  /**
   * A task by id: a copy, which later events do not change.
   *
   * @param id task id
   * @returns the record, or undefined
   */
  get(id: string): TaskRecord | undefined {
    const slot = this.#slots.get(id);
    return slot === undefined ? undefined : this.#record(slot);
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
   * Tasks matching the filters, newest first (by first event).
   *
   * @param q filters and paging
   * @returns the page and how many match
   */
  query(q: TaskQuery = {}): { total: number; tasks: TaskRecord[] } {
    const offset = Math.max(0, Math.floor(q.offset ?? 0));
    const limit = Math.min(500, Math.max(1, Math.floor(q.limit ?? 50)));
    const name = q.name?.toLowerCase();
    const text = q.text?.toLowerCase();
    const state = q.state === undefined ? undefined : STATE_CODE.get(q.state as TaskState) ?? -1;
    const has = (f: string | null) => f !== null && f.toLowerCase().includes(text!);
    const match: number[] = [];
    for (const s of this.#slots.values()) {
      if (
        (!q.state || this.#state[s] === state) &&
        (!q.worker || this.#worker[s] === q.worker) &&
        (!name || (this.#name[s] ?? "").toLowerCase().includes(name)) &&
        (!text || has(this.#uuid[s]) || has(this.#args[s]) || has(this.#kwargs[s]) ||
          has(this.#result[s]) || has(this.#exception[s]))
      ) match.push(s);
    }
    match.sort((a, b) => this.#firstSeen[b] - this.#firstSeen[a]);
    return {
      total: match.length,
      tasks: match.slice(offset, offset + limit).map((s) => this.#record(s)),
    };
  }

  /**
   * How many tasks are in each state.
   *
   * @returns counts by state
   */
  countByState(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const s of this.#slots.values()) {
      const state = STATES[this.#state[s]];
      counts[state] = (counts[state] ?? 0) + 1;
    }
    return counts;
  }

  /**
   * Task names seen, sorted.
   *
   * @returns the names
   */
  names(): string[] {
    const names = new Set<string>();
    for (const s of this.#slots.values()) {
      const name = this.#name[s];
      if (name) names.add(name);
    }
    return [...names].sort();
  }
}
