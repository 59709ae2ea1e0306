/**
 * Process helpers for the benchmark (Linux only, read from `/proc`):
 * process trees, memory sampling, and stopping a worker with its children.
 *
 * @module
 */

/** Memory figures of a process tree, in KiB. */
export interface MemoryPeak {
  /** Highest sum of VmRSS over the tree seen by the sampler. */
  peakRssKiB: number;
  /** Highest sum of Pss (smaps_rollup) over the tree seen by the sampler. */
  peakPssKiB: number;
  /** Sum of each process's own VmHWM (peak RSS) when sampling stopped. */
  hwmSumKiB: number;
  /** Pids of the tree when sampling stopped. */
  pids: number[];
  /** Number of samples taken. */
  samples: number;
}

/** State and parent pid of a process, or null when there is no such process. */
function statOf(pid: number): { state: string; ppid: number } | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name is in parentheses and may contain spaces: fields start after the last ")".
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state, ppid: Number(ppid) };
  } catch {
    return null;
  }
}

/**
 * The pid and all its descendants, found by scanning `/proc/<pid>/stat`.
 *
 * @param root the top process
 * @returns `root` first, then its descendants (only those alive now)
 */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    const ppid = statOf(pid)?.ppid;
    if (ppid === undefined) continue;
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  if (statOf(root) === null) return [];
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

function statusField(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

function readKiB(path: string, field: string): number {
  try {
    return statusField(Deno.readTextFileSync(path), field);
  } catch {
    return 0; // the process exited between listing and reading
  }
}

/**
 * Samples the memory of a process tree until stopped. The tree is listed
 * again every `rescanEvery` samples (prefork children appear after start).
 */
export class MemorySampler {
  readonly #root: number;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #rescanEvery: number;
  #pids: number[];
  #peakRss = 0;
  #peakPss = 0;
  #samples = 0;

  /**
   * Start sampling.
   *
   * @param root pid of the top process
   * @param intervalMs time between samples
   * @param rescanEvery list the tree again every this many samples
   */
  constructor(root: number, intervalMs = 100, rescanEvery = 5) {
    this.#root = root;
    this.#rescanEvery = rescanEvery;
    this.#pids = processTree(root);
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    if (this.#samples % this.#rescanEvery === 0) this.#pids = processTree(this.#root);
    let rss = 0;
    let pss = 0;
    for (const pid of this.#pids) {
      rss += readKiB(`/proc/${pid}/status`, "VmRSS");
      pss += readKiB(`/proc/${pid}/smaps_rollup`, "Pss");
    }
    this.#peakRss = Math.max(this.#peakRss, rss);
    this.#peakPss = Math.max(this.#peakPss, pss);
    this.#samples++;
  }

  /**
   * Take a last sample, stop, and report the peaks.
   *
   * @returns the peaks and the per-process VmHWM sum
   */
  stop(): MemoryPeak {
    clearInterval(this.#timer);
    this.#pids = processTree(this.#root);
    this.#sample();
    const hwmSumKiB = this.#pids.reduce((s, pid) => s + readKiB(`/proc/${pid}/status`, "VmHWM"), 0);
    return {
      peakRssKiB: this.#peakRss,
      peakPssKiB: this.#peakPss,
      hwmSumKiB,
      pids: [...this.#pids],
      samples: this.#samples,
    };
  }
}

function alive(pid: number): boolean {
  const s = statOf(pid);
  return s !== null && s.state !== "Z";
}

function kill(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Stop a spawned process and every descendant: SIGTERM to the top process,
 * SIGKILL to it after `graceMs`, then SIGKILL to any descendant still alive
 * shortly after it exits, so that nothing is left orphaned.
 *
 * @param child the spawned process
 * @param graceMs how long the top process may take to exit after SIGTERM
 * @returns how the stop went: `"sigterm"` or `"sigkill"`
 */
export async function stopTree(child: Deno.ChildProcess, graceMs = 15_000): Promise<string> {
  const tree = processTree(child.pid);
  let how = "sigterm";
  kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => {
    how = "sigkill";
    kill(child.pid, "SIGKILL");
  }, graceMs);
  try {
    await child.status;
  } finally {
    clearTimeout(timer);
  }
  const deadline = Date.now() + 2_000;
  let left = tree.slice(1).filter(alive);
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    left = left.filter(alive);
  }
  for (const pid of left) kill(pid, "SIGKILL");
  if (left.length) how += `, SIGKILL to ${left.length} leftover child process(es)`;
  return how;
}

/**
 * CPU time used so far by each thread of a process, in nanoseconds, by
 * thread kind: `main` (the thread whose id is the pid), `web workers`
 * (Deno names them `worker-N`), `V8 helpers` (GC and compiler threads),
 * `tokio` (Deno's I/O runtime) and `other` (read from
 * `/proc/<pid>/task/<tid>/schedstat`, whose first field is the time on a CPU).
 *
 * @param pid the process
 * @returns nanoseconds per kind; empty when the process is gone
 */
export function threadCpuNs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [tid, t] of threadSchedstats(pid)) {
    const kind = tid === String(pid)
      ? "main"
      : /^worker-\d+$/.test(t.comm)
      ? "web workers"
      : t.comm.startsWith("V8 ")
      ? "V8 helpers"
      : t.comm.startsWith("tokio")
      ? "tokio"
      : "other";
    out.set(kind, (out.get(kind) ?? 0) + t.cpu);
  }
  return out;
}

/** One thread's scheduler figures (`/proc/<pid>/task/<tid>/schedstat`), times in ns. */
export interface ThreadSchedstat {
  /** The thread's name (`comm`). */
  comm: string;
  /** Time on a CPU. */
  cpu: number;
  /** Time waiting on a run queue. */
  wait: number;
  /** Time slices run. */
  slices: number;
}

/**
 * Scheduler figures of every thread of `pid`, by thread id; empty when the
 * process is gone.
 *
 * @example
 * ```ts ignore
 * for (const [tid, t] of threadSchedstats(Deno.pid)) console.log(tid, t.comm, t.wait);
 * ```
 */
export function threadSchedstats(pid: number): Map<string, ThreadSchedstat> {
  const out = new Map<string, ThreadSchedstat>();
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`/proc/${pid}/task`)];
  } catch {
    return out;
  }
  for (const e of entries) {
    try {
      const dir = `/proc/${pid}/task/${e.name}`;
      const [cpu, wait, slices] = Deno.readTextFileSync(`${dir}/schedstat`).trim().split(" ")
        .map(Number);
      out.set(e.name, { comm: Deno.readTextFileSync(`${dir}/comm`).trim(), cpu, wait, slices });
    } catch {
      // the thread ended between listing and reading
    }
  }
  return out;
}

/**
 * Collect a spawned worker's output (stdout and stderr, as text) and
 * resolve `ready` once it prints its ` ready: ` line; `ready` rejects with
 * the output if the process exits first.
 *
 * @example
 * ```ts ignore
 * const w = followWorker(new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).spawn());
 * await w.ready;
 * console.log(w.output());
 * ```
 */
export function followWorker(
  child: Deno.ChildProcess,
): { ready: Promise<void>; output: () => string } {
  let output = "";
  const ready = Promise.withResolvers<void>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      output += chunk;
      if (/ ready: /.test(output)) ready.resolve();
    }
  };
  Promise.all([collect(child.stdout), collect(child.stderr)]).then(() =>
    ready.reject(new Error(`the worker exited:\n${output}`))
  );
  return { ready: ready.promise, output: () => output };
}

/**
 * Options of {@link startBenchWorker}.
 *
 * @example
 * ```ts ignore
 * const options: BenchWorkerOptions = { broker: "redis://127.0.0.1:6379/12", backend: "redis://127.0.0.1:6379/13", queue: "bench" };
 * ```
 */
export interface BenchWorkerOptions {
  /** Broker URL (`CELERY_BROKER_URL`). */
  broker: string;
  /** Result backend URL (`CELERY_RESULT_BACKEND`). */
  backend: string;
  /** Queue it consumes. */
  queue: string;
  /** Deno arguments before `-A` (V8 flags, `--inspect`). Default none. */
  denoArgs?: string[];
  /** Worker arguments after the defaults (`--loglevel`, `-E`). Default none. */
  workerArgs?: string[];
  /** More environment variables of the worker (`MALLOC_ARENA_MAX`, `CELERIAC_V8_FLAGS`). Default none. */
  env?: Record<string, string>;
  /** The checkout whose worker.ts runs (another commit's worktree, say). Default this repository. */
  root?: string;
}

/**
 * Spawn the bench's Celeriac worker, `deno run [denoArgs] -A worker.ts --app
 * bench/tasks.ts -c 2 -Q queue [workerArgs]` from the repository root (or
 * `root`), and
 * follow it ({@link followWorker}).
 *
 * @example
 * ```ts ignore
 * const { child, ready } = startBenchWorker({ broker, backend, queue: "bench" });
 * await ready;
 * await stopTree(child);
 * ```
 */
export function startBenchWorker(
  options: BenchWorkerOptions,
): { child: Deno.ChildProcess; ready: Promise<void>; output: () => string } {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...options.denoArgs ?? [],
      "-A",
      "worker.ts",
      "--app",
      "bench/tasks.ts",
      "-c",
      "2",
      "-Q",
      options.queue,
      ...options.workerArgs ?? [],
    ],
    cwd: options.root ?? new URL("..", import.meta.url).pathname,
    env: {
      ...options.env,
      CELERY_BROKER_URL: options.broker,
      CELERY_RESULT_BACKEND: options.backend,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return { child, ...followWorker(child) };
}
