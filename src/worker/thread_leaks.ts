/**
 * Web Worker threads that outlive their `terminate()`. Deno (2.9) does not
 * stop a Web Worker busy in a synchronous loop (`for (;;) {}`) when it is
 * terminated ([denoland/deno#35657](https://github.com/denoland/deno/pull/35657)):
 * the pool replaces it, but its thread runs on, a core busy until the
 * process exits. Celery's prefork pool kills the child process at a hard
 * time limit and so gets the CPU back; a thread cannot be killed alone.
 *
 * So the threads pool notes the threads that start with each Web Worker
 * (new in `/proc/<pid>/task` across its `new Worker()`), narrowed to the
 * one the Web Worker says is its own in its `ready` (`thread_self.ts`: a
 * Web Worker started elsewhere in the process meanwhile is new too), takes
 * the one named `worker-N` among them (Deno names a Web Worker's thread so)
 * when it terminates it, and samples its CPU every second until it ends. A
 * terminated Web Worker's thread does not end when its synchronous code
 * returns: it goes on to the messages queued to it (the `run`s the pool had
 * posted), so the pool halts it first (`start_table.ts`): it starts none of
 * those tasks, which are put back for other Web Workers. One
 * blocked in a call (`outputSync`) or in a computation that ends is
 * reported at INFO, not counted. One found running
 * in every sample for its grace ({@link LEAK_GRACE_MS} by default; runnable, or having used
 * {@link SPINNING_BUSY} of a core since the last) is leaked: the worker reports it at WARNING and, at
 * `leakedThreadsRestart`, restarts (see `worker_options.ts`,
 * `leaked_threads.ts`). Deno reads
 * `/proc/<pid>/task` only when every permission is granted (`-A`); without
 * it, or off Linux, the pool cannot tell and says so at its first terminate.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { LeakedThread } from "./leaked_threads.ts";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * How long a terminated Web Worker's thread must keep running (in every
 * sample) to count as leaked by default (`ThreadWatchOptions.graceMs`,
 * `WorkerOptions.leakedThreadsGrace`): a computation that ends sooner is
 * not a leak.
 *
 * @example
 * ```ts
 * import { LEAK_GRACE_MS } from "./thread_leaks.ts";
 * LEAK_GRACE_MS; // 5000
 * ```
 */
export const LEAK_GRACE_MS = 5000;

/**
 * Options of {@link ThreadWatch}.
 *
 * @example A longer grace, for tasks whose synchronous code runs on a while past their limit
 * ```ts
 * import type { ThreadWatchOptions } from "./thread_leaks.ts";
 * const options: ThreadWatchOptions = { graceMs: 30_000 };
 * ```
 */
export interface ThreadWatchOptions {
  /**
   * How long (ms, > 0: `ThreadPool` and `Worker` refuse other values when
   * constructed) a terminated Web Worker's thread must keep running to
   * count as leaked; threads are sampled every second. Default
   * {@link LEAK_GRACE_MS} (5000).
   */
  graceMs?: number;
}

/**
 * Share of a core a thread that is not runnable when sampled must have used
 * since the last sample to count as running. A thread blocked in a
 * synchronous call uses none; a synchronous loop uses what it gets, which
 * under a CPU limit (a container's 250m) or on a host busy with other work
 * can be a few percent, so a sample also counts it running whenever the
 * kernel has it runnable (state `R`), whatever its share.
 */
export const SPINNING_BUSY = 0.02;

/** How often the threads of terminated Web Workers still there are sampled (their CPU, whether they ended). */
const SAMPLE_MS = 1000;

/** Linux's `USER_HZ`: the unit of the CPU times in `/proc/<pid>/task/<tid>/stat`. */
const TICKS_PER_SECOND = 100;

/**
 * A thread of this process, as `/proc` names it: its id and start time
 * (a thread id can be reused once the thread ended; with its start time it
 * cannot be mistaken).
 *
 * @example
 * ```ts
 * import type { ThreadRef } from "./thread_leaks.ts";
 * const ref: ThreadRef = { tid: 4242, start: "1234567" };
 * ```
 */
export interface ThreadRef {
  /** The thread id (`top -H` shows it). */
  tid: number;
  /** Its start time in clock ticks since boot (field 22 of its `stat`). */
  start: string;
}

interface Sample {
  name: string;
  /** Runnable (running or waiting for a core: state `R`), not blocked. */
  runnable: boolean;
  start: string;
  ticks: number;
}

/** A terminated Web Worker's thread still there: sampled until it ends. */
interface Watched extends LeakedThread {
  ref: ThreadRef;
  ticks0: number;
  lastTicks: number;
  lastAt: number;
  /** When its current run of busy samples began; null after an idle one. */
  busySince: number | null;
  /** Counted as leaked (found running in every sample for the grace). */
  leaked: boolean;
  /** Reported at INFO as still there. */
  told: boolean;
}

/** The name Deno gives a Web Worker's thread. */
const WEB_WORKER_THREAD = /^worker-\d+$/;

function threadIds(dir: string): Set<number> {
  return new Set([...Deno.readDirSync(dir)].map((e) => Number(e.name)));
}

const NEEDS_ALL = "Deno reads /proc/<pid>/task only when every permission is granted (-A)";

/** Why `/proc/<pid>/task` cannot be read here, or null when it can. */
function unreadable(dir: string): string | null {
  if (Deno.build.os !== "linux") return "only Linux has /proc";
  // Not granted: reading would prompt in a terminal (and Deno denies it short of -A anyway).
  if (Deno.permissions.querySync({ name: "read", path: dir }).state !== "granted") {
    return NEEDS_ALL;
  }
  try {
    Deno.readDirSync(dir);
    return null;
  } catch (err) {
    return err instanceof Deno.errors.NotCapable
      ? NEEDS_ALL
      : `cannot read ${dir} (${(err as Error).message})`;
  }
}

/**
 * Finds the Web Worker threads that keep running after a terminate (see the
 * module documentation).
 *
 * @example
 * ```ts ignore
 * const watch = new ThreadWatch((leak, count) => console.warn(leak.task, count));
 * const { value: worker, threads } = watch.spawn(() => new Worker(url, { type: "module" }));
 * worker.terminate();
 * watch.terminated(threads, { task: "tasks.spin", id });
 * ```
 */
export class ThreadWatch {
  readonly #dir = `/proc/${Deno.pid}/task`;
  readonly #onLeak: (leak: LeakedThread, count: number) => void;
  readonly #graceMs: number;
  /** Why threads cannot be watched, or null. */
  readonly unavailable: string | null;
  readonly #watched = new Map<number, Watched>();
  #sampler: ReturnType<typeof setInterval> | undefined;
  #toldUnavailable = false;

  /**
   * Start watching; nothing is read until a Web Worker is started.
   *
   * @param onLeak called once for each thread found leaked, with the number leaked now
   * @param options see {@link ThreadWatchOptions}
   */
  constructor(
    onLeak: (leak: LeakedThread, count: number) => void,
    options: ThreadWatchOptions = {},
  ) {
    this.#onLeak = onLeak;
    this.#graceMs = options.graceMs ?? LEAK_GRACE_MS;
    this.unavailable = unreadable(this.#dir);
  }

  /** The threads leaked now, or null when they cannot be known. */
  get leaked(): LeakedThread[] | null {
    if (this.unavailable) return null;
    return [...this.#watched.values()].filter((w) => w.leaked).map((
      { task, id, tid, terminatedAt, cpuSeconds, busy },
    ) => ({ task, id, tid, terminatedAt, cpuSeconds, busy }));
  }

  #sample(tid: number): Sample | null {
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`${this.#dir}/${tid}/stat`);
    } catch {
      return null; // ended
    }
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    return {
      name: stat.slice(stat.indexOf("(") + 1, close),
      runnable: fields[0] === "R",
      start: fields[19],
      ticks: Number(fields[11]) + Number(fields[12]),
    };
  }

  /**
   * Start a Web Worker and note the threads that started meanwhile, its own
   * among them: Deno starts it before `new Worker()` returns, but the thread
   * names itself `worker-N` only once it runs, so which one is its own is
   * told by {@link ThreadWatch.terminated}.
   *
   * @param start what starts the Web Worker
   * @returns what `start` returned, and the threads that started with it
   *   (null when they cannot be read)
   */
  spawn<T>(start: () => T): { value: T; threads: ThreadRef[] | null } {
    if (this.unavailable) return { value: start(), threads: null };
    let before: Set<number>;
    try {
      before = threadIds(this.#dir);
    } catch {
      return { value: start(), threads: null };
    }
    const value = start();
    try {
      const threads: ThreadRef[] = [];
      for (const tid of threadIds(this.#dir)) {
        const s = before.has(tid) ? null : this.#sample(tid);
        if (s) threads.push({ tid, start: s.start });
      }
      return { value, threads };
    } catch {
      return { value, threads: null };
    }
  }

  /**
   * A Web Worker was terminated: sample its thread every second until it
   * ends or counts as leaked (see the module documentation).
   *
   * @param threads the threads that started with it, from {@link ThreadWatch.spawn}
   * @param run the task that ended it
   */
  terminated(threads: ThreadRef[] | null, run: { task: string; id: string }): void {
    if (this.unavailable) {
      if (!this.#toldUnavailable) {
        this.#toldUnavailable = true;
        log.warn(
          "Cannot tell whether the thread of {task}[{id}] stopped: {why}. Deno does not stop a " +
            "Web Worker busy in a synchronous loop (denoland/deno#35657); such a thread keeps a " +
            "core busy until the worker process exits",
          { task: run.task, id: run.id, why: this.unavailable },
        );
      }
      return;
    }
    if (!threads) return;
    // Its own is the one named as a Web Worker's; two: another started meanwhile, and it did not
    // say which is its own (`thread_self.ts`: a sandbox without read access to /proc).
    const named = threads.flatMap((ref) => {
      const s = this.#sample(ref.tid);
      return s && s.start === ref.start && WEB_WORKER_THREAD.test(s.name) ? [{ ref, s }] : [];
    });
    if (named.length !== 1) return;
    const [{ ref: thread, s: first }] = named;
    const at = Date.now();
    this.#watched.set(thread.tid, {
      task: run.task, // not `run` itself: it holds the terminated Web Worker
      id: run.id,
      tid: thread.tid,
      terminatedAt: at,
      cpuSeconds: 0,
      busy: 0,
      ref: thread,
      ticks0: first.ticks,
      lastTicks: first.ticks,
      lastAt: at,
      busySince: null,
      leaked: false,
      told: false,
    });
    if (this.#sampler !== undefined) return;
    const sampler = setInterval(() => this.#look(), SAMPLE_MS);
    Deno.unrefTimer(sampler);
    this.#sampler = sampler;
  }

  /** Sample the watched threads: forget those that ended, count those spinning long enough. */
  #look(): void {
    const now = Date.now();
    for (const [tid, w] of this.#watched) {
      if (now - w.terminatedAt < SAMPLE_MS) continue; // give it the time to end
      const seconds = Math.round((now - w.terminatedAt) / 100) / 10;
      const s = this.#sample(tid);
      if (!s || s.start !== w.ref.start) {
        this.#watched.delete(tid);
        if (w.told || w.leaked) {
          log.info(
            "The thread {tid} of {task}[{id}] ended {seconds} s after its Web Worker was " +
              "terminated, having used {cpu} CPU seconds since",
            { tid, task: w.task, id: w.id, seconds, cpu: w.cpuSeconds },
          );
        }
        continue;
      }
      w.busy = (s.ticks - w.lastTicks) / TICKS_PER_SECOND / ((now - w.lastAt) / 1000);
      w.cpuSeconds = (s.ticks - w.ticks0) / TICKS_PER_SECOND;
      const running = s.runnable || w.busy >= SPINNING_BUSY;
      w.busySince = running ? w.busySince ?? w.lastAt : null;
      w.lastTicks = s.ticks;
      w.lastAt = now;
      if (w.leaked) continue;
      if (w.busySince !== null && now - w.busySince >= this.#graceMs) {
        w.leaked = true;
        const leaked = this.leaked!;
        this.#onLeak(leaked.find((l) => l.tid === tid)!, leaked.length);
      } else if (!w.told) {
        w.told = true;
        log.info(
          "The thread {tid} of {task}[{id}] is still there {seconds} s after its Web Worker was " +
            "terminated, {doing}, using {percent} % of a core: Deno ends it once its synchronous " +
            "code returns; it counts as leaked if it is still running at {grace} s (a loop " +
            "that never returns, denoland/deno#35657)",
          {
            tid,
            task: w.task,
            id: w.id,
            seconds,
            doing: running ? "running (a computation)" : "blocked (a synchronous call)",
            percent: Math.round(w.busy * 100),
            grace: this.#graceMs / 1000,
          },
        );
      }
    }
    if (this.#watched.size === 0) {
      clearInterval(this.#sampler);
      this.#sampler = undefined;
    }
  }

  /** Stop watching. */
  close(): void {
    clearInterval(this.#sampler);
    this.#sampler = undefined;
  }
}
