/**
 * The CPU time a task holds its thread for across its awaits, for the
 * blocking time the prefetch window and the threads pool go by
 * (`blocking_time.ts`). The executor times a handler's synchronous run up
 * to its first `await`; the code after an await runs in later turns of the
 * thread's event loop, mixed with other tasks', where no hook tells whose
 * it is. A task that awaits I/O and then computes for 50 ms looked like a
 * no-op: the window opened wide and one Web Worker was given (and started)
 * every task of a take.
 *
 * {@link CpuShares} reads the thread's own CPU time (Linux:
 * `/proc/thread-self/schedstat`) while tasks that awaited are in flight,
 * and shares what the thread ran outside the turns that start tasks equally
 * among those tasks (a task still in flight counts, running or awaiting):
 * such a task's blocking time is its first run plus its share. A turn that
 * starts tasks, from their requests' decoding until every one of them has
 * run up to its first await and the outcomes of those that did not await
 * are handed on, is measured on the CPU clock and given to no one: it holds
 * the handlers' first runs (each task's own, timed apart) and the runner's
 * work for synchronous tasks, which are not the awaiting tasks'. What an
 * awaiting handler computes in that same turn (after awaiting something
 * already settled) is not counted either. Synchronous handlers keep their
 * first run, all of their time.
 *
 * @module
 */

import type { RunOutcome } from "./executor.ts";
import { SeqMap } from "./seq_map.ts";

/** Where Linux keeps the calling thread's CPU time (the first field, in nanoseconds). */
const SCHEDSTAT = "/proc/thread-self/schedstat";

/**
 * A clock of the calling thread's CPU time in milliseconds, or null where
 * it cannot be read: not Linux, or no read access to `/proc` (the worker
 * run without `-A` or `--allow-read=/proc`; a sandbox that lists the paths
 * it reads). Asked without a prompt. The file stays open, so access given
 * up later (a sandbox's, once its app module is loaded) does not stop the
 * clock; a read that fails keeps the last value.
 *
 * @example
 * ```ts
 * const clock = threadCpuClock();
 * clock?.(); // 1234.5: this thread ran 1.2345 s on a CPU
 * ```
 *
 * @returns the clock, or null
 */
export function threadCpuClock(): (() => number) | null {
  let file: Deno.FsFile;
  try {
    if (Deno.permissions.querySync({ name: "read", path: SCHEDSTAT }).state !== "granted") {
      return null;
    }
    file = Deno.openSync(SCHEDSTAT);
  } catch {
    return null;
  }
  const buf = new Uint8Array(64);
  let last = 0;
  return () => {
    try {
      file.seekSync(0, Deno.SeekMode.Start);
      const n = file.readSync(buf) ?? 0;
      let ns = 0;
      for (let i = 0; i < n && buf[i] >= 48 && buf[i] <= 57; i++) ns = ns * 10 + buf[i] - 48;
      if (n > 0) last = ns / 1e6;
    } catch {
      // The thread is ending (its Web Worker terminated): the clock stands still.
    }
    return last;
  };
}

/**
 * Shares a thread's CPU time among the tasks that await on it. Call
 * {@link CpuShares.start} before a turn starts tasks, {@link CpuShares.awaiting}
 * as a handler's synchronous run ends with a promise, {@link CpuShares.end}
 * once every task started has run up to its first await and the outcomes of
 * those that did not await are handed on, and {@link CpuShares.settle} with
 * finished outcomes: the `blocked` of a task that awaited becomes its first
 * run plus its share of the thread's CPU time outside those turns while it
 * was in flight. A synchronous handler's first run is all of its time: its
 * outcome is left as it is (and a thread running only those reads no
 * clock).
 *
 * @example
 * ```ts
 * let cpu = 0;
 * const shares = new CpuShares(() => cpu);
 * shares.start();
 * shares.awaiting(1);
 * shares.awaiting(2);
 * cpu += 3; // decoding, first runs: no one's share
 * shares.end();
 * cpu += 40; // after their awaits, the two tasks compute 40 ms between them
 * const done = [{ seq: 1, blocked: 0 }, { seq: 2, blocked: 0 }];
 * shares.settle(done);
 * done[0].blocked; // 20
 * ```
 */
export class CpuShares {
  readonly #clock: () => number;
  /** The value of {@link CpuShares.#perTask} when each task in flight began to await. */
  readonly #since = new SeqMap<number>();
  /** CPU milliseconds each task in flight has been given since this started, summed. */
  #perTask = 0;
  /** The clock at the last reading. */
  #read: number;
  /** Whether a turn that starts tasks is under way (between start and end). */
  #starting = false;

  /** @param clock the thread's CPU time in milliseconds ({@link threadCpuClock}) */
  constructor(clock: () => number) {
    this.#clock = clock;
    this.#read = clock();
  }

  /**
   * Tasks start now: the CPU time so far goes to the tasks in flight, and
   * from now until {@link CpuShares.end} to no one. Does nothing while a
   * start is under way.
   */
  start(): void {
    if (this.#starting) return;
    if (this.#since.size) this.#advance();
    this.#starting = true;
  }

  /**
   * A handler's synchronous run ended with a promise: its task goes on and
   * takes part in the shares. Called between start and end.
   *
   * @param seq its dispatch number
   */
  awaiting(seq: number): void {
    this.#since.set(seq, this.#perTask);
  }

  /**
   * The tasks started have run up to their first await and the outcomes of
   * the others are handed on: the CPU time since {@link CpuShares.start}
   * is no one's share. Does nothing when no start is under way.
   */
  end(): void {
    if (!this.#starting) return;
    this.#starting = false;
    if (this.#since.size) this.#read = this.#clock();
  }

  /**
   * Tasks finished: add to the `blocked` (its first run) of each one that
   * awaited its share. Outcomes without `blocked` (the handler did not run)
   * are left as they are.
   *
   * @param outcomes finished tasks
   */
  settle(outcomes: readonly Pick<RunOutcome, "seq" | "blocked">[]): void {
    if (this.#since.size === 0) return;
    if (!this.#starting) this.#advance();
    for (const o of outcomes) {
      const since = this.#since.get(o.seq);
      if (since === undefined) continue;
      this.#since.delete(o.seq);
      if (o.blocked !== undefined) o.blocked += this.#perTask - since;
    }
  }

  #advance(): void {
    const now = this.#clock();
    const rest = now - this.#read;
    if (rest > 0 && this.#since.size > 0) this.#perTask += rest / this.#since.size;
    this.#read = now;
  }
}
