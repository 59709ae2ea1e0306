/**
 * When tasks started in a Web Worker, in memory it shares with the main
 * thread: the Web Worker writes a task's start there before calling its
 * handler, and the main thread reads it when it checks time limits, and when
 * it terminates the Web Worker (a task that never started there is put
 * back, one that did is not), with no message per task. The same memory
 * holds the halt the main thread sets before it terminates the Web Worker.
 *
 * A start is written on the Web Worker's monotonic clock (its
 * `performance.now()`) and read on the main thread's through an offset
 * learnt from the Web Worker's `ready` message, and narrowed by each batch
 * of outcomes it posts (a `ready` the main thread handled late, busy
 * draining, would otherwise read every start late for the Web Worker's
 * life): a Web Worker's
 * `performance.timeOrigin` is the wall clock at its spawn, so it is off by
 * any step of the wall clock since the main thread started (NTP's first
 * correction, a VM resumed), and would move every limit by that step.
 *
 * The main thread also marks there a task revoked after it was posted
 * ({@link StartTable.revoke}), which the Web Worker reads before it starts
 * the task ({@link StartTable.revoked}): a message would wait behind the
 * tasks that hold the Web Worker's thread.
 *
 * @module
 */

/** Slots of a table: a task's is its sequence number modulo this. */
const SLOTS = 1024;
/** Revoked marks kept beside the slots, for tasks whose slot's mark is another's still held. */
const SPILL = 64;
/**
 * Finish marks kept per slot for tasks that do not hold their slot (they
 * posted their start): consecutive such tasks of a slot (1024 dispatches
 * apart) take turns through these.
 */
const ASIDE = 4;
/**
 * Finish marks kept beside those cells, for a task whose cell holds the
 * finish of another (4096 dispatches apart) whose outcome the main thread
 * has not read yet: an async task held long while thousands of others are
 * dispatched, and two of the same slot finishing in the same turn. A mark
 * is lost only when more than this many collide at once, which takes one
 * Web Worker holding over 1024 finished tasks whose outcomes are unread:
 * it holds at most its slots (`--prefetch`, at most 64 by default) unless
 * the main thread stalls that long with `--prefetch` over 1024.
 */
const FINISH_SPILL = 1024;
/**
 * Starts kept beside the slots for tasks that do not hold their slot (they
 * also post their start), until their outcome is read: a terminate reads
 * them before that post is handled. A start is only posted when more than
 * this many such tasks are unread at once, which takes one Web Worker
 * holding over 1024 tasks (it holds at most its slots, `--prefetch`).
 */
const START_SPILL = 1024;

/** The halt cell: open (tasks start), halted, or held by the Web Worker while it writes a start. */
const OPEN = 0;
const HALTED = 1;
const STARTING = 2;
/**
 * How long a halt waits for the Web Worker to finish writing a start (a few
 * memory writes: longer only if its thread is descheduled meanwhile) before
 * it halts anyway: that task is then read started, and the Web Worker does
 * not run it.
 */
const HALT_WAIT_MS = 100;

/**
 * The shared arrays of a {@link StartTable}, as posted to its Web Worker.
 *
 * @example
 * ```ts
 * import { StartTable, type StartTableMemory } from "./start_table.ts";
 * const memory: StartTableMemory = new StartTable().memory;
 * ```
 */
export interface StartTableMemory {
  /** The task of each slot: its sequence number, truncated to 32 bits. */
  seqs: Int32Array;
  /** When it started, by the Web Worker's `performance.now()`; 0 for never. */
  at: Float64Array;
  /**
   * One cell: 1 once the main thread terminates the Web Worker. Its thread
   * may run on (Deno does not stop synchronous code) and then runs what was
   * queued to it: it starts no task once this is set. 2 while the Web Worker
   * writes a start ({@link StartTable.begin}): the halt waits for it.
   */
  halted: Int32Array;
  /**
   * The task holding each slot whose handler has returned (or settled): its
   * sequence number, 32 bits.
   */
  finished: Int32Array;
  /**
   * Tasks that did not hold their slot (they posted their start) whose
   * handler has returned and whose outcome the main thread has not read:
   * sequence numbers, 32 bits, four cells per slot (cell
   * `slot * 4 + (seq / 1024) % 4`), 0 for none.
   */
  finishedAside: Int32Array;
  /**
   * Such tasks whose cell held another's finish, not read yet: sequence
   * numbers, 32 bits, 0 for none; its last cell counts the entries ever used.
   */
  finishedSpill: Int32Array;
  /**
   * Tasks that did not hold their slot and started, whose outcome the main
   * thread has not read: sequence numbers, 32 bits, 0 for none; its last
   * cell counts the entries ever used.
   */
  startedSpill: Int32Array;
  /** The task of each slot the main thread revoked: its sequence number, truncated to 32 bits. */
  revoked: Int32Array;
  /**
   * The task of each slot whose outcome the main thread has read: its
   * sequence number, 32 bits. Until then its slot is not taken over.
   */
  released: Int32Array;
  /**
   * Revoked tasks whose slot's mark was another revoked task still held
   * (their sequence numbers a multiple of 1024 apart), truncated to 32
   * bits; its first cell after them counts the entries in use.
   */
  spilled: Int32Array;
}

/**
 * One Web Worker's start table. A slot is reused only once the main thread
 * has read the outcome of the task that held it ({@link StartTable.release}):
 * until then the main thread may still ask whether that task started or
 * finished (a terminate of another task, a time limit), and a task of the
 * same slot reports its start with a message instead
 * ({@link StartTable.record} returns false).
 *
 * @example
 * ```ts
 * import { StartTable } from "./start_table.ts";
 * const main = new StartTable();
 * const worker = new StartTable(main.memory); // in the Web Worker, from its init message
 * main.sync(performance.now()); // on the Web Worker's `ready`, with its clock as it posted it
 * worker.record(7); // true: written, no message needed
 * main.startedAt(7) !== null; // true: the main thread sees it started
 * main.startedAt(8); // null: not started
 * worker.finish(7); // its handler returned
 * main.hasFinished(7); // true: its limits no longer apply
 * main.release(7); // its outcome was read: its slot may be taken over
 * main.halt(); // before terminating the Web Worker
 * worker.halted; // true: it starts no more tasks
 * worker.begin(10); // "halted": nothing written, task 10 is not to run
 * main.revoke(9, () => false); // true: marked
 * worker.revoked(9); // true: the Web Worker does not start it
 * ```
 */
export class StartTable {
  /** The shared arrays, for the Web Worker's init message. */
  readonly memory: StartTableMemory;
  /** The Web Worker's own note of the full sequence number of each slot's task. */
  readonly #held: number[] = [];
  /**
   * The main thread's `performance.now()` minus the Web Worker's, at most
   * (a message arrives after it is posted); null until {@link StartTable.sync}.
   */
  #offset: number | null = null;

  /**
   * A new table, or the Web Worker's view of its main thread's.
   *
   * @param memory the main thread's shared arrays; default new ones
   */
  constructor(memory?: StartTableMemory) {
    this.memory = memory ?? {
      seqs: new Int32Array(new SharedArrayBuffer(SLOTS * 4)),
      at: new Float64Array(new SharedArrayBuffer(SLOTS * 8)),
      halted: new Int32Array(new SharedArrayBuffer(4)),
      finished: new Int32Array(new SharedArrayBuffer(SLOTS * 4)),
      finishedAside: new Int32Array(new SharedArrayBuffer(SLOTS * ASIDE * 4)),
      finishedSpill: new Int32Array(new SharedArrayBuffer((FINISH_SPILL + 1) * 4)),
      startedSpill: new Int32Array(new SharedArrayBuffer((START_SPILL + 1) * 4)),
      revoked: new Int32Array(new SharedArrayBuffer(SLOTS * 4)),
      released: new Int32Array(new SharedArrayBuffer(SLOTS * 4)),
      spilled: new Int32Array(new SharedArrayBuffer((SPILL + 1) * 4)),
    };
  }

  /**
   * In the Web Worker: note that the handler of task `seq` returned (or the
   * promise it returned settled), before its outcome is handed on. A task
   * that does not hold its slot (it posted its start: the slot's task was
   * another, running or with its outcome unread) is noted beside the slots,
   * so that neither finish overwrites the other, and in the spill when its
   * cell there holds another such task's finish, still unread.
   *
   * @param seq the task
   */
  finish(seq: number): void {
    const slot = seq % SLOTS;
    const mark = seq | 0;
    if (this.#held[slot] === seq) Atomics.store(this.memory.finished, slot, mark);
    else if (
      Atomics.compareExchange(this.memory.finishedAside, asideCell(seq), 0, mark) !== 0 &&
      !put(this.memory.finishedSpill, mark)
    ) {
      // The spill full: in its cell, over another's.
      Atomics.store(this.memory.finishedAside, asideCell(seq), mark);
    }
  }

  /**
   * On the main thread, once it has read the outcome of task `seq`: the
   * slot it holds may be taken over by another task
   * ({@link StartTable.record}); for a task that does not hold its slot (it
   * posted its start), its start and finish beside the slots are cleared for
   * others.
   *
   * @param seq the task
   */
  release(seq: number): void {
    const slot = seq % SLOTS;
    const mark = seq | 0;
    if (Atomics.load(this.memory.seqs, slot) === mark) {
      Atomics.store(this.memory.released, slot, mark);
      return;
    }
    clear(this.memory.startedSpill, mark);
    if (Atomics.compareExchange(this.memory.finishedAside, asideCell(seq), mark, 0) !== mark) {
      clear(this.memory.finishedSpill, mark);
    }
  }

  /** Whether the main thread read the outcome of `held`, the task of `slot`. */
  #released(slot: number, held: number): boolean {
    return Atomics.load(this.memory.released, slot) === (held | 0);
  }

  /**
   * On the main thread: whether the handler of task `seq` has returned,
   * though its outcome may not have arrived: a time limit no longer applies.
   *
   * @param seq the task
   * @returns true once {@link StartTable.finish} noted it
   */
  hasFinished(seq: number): boolean {
    const mark = seq | 0;
    return Atomics.load(this.memory.finished, seq % SLOTS) === mark ||
      Atomics.load(this.memory.finishedAside, asideCell(seq)) === mark ||
      holds(this.memory.finishedSpill, mark);
  }

  /**
   * On the main thread, before it terminates the Web Worker: the Web Worker
   * starts no task from now on. Set once the Web Worker is not writing a
   * start ({@link StartTable.begin}): a task whose start is read after this
   * ({@link StartTable.hasStarted}) runs, one whose start is not never does.
   */
  halt(): void {
    const { halted } = this.memory;
    const end = performance.now() + HALT_WAIT_MS;
    while (Atomics.compareExchange(halted, 0, OPEN, HALTED) === STARTING) {
      if (performance.now() > end) {
        Atomics.store(halted, 0, HALTED);
        return;
      }
    }
  }

  /** Whether the main thread terminated the Web Worker ({@link StartTable.halt}). */
  get halted(): boolean {
    return Atomics.load(this.memory.halted, 0) === HALTED;
  }

  /**
   * In the Web Worker, before it calls task `seq`'s handler: note that it
   * starts now ({@link StartTable.record}), unless the main thread halted
   * it. The halt waits while this writes: it is decided on one side of it,
   * and the main thread reads the start after the halt exactly when the
   * task runs.
   *
   * @param seq the task
   * @returns `"halted"`: not to run (nothing written, or the halt waited too
   * long and read it started); `"written"`; `"unwritten"`: to run, and to
   * tell the main thread another way
   */
  begin(seq: number): "halted" | "written" | "unwritten" {
    const { halted } = this.memory;
    if (Atomics.compareExchange(halted, 0, OPEN, STARTING) !== OPEN) return "halted";
    const written = this.record(seq);
    if (Atomics.compareExchange(halted, 0, STARTING, OPEN) !== STARTING) return "halted";
    return written ? "written" : "unwritten";
  }

  /**
   * In the Web Worker: note that task `seq` starts now, unless its slot is
   * held by another task whose outcome the main thread has not read yet
   * ({@link StartTable.release}): it runs, or the main thread may still
   * ask whether it started or finished. Then only that it started is noted
   * beside the slots (read by {@link StartTable.hasStarted}, not when).
   *
   * @param seq the task
   * @returns whether its start time was written; when not, tell the main thread another way
   */
  record(seq: number): boolean {
    const slot = seq % SLOTS;
    const held = this.#held[slot];
    if (held !== undefined && held !== seq && !this.#released(slot, held)) {
      put(this.memory.startedSpill, seq | 0);
      return false;
    }
    this.#held[slot] = seq;
    this.memory.at[slot] = performance.now();
    Atomics.store(this.memory.seqs, slot, seq | 0);
    return true;
  }

  /**
   * On the main thread, handling a message from the Web Worker: learn its
   * clock. The message was posted before now, so the offset taken is never
   * smaller than the true one: a start is read late by at most the time the
   * message waited, never early (a limit never fires before it is due).
   * Called again, the closest bound is kept.
   *
   * @param postedAt the Web Worker's `performance.now()` when it posted the message
   */
  sync(postedAt: number): void {
    const offset = performance.now() - postedAt;
    if (this.#offset === null || offset < this.#offset) this.#offset = offset;
  }

  /**
   * On the main thread: whether task `seq` started, as its Web Worker wrote
   * it in its slot or, when its slot was held, beside the slots (false there
   * only when over 1024 such tasks were unread at once: it posted its start).
   *
   * @param seq the task
   * @returns true once its start is written
   */
  hasStarted(seq: number): boolean {
    const slot = seq % SLOTS;
    const mark = seq | 0;
    return (Atomics.load(this.memory.seqs, slot) === mark && this.memory.at[slot] > 0) ||
      holds(this.memory.startedSpill, mark);
  }

  /**
   * On the main thread: when task `seq` started, if its Web Worker wrote it
   * and its clock is known ({@link StartTable.sync}).
   *
   * @param seq the task
   * @returns its start in the main thread's `performance.now()` time, or null
   */
  startedAt(seq: number): number | null {
    const slot = seq % SLOTS;
    if (this.#offset === null || Atomics.load(this.memory.seqs, slot) !== (seq | 0)) return null;
    const at = this.memory.at[slot];
    return at > 0 ? at + this.#offset : null;
  }

  /**
   * On the main thread: mark task `seq` revoked, so that its Web Worker does
   * not start it if it has not yet. When its slot's mark is another revoked
   * task the Web Worker still holds (their dispatch numbers a multiple of
   * 1024 apart), it is marked beside the slots instead; not marked only
   * when 64 such tasks are held at once: `seq` may then start.
   *
   * @param seq the task
   * @param held whether a task (by sequence number) is still held by this table's Web Worker
   * @returns whether it was marked
   */
  revoke(seq: number, held: (seq: number) => boolean): boolean {
    const mark = seq | 0;
    // A mark's full number: the closest to `seq` with the same low 32 bits.
    const taken = (m: number) => m !== 0 && m !== mark && held(seq - ((mark - m) | 0));
    const { revoked, spilled } = this.memory;
    const slot = seq % SLOTS;
    if (!taken(Atomics.load(revoked, slot))) {
      Atomics.store(revoked, slot, mark);
      return true;
    }
    const used = Atomics.load(spilled, SPILL);
    for (let i = 0; i < used; i++) {
      if (!taken(Atomics.load(spilled, i))) {
        Atomics.store(spilled, i, mark);
        return true;
      }
    }
    if (used === SPILL) return false;
    // The entry before the count: the Web Worker reads the count first.
    Atomics.store(spilled, used, mark);
    Atomics.store(spilled, SPILL, used + 1);
    return true;
  }

  /**
   * Whether the main thread revoked task `seq`: read by the Web Worker after
   * writing its start, and by the main thread before terminating it for
   * that task (not started, it will not start: nothing to stop).
   *
   * @param seq the task
   * @returns true when it is not to start
   */
  revoked(seq: number): boolean {
    const mark = seq | 0;
    return Atomics.load(this.memory.revoked, seq % SLOTS) === mark ||
      holds(this.memory.spilled, mark);
  }
}

/**
 * Put `mark` in a spill (its last cell counts the entries ever used) in an
 * empty entry, unless it is full.
 */
function put(spill: Int32Array, mark: number): boolean {
  const size = spill.length - 1;
  const used = Atomics.load(spill, size);
  for (let i = 0; i < used; i++) {
    if (Atomics.compareExchange(spill, i, 0, mark) === 0) return true;
  }
  if (used === size) return false;
  // The entry before the count: the reader reads the count first.
  Atomics.store(spill, used, mark);
  Atomics.store(spill, size, used + 1);
  return true;
}

/** Empty the entry of a spill holding `mark`, if one does. */
function clear(spill: Int32Array, mark: number): void {
  const used = Atomics.load(spill, spill.length - 1);
  for (let i = 0; i < used; i++) if (Atomics.compareExchange(spill, i, mark, 0) === mark) return;
}

/** Whether an entry of a spill holds `mark`. */
function holds(spill: Int32Array, mark: number): boolean {
  const used = Atomics.load(spill, spill.length - 1);
  for (let i = 0; i < used; i++) if (Atomics.load(spill, i) === mark) return true;
  return false;
}

/** The cell of `seq`'s finish in {@link StartTableMemory.finishedAside}. */
function asideCell(seq: number): number {
  return (seq % SLOTS) * ASIDE + Math.floor(seq / SLOTS) % ASIDE;
}
