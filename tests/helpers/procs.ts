/** Child processes for integration and interop tests: workers and clients. */

import { type V8Start, workerEnv } from "./worker_env.ts";

/** Python with Celery 5.2 (Debian's); the first python3 on PATH may lack it. */
export const PYTHON = Deno.env.get("CELERIAC_TEST_PYTHON") ?? "/usr/bin/python3";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A running child process whose output is collected. */
export class Proc {
  readonly child: Deno.ChildProcess;
  readonly name: string;
  #out = "";
  #waiters: { re: RegExp; resolve(): void }[] = [];
  readonly #pumps: Promise<void>[];

  private constructor(name: string, child: Deno.ChildProcess) {
    this.name = name;
    this.child = child;
    this.#pumps = [this.#pump(child.stdout), this.#pump(child.stderr)];
  }

  /**
   * Start a process; its stdout and stderr are collected. A `deno run -A
   * worker.ts` worker or dashboard starts with the worker's V8 flags in its
   * environment unless `v8Start` is `"restart"` (see {@link workerEnv}).
   */
  static start(
    name: string,
    cmd: string,
    args: string[],
    options: { env?: Record<string, string>; cwd?: string; v8Start?: V8Start } = {},
  ): Proc {
    const child = new Deno.Command(cmd, {
      args,
      env: cmd === Deno.execPath() ? workerEnv(args, options.env, options.v8Start) : options.env,
      cwd: options.cwd ?? ROOT,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    return new Proc(name, child);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      this.#out += chunk;
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.re.test(this.#out)) return true;
        w.resolve();
        return false;
      });
    }
  }

  /** Everything it printed so far. */
  get output(): string {
    return this.#out;
  }

  /** Wait until its output matches. */
  waitFor(re: RegExp, timeoutMs = 20_000): Promise<void> {
    if (re.test(this.#out)) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const timer = setTimeout(() => {
      this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
      reject(
        new Error(`${this.name}: ${re} not seen within ${timeoutMs} ms. Output:\n${this.#out}`),
      );
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    this.#waiters.push({ re, resolve: done });
    this.child.status.then(() => {
      if (this.#waiters.some((w) => w.resolve === done)) {
        setTimeout(() => {
          if (!re.test(this.#out)) {
            clearTimeout(timer);
            reject(new Error(`${this.name} exited before ${re}. Output:\n${this.#out}`));
          }
        }, 50);
      }
    });
    return promise;
  }

  /** Wait until it exits on its own and everything it printed is in {@link Proc.output}. */
  async finished(): Promise<Deno.CommandStatus> {
    const status = await this.child.status;
    await Promise.all(this.#pumps);
    return status;
  }

  /** Send a signal (ignored if it already exited). */
  signal(sig: Deno.Signal): void {
    try {
      this.child.kill(sig);
    } catch {
      // already exited
    }
  }

  /** Stop it: the signal, then SIGKILL after the grace period. */
  async stop(sig: Deno.Signal = "SIGTERM", graceMs = 15_000): Promise<Deno.CommandStatus> {
    this.signal(sig);
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    const status = await this.child.status;
    clearTimeout(timer);
    await Promise.all(this.#pumps);
    return status;
  }
}

/**
 * Start a Celeriac worker (`deno run -A worker.ts ...`) and wait until it is
 * ready. It starts with the worker's V8 flags in its environment unless
 * `options.v8Start` is `"restart"` (see {@link workerEnv}).
 */
export async function celeriacWorker(
  args: string[],
  env: Record<string, string> = {},
  options: { v8Start?: V8Start } = {},
): Promise<Proc> {
  const p = Proc.start("celeriac worker", Deno.execPath(), ["run", "-A", "worker.ts", ...args], {
    env,
    v8Start: options.v8Start,
  });
  // Start-up takes a second on a quiet machine; parallel test files on 2 CPUs make it slower.
  return await readyOrStopped(p, / ready: /, 60_000);
}

/**
 * Start `deno run -A worker.ts beat --app tests/apps/beat_app.ts ...more` without waiting:
 * the beat app reads its broker, queue and interval from `BEAT_*` variables in `env`.
 *
 * @example
 * ```ts
 * const beat = startBeatApp("beat", ["--max-interval", "1"], { BEAT_BROKER: REDIS_URL });
 * await beat.waitFor(/is the leader/);
 * ```
 */
export function startBeatApp(name: string, more: string[], env: Record<string, string>): Proc {
  const args = ["run", "-A", "worker.ts", "beat", "--app", "tests/apps/beat_app.ts", ...more];
  return Proc.start(name, Deno.execPath(), args, { env });
}

/**
 * Start a `redis-server` of the test's own on `port`, without persistence, then `more` arguments;
 * it does not wait (wait for `/Ready to accept connections/`).
 *
 * @example
 * ```ts
 * const server = redisServerProc(ports.base, ["--proto-max-bulk-len", "1mb"]);
 * await server.waitFor(/Ready to accept connections/);
 * ```
 */
export function redisServerProc(port: number, more: string[] = []): Proc {
  const args = ["--port", String(port), "--save", "", "--appendonly", "no", ...more];
  return Proc.start("redis-server", "redis-server", args);
}

/**
 * The CLI arguments of `schedule add hi --task <task> --every 10s`, then `more`.
 *
 * @example
 * ```ts
 * const out = await runCli(scheduleAddArgs("periodic.hello", ["--app", "./examples/periodic.ts"]));
 * ```
 */
export function scheduleAddArgs(task: string, more: string[] = []): string[] {
  return ["schedule", "add", "hi", "--task", task, "--every", "10s", ...more];
}

/** Where {@linkcode celeriacWorkerArgs}' worker runs. */
export interface WorkerPlace {
  /** The app module, relative to the repository root. */
  app: string;
  /** The URL used as both broker and result backend. */
  url: string;
  /** The one queue it consumes. */
  queue: string;
  /** Its Web Workers (`-c`). Default 1. */
  concurrency?: number;
}

/**
 * The arguments of {@linkcode celeriacWorker} for the usual test worker:
 * `--app`, `--broker` and `--backend` (the same URL), `-Q`, `-c`, then `more`.
 */
export function celeriacWorkerArgs(place: WorkerPlace, more: string[] = []): string[] {
  return [
    "--app",
    place.app,
    "--broker",
    place.url,
    "--backend",
    place.url,
    "-Q",
    place.queue,
    "-c",
    String(place.concurrency ?? 1),
    ...more,
  ];
}

/** Start a Python Celery worker on `tests/interop/pytasks.py` and wait until it is ready. */
export async function celeryWorker(args: string[], env: Record<string, string>): Promise<Proc> {
  const p = Proc.start(
    "celery worker",
    PYTHON,
    [
      "-m",
      "celery",
      "-A",
      "pytasks",
      "worker",
      "-l",
      "INFO",
      "--without-mingle",
      "--without-gossip",
      ...args,
    ],
    { env: { ...env, PYTHONPATH: `${ROOT}tests/interop` }, cwd: `${ROOT}tests/interop` },
  );
  return await readyOrStopped(p, / ready\./, 60_000);
}

/**
 * Wait until `p` prints `re`; when it never does (timed out, exited), stop
 * it, since the caller gets no handle to stop it, and rethrow the wait's error.
 */
async function readyOrStopped(p: Proc, re: RegExp, timeoutMs: number): Promise<Proc> {
  try {
    await p.waitFor(re, timeoutMs);
  } catch (err) {
    // Why it never became ready is the error to report, not a failure to stop it.
    await p.stop().catch(() => {});
    throw err;
  }
  return p;
}

/** Run a Python script from tests/interop and return its stdout (fails on a non-zero exit). */
export async function runPython(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<string> {
  const out = await new Deno.Command(PYTHON, {
    args: [script, ...args],
    cwd: `${ROOT}tests/interop`,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${script} failed:\n${stdout}\n${new TextDecoder().decode(out.stderr)}`);
  }
  return stdout;
}

/** Run a Deno script with the project's configuration; fails the test on a non-zero exit. */
export async function runDenoScript(script: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`${script} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}

/** What {@linkcode runCli} collected from a finished command line run. */
export interface CliOutput {
  /** The exit code. */
  code: number;
  /** All of stdout. */
  stdout: string;
  /** All of stderr. */
  stderr: string;
}

/** Options for {@linkcode runCli}. */
export interface RunCliOptions {
  /** Deno's permission flags. Default `["-A"]`. */
  permissions?: string[];
  /** Variables set over the test's environment. Default none. */
  env?: Record<string, string>;
  /** How a worker or dashboard comes by its V8 flags (see {@link workerEnv}). Default `"preset"`. */
  v8Start?: V8Start;
}

/**
 * Run the command line (`deno run -A worker.ts ...args`) in the repository
 * root with stdin closed; resolves when it exits, with its code and output.
 */
export async function runCli(args: string[], options: RunCliOptions = {}): Promise<CliOutput> {
  const denoArgs = ["run", ...options.permissions ?? ["-A"], "worker.ts", ...args];
  const out = await new Deno.Command(Deno.execPath(), {
    args: denoArgs,
    cwd: ROOT,
    env: workerEnv(denoArgs, options.env, options.v8Start),
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}
