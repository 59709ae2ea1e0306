/**
 * Interop plumbing shared by the tests with real Python Celery: a Celeriac
 * worker on the interop tasks (tests/interop/tasks.ts), the environment of
 * Python processes on tests/interop/pytasks.py, the `celery` command line
 * (several commands in one Python process, tests/interop/pycli.py),
 * the Python client script (tests/interop/pyclient.py) with its outcomes,
 * and checks the RabbitMQ and Redis interop tests share.
 */

import assert from "node:assert/strict";
import { type Celery, TaskError } from "../../mod.ts";
import { pyJsonDumps, pyJsonLoads } from "../../src/protocol/json.ts";
import { celeriacWorker, type Proc, PYTHON, runPython } from "./procs.ts";
import { rawRedis, REDIS_URL } from "./redis.ts";

const INTEROP_DIR = new URL("../interop/", import.meta.url).pathname;

/** One call's outcome as tests/interop/pyclient.py reports it. */
export interface PyOutcome {
  ok?: unknown;
  error?: { type: string; module: string; args: unknown[] };
  id: string;
}

/**
 * The environment of a Python process on tests/interop/pytasks.py: its broker
 * and backend, default queue, Redis key prefix (kombu `global_keyprefix`, none
 * by default) and the Redis its marker tasks write to.
 */
export function pythonEnv(
  urls: { broker: string; backend: string },
  queue: string,
  keyPrefix?: string,
): Record<string, string> {
  return {
    CELERY_BROKER_URL: urls.broker,
    CELERY_RESULT_BACKEND: urls.backend,
    ...(keyPrefix === undefined ? {} : { INTEROP_KEYPREFIX: keyPrefix }),
    INTEROP_QUEUE: queue,
    INTEROP_MARKER_REDIS: REDIS_URL,
  };
}

/**
 * Start a Celeriac worker on tests/interop/tasks.ts (2 Web Workers unless
 * `extra` says `-c`), with `env` added to its environment.
 */
export function interopWorker(
  urls: { broker: string; backend: string },
  queue: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<Proc> {
  return celeriacWorker([
    "--app",
    "./tests/interop/tasks.ts",
    "--broker",
    urls.broker,
    "--backend",
    urls.backend,
    "-Q",
    queue,
    "-c",
    "2",
    "--loglevel",
    "INFO", // the interop tests read the per-task lines
    ...extra,
  ], { INTEROP_MARKER_REDIS: REDIS_URL, ...env });
}

/** Send `calls` from a Python Celery client (env gives broker, backend, queue) and collect outcomes. */
export async function pythonCalls(
  env: Record<string, string>,
  calls: unknown[],
): Promise<PyOutcome[]> {
  return pyJsonLoads(await runPython("pyclient.py", [pyJsonDumps(calls)], env)) as PyOutcome[];
}

/**
 * Check the TaskErrors a Celeriac client gets for Python's `py.fail("boom")`
 * (a builtin ValueError with its traceback) and `py.custom_fail()` (a
 * `pytasks.CustomError` with two arguments).
 */
export async function assertPythonFailures(
  failed: { get(options: { timeout: number }): Promise<unknown> },
  custom: { get(options: { timeout: number }): Promise<unknown> },
): Promise<void> {
  await assert.rejects(failed.get({ timeout: 15_000 }), (e: unknown) => {
    assert.ok(e instanceof TaskError);
    assert.equal(e.excType, "ValueError");
    assert.equal(e.excModule, "builtins");
    assert.deepEqual(e.excMessage, ["boom"]);
    assert.match(e.traceback ?? "", /raise ValueError\(message\)/);
    assert.equal(e.code, "TASK_FAILED");
    return true;
  });
  await assert.rejects(custom.get({ timeout: 15_000 }), (e: unknown) => {
    assert.ok(e instanceof TaskError);
    assert.equal(e.excType, "CustomError");
    assert.equal(e.excModule, "pytasks");
    assert.deepEqual(e.excMessage, ["custom", 42]);
    return true;
  });
}

/**
 * Send `n` `tasks.record` calls through `app` to a queue a Python and a
 * Celeriac worker share, and check that each ran exactly once (by the
 * `marker` list in Redis), some on each side, and that each result names the
 * side that ran it. The task ids are added to `taskIds` for cleanup.
 */
export async function assertSharedQueueRunsOnce(
  app: Celery,
  marker: string,
  n: number,
  taskIds: string[],
): Promise<void> {
  const redis = await rawRedis();
  try {
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => app.sendTask<string>("tasks.record", [i, marker, 0.005])),
    );
    taskIds.push(...results.map((r) => r.id));
    const values = await Promise.all(results.map((r) => r.get({ timeout: 60_000 })));
    const ran = await redis.lrange(marker, 0, -1);
    assert.equal(ran.length, n, "each task recorded exactly once");
    const numbers = ran.map((s) => Number(s.split(":")[1])).sort((a, b) => a - b);
    assert.deepEqual(numbers, Array.from({ length: n }, (_, i) => i));
    assert.ok(ran.some((s) => s.startsWith("py:")), "the Python worker ran some");
    assert.ok(ran.some((s) => s.startsWith("ts:")), "the Celeriac worker ran some");
    assert.deepEqual(
      values.slice().sort(),
      ran.slice().sort(),
      "each result names the worker that ran it",
    );
  } finally {
    await redis.quit();
  }
}

/**
 * Deno.test options of a test that uses {@linkcode SharedProcs}: the processes outlive the test,
 * and its resource and op sanitizers would call them leaks.
 */
export const SHARED_PROCS = { sanitizeResources: false, sanitizeOps: false } as const;

/**
 * Worker processes several tests of a file share (on queues of their own): all started together
 * on the first {@linkcode SharedProcs.get}, stopped by {@linkcode SharedProcs.stop} from the
 * file's clean-up test. A worker start costs a second or two of CPU.
 */
export class SharedProcs<K extends string> {
  readonly #start: () => Record<K, Promise<Proc>>;
  #started: Promise<Record<K, Proc>> | null = null;

  /** `start` starts every process, each under its name. */
  constructor(start: () => Record<K, Promise<Proc>>) {
    this.#start = start;
  }

  /** The processes, started on the first call; when one fails to start, the others are stopped. */
  get(): Promise<Record<K, Proc>> {
    this.#started ??= (async () => {
      const entries = Object.entries(this.#start()) as [K, Promise<Proc>][];
      const settled = await Promise.allSettled(entries.map(([, p]) => p));
      const failed = settled.find((r) => r.status === "rejected");
      if (!failed) {
        return Object.fromEntries(
          entries.map(([k], i) => [k, (settled[i] as PromiseFulfilledResult<Proc>).value]),
        ) as Record<K, Proc>;
      }
      await Promise.all(settled.map((r) => r.status === "fulfilled" ? r.value.stop() : null));
      throw (failed as PromiseRejectedResult).reason;
    })();
    return this.#started;
  }

  /** Stop them all, if they were started. */
  async stop(): Promise<void> {
    const procs = await this.#started?.catch(() => null);
    if (procs) await Promise.all(Object.values<Proc>(procs).map((p) => p.stop()));
  }
}

/** How Python's `celery -A pytasks …` exited and what it printed. */
export interface CeleryCliOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * One Python process that runs Python's `celery -A pytasks <args>` commands
 * in turn through Celery's own entry point (tests/interop/pycli.py), with the
 * environment it was started with: a command costs its work, not a Python
 * start-up. Commands run one at a time, in the order they are asked for.
 */
export class CeleryCliSession {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  readonly #stderr: Promise<string>;
  #last: Promise<unknown> = Promise.resolve();

  /** Start the Python process (PYTHONPATH added to `env`). */
  constructor(env: Record<string, string>) {
    this.#child = new Deno.Command(PYTHON, {
      args: ["pycli.py"],
      cwd: INTEROP_DIR,
      env: { ...env, PYTHONPATH: INTEROP_DIR },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#lines = lines(this.#child.stdout)[Symbol.asyncIterator]();
    this.#stderr = new Response(this.#child.stderr).text();
  }

  /** Run `celery -A pytasks <args>`: how it exited and what it printed. */
  run(args: string[]): Promise<CeleryCliOutput> {
    const next = this.#last.then(async () => {
      await this.#stdin.write(
        new TextEncoder().encode(JSON.stringify(["-A", "pytasks", ...args]) + "\n"),
      );
      const line = await this.#lines.next();
      if (line.done) throw new Error(`pycli.py ended:\n${await this.#stderr}`);
      return JSON.parse(line.value) as CeleryCliOutput;
    });
    this.#last = next.catch(() => {});
    return next;
  }

  /** End the process (after the commands under way) and wait for it. */
  async close(): Promise<void> {
    await this.#last;
    await this.#stdin.close();
    while (!(await this.#lines.next()).done) {
      // nothing more is asked: the process ends at the end of its stdin
    }
    await this.#child.status;
    await this.#stderr;
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
    }
  }
}
