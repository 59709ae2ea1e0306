/**
 * The dashboard's tasks: the last N tasks seen in events, each with its
 * state, fields and timeline; filters and paging for the Tasks page. Pure:
 * no I/O, no timers.
 *
 * @module
 */

import { failedException } from "./failed_exception.ts";
import type { DashboardEvent, EventCore } from "./feed.ts";
import { TaskLinks } from "./task_links.ts";
import type { TaskFacts, TaskQuery, TaskRecord, TaskState, TimelineStep } from "./task_record.ts";
import { EVENT_CODE, MAX_PASSED, RUNNING_CODE, STATE_CODE, STATES } from "./state_codes.ts";
import { capTail, capText, MAX_KEY, MAX_SHORT_TEXT, MAX_TEXT, MAX_TRACEBACK } from "./text_caps.ts";

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
   * of the table keeps its place there), except that a running task (which sends no event
   * until it ends) is passed over for the next few, so that finished tasks go before it. Default 10,000 (Flower's `max_tasks`).
   */
  maxTasks?: number;
}

const MAX_TIMELINE = 100;
/** Node and task names kept once each (see TaskTable's #intern). */
const MAX_NAMES = 1000;
/**
 * Timeline steps a task keeps in the table's columns (sent, received, started and outcome);
 * a longer timeline (retries) gets an array of its own.
 */
const SHORT_TIMELINE = 4;

/** A timestamp column's value: NaN stands for none. */
function stamp(n: number): number | null {
  return Number.isNaN(n) ? null : n;
}

// A row's numbers, at `slot * NUM + N_...` in #num (NaN where the record has null).
const N_SEQ = 0;
const N_STATE = 1;
const N_RECEIVED = 2;
const N_STARTED = 3;
const N_FIRST = 4;
const N_LAST = 5;
/** Steps in the row's short timeline; SHORT_TIMELINE + 1 once it has a long one. */
const N_STEPS = 6;
const N_RETRIES = 7;
const N_RUNTIME = 8;
/** The short timeline's states and times: SHORT_TIMELINE each, in timestamp order. */
const N_STEP_STATE = 9;
const N_STEP_TIME = N_STEP_STATE + SHORT_TIMELINE;
/** The seq the task was inserted with (N_SEQ moves on with it; this stays): query's cursor. */
const N_BORN = N_STEP_TIME + SHORT_TIMELINE;
const NUM = N_BORN + 1;
// A row's strings, at `slot * STR + S_...` in #str.
const S_UUID = 0;
const S_NAME = 1;
const S_WORKER = 2;
const S_QUEUE = 3;
const S_ETA = 4;
const S_ROOT = 5;
const S_PARENT = 6;
const S_ARGS = 7;
const S_KWARGS = 8;
const S_RESULT = 9;
const S_EXCEPTION = 10;
const S_TRACEBACK = 11;
const S_EXPIRES = 12;
/** The short timeline's node names. */
const S_STEP_HOST = 13;
const STR = S_STEP_HOST + SHORT_TIMELINE;
/** Rows the number block has room for at first (it doubles as the table fills). */
const FIRST_ROWS = 1024;

/**
 * The last N tasks, newest-updated last.
 *
 * The tasks are kept in rows, one per task (a slot), rather than one object
 * per task: a row's numbers sit together in one typed array and its strings
 * together in one array, so an event writes into memory the table already
 * holds, allocates nothing, and touches a few cache lines of its task's row
 * (not one line in each of twenty columns); the garbage collector has no task
 * objects to trace, promote and sweep. The {@link TaskRecord} that
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
  /** Task id → its slot, in eviction order (ascending seq). */
  readonly #slots = new Map<string, number>();
  /**
   * The eviction order, read through one iterator kept across evictions: see OldestKeys
   * (deleting the first entry over and over through fresh iterators grows quadratic).
   */
  #order: Iterator<number> | null = null;
  /** Parent id → ids of its children held. */
  readonly #children: TaskLinks;
  /** Root id → ids of the other tasks of its workflow held (chord headers have no parent). */
  readonly #members: TaskLinks;
  readonly #max: number;
  /** Node and task names seen, each kept once (see #intern). */
  readonly #names = new Map<string, string>();
  /** The seq of the latest task inserted or moved to the newest end. */
  #lastSeq = 0;
  /** The rows' numbers, NUM a row; grown (doubled) as the table fills. */
  #num: Float64Array;
  /** The rows' strings, STR a row (a new row's are appended). */
  readonly #str: (string | null)[] = [];
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
    this.#children = new TaskLinks(max);
    this.#members = new TaskLinks(max);
    this.#num = new Float64Array(Math.min(max, FIRST_ROWS) * NUM);
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
    else if (this.#lastSeq - this.#num[slot * NUM + N_SEQ] >= this.#max >> 1) {
      // In the older half: move it to the newest end. A task in the newer half stays where
      // it is (one lookup per event instead of a delete and an insert): it is still newer
      // than at least half of the table.
      this.#renew(slot);
    }
    this.#merge(slot, e, code, ts);
    if (facts) {
      const n = slot * NUM, s = slot * STR;
      facts.name = this.#str[s + S_NAME];
      facts.queue = this.#str[s + S_QUEUE];
      facts.eta = this.#str[s + S_ETA];
      facts.received = stamp(this.#num[n + N_RECEIVED]);
      facts.started = stamp(this.#num[n + N_STARTED]);
    }
    return true;
  }

  /** A row for a new task: a new slot while the table is not full, else the oldest task's. */
  #insert(uuid: string, ts: number): number {
    const slot = this.#slots.size < this.#max ? this.#slots.size : this.#evict();
    const n = slot * NUM;
    if (n + NUM > this.#num.length) {
      const grown = new Float64Array(Math.min(this.#max, 2 * (this.#num.length / NUM)) * NUM);
      grown.set(this.#num);
      this.#num = grown;
    }
    const num = this.#num;
    num[n + N_SEQ] = num[n + N_BORN] = ++this.#lastSeq;
    num[n + N_STATE] = 0;
    num[n + N_RECEIVED] = NaN;
    num[n + N_STARTED] = NaN;
    num[n + N_FIRST] = ts;
    num[n + N_LAST] = ts;
    num[n + N_STEPS] = 0;
    num[n + N_RETRIES] = 0;
    num[n + N_RUNTIME] = NaN;
    for (let i = 0; i < SHORT_TIMELINE; i++) {
      num[n + N_STEP_STATE + i] = 0;
      num[n + N_STEP_TIME + i] = 0;
    }
    // A new slot's strings go at the array's end: storing there appends.
    const str = this.#str;
    const s = slot * STR;
    str[s + S_UUID] = uuid;
    for (let i = s + 1; i < s + S_STEP_HOST; i++) str[i] = null;
    for (let i = s + S_STEP_HOST; i < s + STR; i++) str[i] = "";
    this.#slots.set(uuid, slot);
    return slot;
  }

  /** Move the task in `slot` to the newest end of the eviction order. */
  #renew(slot: number): void {
    const id = this.#str[slot * STR + S_UUID]!;
    this.#slots.delete(id);
    this.#num[slot * NUM + N_SEQ] = ++this.#lastSeq;
    this.#slots.set(id, slot);
  }

  /** The slot of the least recently updated task. */
  #oldest(): number {
    let next = this.#order?.next();
    if (!next || next.done) {
      this.#order = this.#slots.values();
      next = this.#order.next();
    }
    return next.value as number;
  }

  /**
   * Forget the least recently updated task that is not running (of the MAX_PASSED + 1 oldest;
   * the oldest when they all run); returns its slot.
   */
  #evict(): number {
    const oldest = this.#oldest();
    let slot = oldest;
    for (let i = 0; i < MAX_PASSED && this.#num[slot * NUM + N_STATE] === RUNNING_CODE; i++) {
      this.#renew(slot);
      slot = this.#oldest();
    }
    if (this.#num[slot * NUM + N_STATE] === RUNNING_CODE) slot = oldest;
    const s = slot * STR, id = this.#str[s + S_UUID]!;
    this.#slots.delete(id);
    const parent = this.#str[s + S_PARENT], root = this.#str[s + S_ROOT];
    if (parent !== null) this.#children.remove(parent, id);
    if (root !== null && root !== id) this.#members.remove(root, id);
    if (this.#num[slot * NUM + N_STEPS] > SHORT_TIMELINE) this.#long.delete(slot);
    return slot;
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
    const str = this.#str, num = this.#num;
    const s = slot * STR, n = slot * NUM;
    const name = e.name;
    if (typeof name === "string" && name !== str[s + S_NAME]) {
      str[s + S_NAME] = this.#intern(name);
    }
    // Texts are cut when stored (text_caps.ts): a length check, a copy only past the cap
    if (typeof e.args === "string") str[s + S_ARGS] = capText(e.args, MAX_TEXT);
    if (typeof e.kwargs === "string") str[s + S_KWARGS] = capText(e.kwargs, MAX_TEXT);
    if (typeof e.eta === "string") str[s + S_ETA] = capText(e.eta, MAX_SHORT_TEXT);
    if (typeof e.expires === "string") str[s + S_EXPIRES] = capText(e.expires, MAX_SHORT_TEXT);
    // A queue name routes a retry: kept whole or not at all (a cut name is no queue)
    if (typeof e.queue === "string") str[s + S_QUEUE] = e.queue.length <= MAX_KEY ? e.queue : null;
    const uuid = str[s + S_UUID]!;
    const root = e.root_id;
    if (typeof root === "string" && str[s + S_ROOT] === null) {
      if (root === uuid) str[s + S_ROOT] = uuid;
      else {
        str[s + S_ROOT] = root;
        this.#members.add(root, uuid);
      }
    }
    if (typeof e.retries === "number") {
      num[n + N_RETRIES] = Math.max(num[n + N_RETRIES], e.retries);
    }
    const hostname = this.#intern(e.hostname);
    const type = e.type;
    if (type !== "task-sent") str[s + S_WORKER] = hostname;
    if (type === "task-received") num[n + N_RECEIVED] = ts;
    else if (type === "task-started") num[n + N_STARTED] = ts;
    else if (type === "task-succeeded") {
      str[s + S_RESULT] = typeof e.result === "string" ? capText(e.result, MAX_TEXT) : null;
      if (typeof e.runtime === "number") num[n + N_RUNTIME] = e.runtime;
    } else if (type === "task-failed" || type === "task-retried") {
      const exc = failedException(e.exception, e.traceback), tb = e.traceback;
      str[s + S_EXCEPTION] = exc === null ? null : capText(exc, MAX_TEXT);
      str[s + S_TRACEBACK] = typeof tb === "string" ? capTail(tb, MAX_TRACEBACK) : null;
    }
    const parent = e.parent_id;
    if (typeof parent === "string" && parent !== uuid && str[s + S_PARENT] === null) {
      str[s + S_PARENT] = parent;
      this.#children.add(parent, uuid);
    }
    this.#step(slot, code, ts, hostname);
    if (ts < num[n + N_FIRST]) num[n + N_FIRST] = ts;
    if (ts > num[n + N_LAST]) num[n + N_LAST] = ts;
  }

  /** Add a step to the slot's timeline, in timestamp order; the task's state is the last's. */
  #step(slot: number, code: number, ts: number, hostname: string): void {
    const num = this.#num, str = this.#str;
    const n = slot * NUM;
    const steps = num[n + N_STEPS];
    if (steps < SHORT_TIMELINE) {
      const st = n + N_STEP_STATE, tm = n + N_STEP_TIME, h = slot * STR + S_STEP_HOST;
      let i = steps;
      for (; i > 0 && num[tm + i - 1] > ts; i--) {
        num[st + i] = num[st + i - 1];
        num[tm + i] = num[tm + i - 1];
        str[h + i] = str[h + i - 1];
      }
      num[st + i] = code;
      num[tm + i] = ts;
      str[h + i] = hostname;
      num[n + N_STEPS] = steps + 1;
      num[n + N_STATE] = num[st + steps];
      return;
    }
    let timeline = this.#long.get(slot);
    if (!timeline) {
      timeline = this.#shortTimeline(slot);
      this.#long.set(slot, timeline);
      num[n + N_STEPS] = SHORT_TIMELINE + 1;
    }
    const step: TimelineStep = { state: STATES[code], timestamp: ts, hostname };
    let i = timeline.length;
    while (i > 0 && timeline[i - 1].timestamp > ts) i--;
    timeline.splice(i, 0, step);
    if (timeline.length > MAX_TIMELINE) timeline.shift();
    num[n + N_STATE] = STATE_CODE.get(timeline[timeline.length - 1].state)!;
  }

  #shortTimeline(slot: number): TimelineStep[] {
    const n = slot * NUM, h = slot * STR + S_STEP_HOST;
    const steps: TimelineStep[] = [];
    for (let i = 0; i < Math.min(this.#num[n + N_STEPS], SHORT_TIMELINE); i++) {
      steps.push({
        state: STATES[this.#num[n + N_STEP_STATE + i]],
        timestamp: this.#num[n + N_STEP_TIME + i],
        hostname: this.#str[h + i]!,
      });
    }
    return steps;
  }

  /** The task in `slot`, as a record of its own. */
  #record(slot: number): TaskRecord {
    const num = this.#num, str = this.#str;
    const n = slot * NUM, s = slot * STR;
    return {
      uuid: str[s + S_UUID]!,
      name: str[s + S_NAME],
      state: STATES[num[n + N_STATE]],
      worker: str[s + S_WORKER],
      args: str[s + S_ARGS],
      kwargs: str[s + S_KWARGS],
      result: str[s + S_RESULT],
      exception: str[s + S_EXCEPTION],
      traceback: str[s + S_TRACEBACK],
      retries: num[n + N_RETRIES],
      runtime: stamp(num[n + N_RUNTIME]),
      eta: str[s + S_ETA],
      expires: str[s + S_EXPIRES],
      queue: str[s + S_QUEUE],
      parentId: str[s + S_PARENT],
      rootId: str[s + S_ROOT],
      firstSeen: num[n + N_FIRST],
      lastSeen: num[n + N_LAST],
      received: stamp(num[n + N_RECEIVED]),
      started: stamp(num[n + N_STARTED]),
      timeline: num[n + N_STEPS] > SHORT_TIMELINE
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
   * Ids of the tasks held whose parent is `id`, in the order seen (at most 1,000).
   *
   * @param id task id
   * @returns the child ids
   */
  children(id: string): readonly string[] {
    return this.#children.get(id);
  }

  /**
   * Ids of the other tasks held whose workflow root is `id`, in the order seen
   * (at most 1,000).
   *
   * @param id the root task's id
   * @returns the ids
   */
  members(id: string): readonly string[] {
    return this.#members.get(id);
  }

  /**
   * Tasks matching the filters, newest first (by first event). With `cursor` (an
   * earlier answer's), only the tasks held then: the pages stay put while tasks arrive,
   * and `newer` counts the matching tasks that arrived since.
   *
   * @param q filters and paging
   * @returns the page, how many match, the cursor of this answer and how many are newer
   */
  query(q: TaskQuery = {}): { total: number; tasks: TaskRecord[]; cursor: number; newer: number } {
    const cursor = q.cursor ?? this.#lastSeq;
    const offset = Math.max(0, Math.floor(q.offset ?? 0));
    const limit = Math.min(500, Math.max(1, Math.floor(q.limit ?? 50)));
    const name = q.name?.toLowerCase();
    const text = q.text?.toLowerCase();
    const state = q.state === undefined ? undefined : STATE_CODE.get(q.state as TaskState) ?? -1;
    const has = (f: string | null) => f !== null && f.toLowerCase().includes(text!);
    const num = this.#num, str = this.#str;
    const match: number[] = [];
    let newer = 0;
    for (const slot of this.#slots.values()) {
      const s = slot * STR;
      if (
        (!q.state || num[slot * NUM + N_STATE] === state) &&
        (!q.worker || str[s + S_WORKER] === q.worker) &&
        (!name || (str[s + S_NAME] ?? "").toLowerCase().includes(name)) &&
        (!text || has(str[s + S_UUID]) || has(str[s + S_ARGS]) || has(str[s + S_KWARGS]) ||
          has(str[s + S_RESULT]) || has(str[s + S_EXCEPTION]))
      ) {
        if (num[slot * NUM + N_BORN] > cursor) newer++;
        else match.push(slot);
      }
    }
    // Ties (a busy worker stamps many tasks with one millisecond): the later inserted first
    match.sort((a, b) =>
      num[b * NUM + N_FIRST] - num[a * NUM + N_FIRST] ||
      num[b * NUM + N_BORN] - num[a * NUM + N_BORN]
    );
    return {
      total: match.length,
      tasks: match.slice(offset, offset + limit).map((s) => this.#record(s)),
      cursor,
      newer,
    };
  }

  /**
   * How many tasks are in each state.
   *
   * @returns counts by state
   */
  countByState(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const slot of this.#slots.values()) {
      const state = STATES[this.#num[slot * NUM + N_STATE]];
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
    for (const slot of this.#slots.values()) {
      const name = this.#str[slot * STR + S_NAME];
      if (name) names.add(name);
    }
    return [...names].sort();
  }
}
