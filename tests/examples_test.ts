/** Every example runs, with the permissions the README gives it. */

import assert from "node:assert/strict";
import { celeriacWorker, Proc, PYTHON } from "./helpers/procs.ts";
import { rawRedis, REDIS_URL } from "./helpers/redis.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function run(cmd: string, args: string[], env: Record<string, string>, cwd = ROOT) {
  const out = await new Deno.Command(cmd, { args, env, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(
    out.success,
    `${cmd} ${args.join(" ")} failed:\n${text}\n${new TextDecoder().decode(out.stderr)}`,
  );
  return text;
}

Deno.test("examples: the demo runs on the embedded KV store with narrow permissions", async () => {
  const out = await run(Deno.execPath(), [
    "run",
    "--allow-read=.",
    "examples/demo.ts",
  ], {});
  assert.match(out, /add\(2, 3\)\s+= 5/);
  assert.match(out, /mul\(x=6, y=7\)\s+= 42/);
  assert.match(out, /18446744073709551616n/);
  assert.match(out, /TaskError builtins\.ValueError: on purpose/);
  assert.match(out, /1000 × add\s+= 999000/);
  assert.match(out, /"failed":1/);
});

Deno.test("examples: the demo without --allow-read says which flag, once, before any Web Worker starts", async () => {
  // Printed Deno's 'Uncaught (in worker "celeriac-task-runner") Requires read access to
  // ".../src/worker/runner.ts"' once per Web Worker, then an uncaught 'A Web Worker failed'.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "examples/demo.ts"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, stderr);
  assert.doesNotMatch(stderr, /Uncaught \(in worker/);
  assert.match(
    stderr,
    new RegExp(
      `The pool's Web Workers cannot load .*runner\\.ts.*: the worker process has no read ` +
        `access to (it|them)\\. Run deno with --allow-read=${ROOT.replace(/\/$/, "")}\n`,
    ),
  );
});

Deno.test("examples: permission sandboxes deny what a task was not granted", async () => {
  const out = await run(Deno.execPath(), [
    "run",
    "--allow-read=.",
    "--allow-env",
    "examples/sandbox.ts",
  ], {});
  assert.match(out, /word_count\("poem\.txt"\)\s+= 13/);
  assert.match(out, /fib\(50\)\s+= 12586269025/);
  assert.match(
    out,
    /peek\("deno\.json"\)\s+→ PermissionDenied: Task sandbox\.peek\[.+\] is not allowed read access to "deno\.json"/,
  );
  assert.match(out, /home\(\)\s+→ PermissionDenied: .* not allowed env access to "HOME"/);
  assert.match(out, /again = 13/);
  assert.match(out, /"succeeded":3,"failed":2/);
});

/**
 * The Redis examples run on a database of their own: they print no task ids,
 * so the results that appear while they run are deleted afterwards, which on
 * database 0 took the results of test files running beside them (CI runs
 * four at a time: interop_canvas's Python client then waited for results
 * that were gone).
 */
const EXAMPLES_REDIS = (() => {
  const u = new URL(REDIS_URL);
  u.pathname = "/9";
  return u.href;
})();

/** What the Redis examples leave in their database: result keys, queue bindings, pidbox bindings. */
interface RedisTraces {
  results: Set<string>;
  pidbox: Set<string>;
}

const PIDBOX_BINDING = "_kombu.binding.celery.pidbox";

async function redisTraces(): Promise<RedisTraces> {
  const redis = await rawRedis(EXAMPLES_REDIS);
  try {
    return {
      results: new Set<string>(await redis.keys("celery-task-meta-*")),
      pidbox: new Set<string>(await redis.smembers(PIDBOX_BINDING)),
    };
  } finally {
    await redis.quit();
  }
}

/**
 * The example programs do not print task ids, so what appeared while a test
 * ran (results, the queue's binding, workers' pidbox bindings) is deleted.
 */
async function dropTraces(before: RedisTraces, queues: string[]): Promise<void> {
  const now = await redisTraces();
  const redis = await rawRedis(EXAMPLES_REDIS);
  try {
    const results = [...now.results].filter((k) => !before.results.has(k));
    const pidbox = [...now.pidbox].filter((m) => !before.pidbox.has(m));
    if (results.length) await redis.del(...results);
    if (pidbox.length) await redis.srem(PIDBOX_BINDING, ...pidbox);
    await redis.del(...queues.map((q) => `_kombu.binding.${q}`));
  } finally {
    await redis.quit();
  }
}

/** The Python example worker (examples/python/tasks.py), solo pool. */
function pythonExampleWorker(env: Record<string, string>): Proc {
  return Proc.start("python example worker", PYTHON, [
    "-m",
    "celery",
    "-A",
    "tasks",
    "worker",
    "-l",
    "INFO",
    "-P",
    "solo",
    "--without-mingle",
    "--without-gossip",
  ], { env, cwd: `${ROOT}examples/python` });
}

Deno.test("examples: revoke a waiting and a running task, with narrow permissions", async () => {
  const out = await run(Deno.execPath(), [
    "run",
    "examples/revoke.ts",
  ], {});
  assert.match(out, /countdown task: REVOKED, TaskRevokedError\("revoked"\)/);
  assert.match(out, /running task: {3}REVOKED, TaskRevokedError\("terminated"\)/);
  assert.match(out, /"revoked":2/);
});

/**
 * Both directions at once: the Celeriac example worker (one Web Worker) on CELERY_DEFAULT_QUEUE
 * with examples/python/call_celeriac.py calling it, and the Python example worker on PYTHON_QUEUE
 * with examples/call_python.ts (`--allow-net=<port>`) calling it.
 */
async function callEachOther(env: Record<string, string>, port: number): Promise<void> {
  const py = pythonExampleWorker(env);
  const ts = celeriacWorker(["--app", "./examples/tasks.ts", "-c", "1"], env);
  try {
    await Promise.all([ts, py.waitFor(/ ready\./, 30_000)]);
    const [fromPython, fromCeleriac] = await Promise.all([
      run(PYTHON, ["call_celeriac.py"], env, `${ROOT}examples/python`),
      run(Deno.execPath(), [
        "run",
        `--allow-net=127.0.0.1:${port}`,
        "--allow-env",
        "examples/call_python.ts",
      ], env),
    ]);
    assert.match(fromPython, /tasks\.add\(2, 3\) = 5/);
    assert.match(fromPython, /tasks\.mul\(x=6, y=7\) = 42/);
    assert.match(fromPython, /tasks\.fail raised ValueError: raised in TypeScript/);
    assert.match(fromCeleriac, /py\.mul\(6, 7\) = 42/);
    assert.match(fromCeleriac, /py\.withdraw\(100, 30\) = 70/);
    assert.match(fromCeleriac, /raised tasks\.InsufficientFunds\[10,30\]/);
  } finally {
    await Promise.all([py.stop(), ts.then((w) => w.stop(), () => {})]);
  }
}

Deno.test(
  { name: "examples: Python and Celeriac call each other's example tasks", ignore: WITHOUT_CELERY },
  async () => {
    const queue = `ex-redis-${crypto.randomUUID().slice(0, 8)}`;
    const env = {
      CELERY_BROKER_URL: EXAMPLES_REDIS,
      CELERY_RESULT_BACKEND: EXAMPLES_REDIS,
      CELERY_DEFAULT_QUEUE: queue,
      PYTHON_QUEUE: `${queue}-py`,
    };
    const before = await redisTraces();
    try {
      await callEachOther(env, 6379);
    } finally {
      await dropTraces(before, [queue, `${queue}-py`]);
    }
  },
);

Deno.test({
  name: "examples: Python and Celeriac call each other on RabbitMQ with the rpc:// backend",
  ignore: WITHOUT_CELERY || WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("examples");
  const queue = `ex-amqp-${crypto.randomUUID().slice(0, 8)}`;
  const env = {
    CELERY_BROKER_URL: `amqp://guest:guest@127.0.0.1:5672/${vhost.name}`,
    CELERY_RESULT_BACKEND: "rpc://",
    CELERY_DEFAULT_QUEUE: queue,
    PYTHON_QUEUE: `${queue}-py`,
  };
  try {
    await callEachOther(env, 5672);
  } finally {
    await vhost.remove();
  }
});
