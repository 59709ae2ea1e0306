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
 * `/proc/thread-self/schedstat`) when tasks start and when outcomes are
 * settled while tasks that awaited are in flight, and shares what is not
 * the handlers' first runs equally among those tasks (a task still in
 * flight counts, running or awaiting): such a task's blocking time is its
 * first run plus its share. That time is shared out in full, so tasks of
 * one kind average to their own CPU time (with the runner's own work for
 * them); one that awaits long beside tasks that compute after their
 * awaits gets part of theirs. Synchronous handlers keep their first run,
 * all of their time.
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
 * ```ts ignore
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
 * {@link CpuShares.start} before tasks start, {@link CpuShares.firstRun}
 * as each handler's synchronous run ends, and {@link CpuShares.settle} with
 * finished outcomes: the `blocked` of a task whose handler returned a
 * promise becomes its first run plus its share of the rest of the thread's
 * CPU time while it was in flight. A synchronous handler's first run is all
 * of its time: its outcome is left as it is (and a thread running only
 * those reads no clock).
 *
 * @example
 * ```ts ignore
 * let cpu = 0;
 * const shares = new CpuShares(() => cpu);
 * shares.start();
 * shares.firstRun(1, 0, true);
 * shares.firstRun(2, 0, true);
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
  /** First runs that ended since the last reading: the thread's time that is theirs alone. */
  #firstRuns = 0;

  /** @param clock the thread's CPU time in milliseconds ({@link threadCpuClock}) */
  constructor(clock: () => number) {
    this.#clock = clock;
    this.#read = clock();
  }

  /** Tasks start now: the CPU time so far goes to the tasks in flight before them. */
  start(): void {
    if (this.#since.size) this.#advance();
  }

  /**
   * A handler's synchronous run ended: it returned or threw, or awaits
   * (returned a promise: the task goes on and takes part in the shares).
   *
   * @param seq its dispatch number
   * @param ms how long it ran
   * @param awaits whether the handler returned a promise
   */
  firstRun(seq: number, ms: number, awaits: boolean): void {
    if (awaits && this.#since.size === 0) {
      // Nothing was in flight: what the thread did before now (this first run too) is no one's share.
      this.#advance();
    } else this.#firstRuns += ms;
    if (awaits) this.#since.set(seq, this.#perTask);
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
    this.#advance();
    for (const o of outcomes) {
      const since = this.#since.get(o.seq);
      if (since === undefined) continue;
      this.#since.delete(o.seq);
      if (o.blocked !== undefined) o.blocked += this.#perTask - since;
    }
  }

  #advance(): void {
    const now = this.#clock();
    const rest = now - this.#read - this.#firstRuns;
    if (rest > 0 && this.#since.size > 0) this.#perTask += rest / this.#since.size;
    this.#read = now;
    this.#firstRuns = 0;
  }
}
