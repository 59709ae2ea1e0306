/**
 * The command line's exit codes, one scheme (README "Exit codes"): 0 done,
 * 1 the task failed or was revoked, 2 a usage error, 3 no result within the
 * timeout, 69 the broker or backend unreachable or no worker replied, 70
 * anything else — on a Redis of the test's own, stopped for "unreachable",
 * and next to Python Celery 5.2's CLI where it has the same case. Before,
 * a failed task, a broker that was down and a bad flag value all exited 1.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { EXIT_CODES, exitCodeFor, UsageError } from "../src/cli/exit_codes.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { runCliCases } from "./helpers/cli_batch.ts";
import { CeleryCliSession } from "./helpers/interop.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { PYTHON } from "./helpers/procs.ts";
import { workerEnv } from "./helpers/worker_env.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const TASKS = "./tests/interop/tasks.ts";

/** How `deno run -A worker.ts ARGS` exited, and its stderr. */
async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; err: string }> {
  const denoArgs = ["run", "-A", "worker.ts", ...args];
  const o = await new Deno.Command(Deno.execPath(), {
    args: denoArgs,
    cwd: ROOT,
    env: workerEnv(denoArgs, { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "", ...env }),
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).output();
  return { code: o.code, err: new TextDecoder().decode(o.stderr) };
}

/**
 * Exit codes and stderr expected of command lines, collected with `expect()`
 * and checked by `check()`, which runs them all in one process
 * (helpers/cli_batch.ts), each as `deno run -A worker.ts ARGS` would.
 */
class ExpectedCodes {
  #cases: { args: string[]; code: number; err?: RegExp; env: Record<string, string> }[] = [];

  expect(args: string[], code: number, err?: RegExp, env: Record<string, string> = {}): void {
    this.#cases.push({
      args,
      code,
      err,
      env: { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "", ...env },
    });
  }

  async check(): Promise<void> {
    const cases = this.#cases.splice(0);
    const outcomes = await runCliCases(cases);
    cases.forEach(({ args, code, err }, i) => {
      const ran = outcomes[i];
      assert.equal(ran.code, code, `${args.join(" ")}: exited ${ran.code}\n${ran.err}`);
      if (err) assert.match(ran.err, err, args.join(" "));
    });
  }
}

/** A broker nobody listens on: the commands below must refuse their flags before using it. */
const NOWHERE = ["-b", "redis://127.0.0.1:1/0", "--backend", "redis://127.0.0.1:1/0"];

/** Store a task's outcome as a worker would. */
async function stored(url: string, status: "SUCCESS" | "FAILURE" | "REVOKED"): Promise<string> {
  const app = new Celery({ broker: url, backend: url });
  try {
    const taskId = crypto.randomUUID();
    const result = status === "SUCCESS" ? 5 : {
      exc_type: status === "FAILURE" ? "ValueError" : "TaskRevokedError",
      exc_message: ["x"],
      exc_module: status === "FAILURE" ? "builtins" : "celery.exceptions",
    };
    const meta = encodeResultMeta({ taskId, status, result });
    await (await app.resultBackend()).store([{ taskId, status, meta }]);
    return taskId;
  } finally {
    await app.close();
  }
}

Deno.test("exit codes: a usage error is 2, an unreachable broker 69, anything else 70", () => {
  const down = new BrokerConnectionError("redis://127.0.0.1:1/0", new Error("refused"));
  assert.equal(exitCodeFor(new UsageError("--limit needs a whole number"), "parked"), 2);
  assert.equal(exitCodeFor(new UsageError("--concurrency needs a number"), "worker"), 2);
  assert.equal(exitCodeFor(down, "call"), EXIT_CODES.unavailable);
  const wrapped = new Error("publish failed", { cause: down });
  assert.equal(exitCodeFor(wrapped, "inspect"), 69, "found through the cause");
  assert.equal(exitCodeFor(new RangeError("unforeseen"), "result"), EXIT_CODES.internal);
  // worker, beat and dashboard keep their documented status 1 for a stop on an error.
  for (const command of ["worker", "beat", "dashboard"]) {
    assert.equal(exitCodeFor(down, command), 1);
    assert.equal(exitCodeFor(new Error("unforeseen"), command), 1);
  }
  assert.equal(new UsageError("x").name, "UsageError");
  assert.equal(new UsageError("x").code, "CLI_USAGE");
  assert.ok(new UsageError("x") instanceof TypeError);
});

Deno.test("exit codes: a -b / --backend / --beat-store of no supported scheme is 2; a setting's, 70", async () => {
  const c = new ExpectedCodes();
  // Were 70 (call, result, status) and 1 (worker, beat): the transports' TypeError once
  // connecting.
  const broker = /--broker: Unsupported broker URL "ftp:\/\/…": use redis:\/\//;
  c.expect(["status", "-b", "ftp://x", "-t", "0.3"], 2, broker);
  c.expect(["call", "tasks.add", "--app", TASKS, "-b", "ftp://x"], 2, broker);
  c.expect(["worker", "--app", TASKS, "-b", "ftp://x"], 2, broker);
  c.expect(
    ["result", crypto.randomUUID(), ...NOWHERE, "--backend", "ftp://x"],
    2,
    /--backend: Unsupported result backend URL "ftp:\/\/…": use redis:\/\//,
  );
  c.expect(["status", "-b", "localhost:6379"], 2, /--broker: .* has no scheme/);
  const store = /--beat-store: Unsupported beat store URL "(ftp|amqp):\/\/…": use redis:\/\//;
  c.expect(["beat", "--app", TASKS, ...NOWHERE, "--beat-store", "ftp://x"], 2, store);
  c.expect(["beat", "--app", TASKS, ...NOWHERE, "--beat-store", "amqp://x"], 2, store);
  c.expect(
    ["worker", "--app", TASKS, ...NOWHERE, "--fail-fast", "-B", "--beat-store", "ftp://x"],
    2,
    store,
  );
  // A setting, not a flag: any other error (70), the message says what.
  const env = { CELERY_BROKER_URL: "foo://x" };
  c.expect(["status", "-t", "0.3"], 70, /Unsupported broker URL "foo:\/\/…"/, env);
  await c.check();
});

Deno.test({
  name: "exit codes: an amqp:// broker without --beat-store is 2 for schedule, beat and worker -B",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // schedule exited 70, beat and worker -B 1, with the same message: a setting to change.
  const c = new ExpectedCodes();
  const needs = /Beat needs a store for its leader lease .* set beatStore to a redis:\/\/ or kv:/;
  // schedule and beat refuse it before connecting; the worker connects to its broker first.
  const nowhere = ["--app", TASKS, "-b", "amqp://guest:guest@127.0.0.1:1//"];
  c.expect(
    ["schedule", "add", "e1", "--task", "tasks.add", "-a", "[1, 2]", "--every", "10s", ...nowhere],
    2,
    needs,
  );
  c.expect(["beat", ...nowhere], 2, needs);
  // Its own queue: the shared server's default queue may hold other tests' messages.
  const queue = `exit-codes-beat-${crypto.randomUUID()}`;
  const rabbit = ["--app", TASKS, "-b", "amqp://guest:guest@127.0.0.1:5672//", "-Q", queue];
  c.expect(["worker", "-B", "--fail-fast", ...rabbit], 2, needs);
  await c.check();
});

Deno.test("exit codes: a URL missing the // after its scheme is 2, saying so; a setting's, 70", async () => {
  const c = new ExpectedCodes();
  // `-b redis:/127.0.0.1:6379/0` (one slash) exited 1 after the banner with
  // `Invalid Redis database "127.0.0.1:6379/0"`; `amqp:/127.0.0.1//` connected to localhost and
  // blamed a vhost "127.0.0.1//"; `kv:q.db` was "Not a Deno KV URL". None said what to change.
  c.expect(
    ["worker", "--app", TASKS, "-b", "redis:/127.0.0.1:1/0", "--fail-fast"],
    2,
    /^error: --broker: The broker URL lacks the \/\/ after "redis:": write it as redis:\/\/127\.0\.0\.1:1\/0\n$/,
  );
  c.expect(
    ["status", "-b", "amqp:/guest:s3cret@127.0.0.1:1//", "-t", "0.3"],
    2,
    /^error: --broker: .* lacks the \/\/ after "amqp:": write it as amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1\/\/\n$/,
  );
  c.expect(
    ["result", crypto.randomUUID(), ...NOWHERE, "--backend", "rpc:"],
    2,
    /--backend: The result backend URL lacks the \/\/ after "rpc:": write it as rpc:\/\//,
  );
  c.expect(
    ["beat", "--app", TASKS, ...NOWHERE, "--beat-store", "kv:beat.db"],
    2,
    /--beat-store: The beat store URL lacks the \/\/ after "kv:": write it as kv:\/\/beat\.db/,
  );
  const env = { CELERY_BROKER_URL: "redis:127.0.0.1:1/0" };
  c.expect(["status", "-t", "0.3"], 70, /lacks the \/\/ after "redis:"/, env);
  await c.check();
});

Deno.test("exit codes: a -b / --backend / --beat-store its transport's parser refuses is 2", async () => {
  const c = new ExpectedCodes();
  // Were 1 (worker, after its banner) and 70 (call, result, status): parsed once connecting.
  c.expect(
    ["worker", "--app", TASKS, "-b", "redis://127.0.0.1:1/abc", "--fail-fast"],
    2,
    /^error: --broker: Invalid Redis database "abc" in "redis:\/\/127\.0\.0\.1:1\/abc": use a number, e\.g\. \/0\n$/,
  );
  c.expect(
    ["call", "tasks.add", "--app", TASKS, "-b", "amqp://127.0.0.1:1//?heartbeat=abc"],
    2,
    /^error: --broker: Invalid heartbeat "abc"/,
  );
  c.expect(
    ["status", "-b", "kv://q.db?visibility=3", "-t", "0.3"],
    2,
    /^error: --broker: Unknown option "visibility"/,
  );
  c.expect(
    ["result", crypto.randomUUID(), ...NOWHERE, "--backend", "redis://127.0.0.1:1/x"],
    2,
    /^error: --backend: Invalid Redis database "x"/,
  );
  c.expect(
    ["beat", "--app", TASKS, ...NOWHERE, "--beat-store", "sentinel://127.0.0.1:1"],
    2,
    /^error: --beat-store: Sentinel URL .* names no master/,
  );
  // A setting, not a flag: still 70.
  const env = { CELERY_BROKER_URL: "redis://127.0.0.1:1/abc" };
  c.expect(["status", "-t", "0.3"], 70, /Invalid Redis database "abc"/, env);
  await c.check();
});

Deno.test("exit codes: an empty -b / --backend / --beat-store is 2, for every command", async () => {
  const c = new ExpectedCodes();
  // As -b "$BROKER" with the variable unset gives. Was 70 (call, status, purge: the broker's
  // "has no scheme" once connecting), 1 (dashboard, after retrying), or no error at all
  // (--backend "": no result backend; --beat-store "": the broker's store).
  const broker = /--broker is empty: give a broker URL \(-b redis:\/\/.*or leave -b out/;
  const empty = ["-b", ""];
  c.expect(["status", ...empty, "-t", "0.3"], 2, broker);
  c.expect(["inspect", "ping", ...empty, "-t", "0.3"], 2, broker);
  c.expect(["purge", "-f", ...empty], 2, broker);
  c.expect(["parked", ...empty], 2, broker);
  c.expect(["call", "tasks.add", "--app", TASKS, ...empty], 2, broker);
  c.expect(["result", crypto.randomUUID(), ...empty], 2, broker);
  c.expect(["worker", "--app", TASKS, ...empty, "--fail-fast"], 2, broker);
  c.expect(["beat", "--app", TASKS, ...empty, "--fail-fast"], 2, broker);
  c.expect(["dashboard", ...empty, "--port", "0"], 2, broker);
  c.expect(["schedule", "list", "--app", TASKS, ...empty], 2, broker);
  c.expect(["events", "--dump", ...empty], 2, broker);
  c.expect(["worker", "--app", TASKS, "--broker=", "--fail-fast"], 2, broker);
  const backend = /--backend is empty: give a result backend URL .*or leave --backend out/;
  c.expect(["result", crypto.randomUUID(), ...NOWHERE, "--backend", ""], 2, backend);
  c.expect(["call", "tasks.add", "--app", TASKS, ...NOWHERE, "--backend", ""], 2, backend);
  c.expect(
    ["worker", "--app", TASKS, ...NOWHERE, "--backend", "", "--fail-fast"],
    2,
    backend,
  );
  const store = /--beat-store is empty: give a beat store URL .*or leave --beat-store out/;
  c.expect(["beat", "--app", TASKS, ...NOWHERE, "--beat-store", ""], 2, store);
  c.expect(
    ["worker", "--app", TASKS, ...NOWHERE, "--fail-fast", "-B", "--beat-store", ""],
    2,
    store,
  );
  await c.check();
});

Deno.test("exit codes: --result-backend, Celery's name, is --backend", async () => {
  const c = new ExpectedCodes();
  // Was 2 for each: "unknown option --result-backend", with no suggestion.
  const id = crypto.randomUUID();
  const down = "redis://127.0.0.1:1/0";
  // Used: the backend nobody listens on is tried (69), as with --backend.
  c.expect(["result", id, "-b", down, "--result-backend", down, "-t", "0.3"], 69);
  c.expect(
    ["result", id, "-b", down, "--result-backend", "ftp://x"],
    2,
    /--result-backend: Unsupported result backend URL "ftp:\/\/…"/,
  );
  c.expect(
    ["result", id, "-b", down, "--result-backend", ""],
    2,
    /--result-backend is empty: give a result backend URL/,
  );
  c.expect(
    ["result", id, "-b", down, "--backend", down, "--result-backend", "redis://127.0.0.1:2/0"],
    2,
    /--backend and --result-backend are the same setting: give one of them/,
  );
  await c.check();
});

Deno.test("exit codes: worker flag values its library parsers refuse are usage errors (2)", async () => {
  const c = new ExpectedCodes();
  const worker = ["worker", "--app", TASKS, ...NOWHERE, "--fail-fast"];
  // Were 1: the worker's parsers throw a TypeError, which a stopped worker exits 1 for.
  c.expect([...worker, "--autoscale", "x"], 2, /--autoscale needs MAX,MIN or MAX/);
  c.expect([...worker, "--autoscale", "0"], 2, /--autoscale needs a maximum of at least 1/);
  c.expect([...worker, "--autoscale", "5000"], 2, /at most 1024 Web Workers/);
  c.expect([...worker, "--task-permissions", "{bad"], 2, /not valid JSON/);
  c.expect([...worker, "--heartbeat-interval", "1e7"], 2, /--heartbeat-interval needs at/);
  // Celery's pool names said only 'must be "threads" or "inline"'.
  c.expect(
    [...worker, "-P", "prefork"],
    2,
    /--pool must be "threads" or "inline", got "prefork": Celery's prefork pool is -P threads here/,
  );
  c.expect([...worker, "-P", "solo"], 2, /Celery's solo pool is -P inline here/);
  c.expect([...worker, "-P", "gevent"], 2, /got "gevent": use -P inline: it runs async/);
  // Combinations the worker refused only once connected (exit 1, after the broker's error).
  c.expect([...worker, "-P", "inline", "--autoscale", "3"], 2, /-P inline has none of/);
  c.expect(
    [...worker, "-P", "inline", "--task-permissions", "none"],
    2,
    /cannot sandbox them/,
  );
  // Tasks that set permissions (was 1, once connected): refused before connecting, saying why.
  c.expect(
    ["worker", "--app", "./examples/sandbox_tasks.ts", ...NOWHERE, "--fail-fast", "-P", "inline"],
    2,
    /-P inline .*cannot sandbox them, and sandbox\.word_count, sandbox\.peek, sandbox\.fib, sandbox\.home set permissions: use -P threads/,
  );
  await c.check();
});

Deno.test("exit codes: a --logfile that cannot be opened is 2, naming the flag and the directory", async () => {
  const c = new ExpectedCodes();
  // Was 1 with "error: No such file or directory (os error 2): open '…'": no flag, no fix.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-logfile-" });
  try {
    const logfile = `${dir}/missing/worker.log`;
    const refused = new RegExp(
      `^error: --logfile ${logfile}: cannot open it for appending: .*\\(create its directory, ` +
        `${dir}/missing, first\\)\n$`,
    );
    c.expect(["worker", "--app", TASKS, ...NOWHERE, "--logfile", logfile], 2, refused);
    c.expect(["beat", "--app", TASKS, ...NOWHERE, "--logfile", logfile], 2, refused);
    await c.check();
    // A directory that exists is named in no hint: the file is what cannot be made there.
    const proc = await cli(["worker", "--app", TASKS, ...NOWHERE, "--logfile", "/proc/x.log"]);
    assert.equal(proc.code, 2, proc.err);
    assert.match(proc.err, /^error: --logfile \/proc\/x\.log: cannot open it for appending: /);
    assert.doesNotMatch(proc.err, /create its directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("exit codes: dashboard flag values and the address off loopback without auth are 2", async () => {
  const c = new ExpectedCodes();
  const dashboard = ["dashboard", "--app", TASKS, ...NOWHERE, "--port", "0"];
  // Were 1: TypeErrors from src/dashboard, which a stopped dashboard exits 1 for.
  c.expect([...dashboard, "--token", "short"], 2, /--token needs at least 16 characters/);
  c.expect(
    [...dashboard, "--basic-auth", "nocolon"],
    2,
    /--basic-auth needs user:password/,
  );
  c.expect([...dashboard, "--address", "0.0.0.0"], 2, /--address 0\.0\.0\.0 is off the/);
  const maxTasks = /--max-tasks needs a whole number >= 1, got "(0|1\.5)"/;
  c.expect([...dashboard, "--max-tasks", "0"], 2, maxTasks);
  c.expect([...dashboard, "--max-tasks", "1.5"], 2, maxTasks);
  const worker = ["worker", "--app", TASKS, ...NOWHERE, "--fail-fast", "-D", "--port", "0"];
  c.expect([...worker, "--token", "short"], 2, /--token needs at least 16 characters/);
  await c.check();
});

Deno.test("exit codes: schedule add --at notadate is 2", async () => {
  const c = new ExpectedCodes();
  // Was 70: at() threw its BeatEntryError before the conversion around PeriodicTasks.add.
  c.expect(
    ["schedule", "add", "x", "--task", "t", "--at", "notadate", "--app", TASKS, ...NOWHERE],
    2,
    /--at needs a time with an offset, e\.g\. --at 2027-01-01T09:00:00Z, got "notadate"/,
  );
  await c.check();
});

Deno.test({
  name: "exit codes: result, call, inspect, status, purge, parked, events: Redis up, then down",
  ignore: WITHOUT_REDIS,
}, async () => {
  const c = new ExpectedCodes();
  const redis = await PrivateRedis.start();
  try {
    const at = ["-b", redis.url, "--backend", redis.url];
    c.expect(["result", await stored(redis.url, "SUCCESS"), ...at], 0);
    c.expect(["result", await stored(redis.url, "FAILURE"), ...at], 1, /^FAILURE: /);
    c.expect(["result", await stored(redis.url, "REVOKED"), ...at], 1, /^REVOKED: /);
    c.expect(["result", crypto.randomUUID(), ...at, "-t", "0.3"], 3, /^No result for /);
    // Usage errors: an unknown flag, a bad value, a missing argument — all 2, as click's.
    c.expect(["call", "tasks.add", "--app", TASKS, ...at, "--bogus"], 2);
    c.expect(
      ["call", "tasks.add", "--app", TASKS, ...at, "--countdown", "soon"],
      2,
      /--countdown needs seconds, got "soon"/,
    );
    c.expect(["result", ...at], 2, /result needs a task id/);
    c.expect(["result", "some-id", "-b", redis.url], 2, /none is configured/);
    c.expect(["inspect", "ping", ...at, "-t", "abc"], 2, /--timeout needs a number/);
    c.expect(["worker", "--app", TASKS, ...at, "-c", "zero"], 2, /--concurrency needs/);
    // No worker replied: Celery's EX_UNAVAILABLE.
    c.expect(["inspect", "ping", ...at, "-t", "0.3"], 69, /No nodes replied/);
    c.expect(["status", ...at, "-t", "0.3"], 69, /No nodes replied/);
    await c.check();

    await redis.down();
    const refused = /Cannot connect to redis:\/\/127\.0\.0\.1:\d+\/0: connection refused/;
    c.expect(["call", "tasks.add", "--app", TASKS, ...at], 69, refused);
    c.expect(["result", crypto.randomUUID(), ...at, "-t", "0.3"], 69, refused);
    c.expect(["inspect", "ping", ...at, "-t", "0.3"], 69, refused);
    c.expect(["status", ...at, "-t", "0.3"], 69, refused);
    c.expect(["purge", "-f", ...at], 69, refused);
    c.expect(["parked", ...at], 69, refused);
    c.expect(["events", "--dump", ...at], 69, refused);
    // The worker keeps its documented status 1 (README "Broker down at start").
    c.expect(["worker", "--app", TASKS, ...at, "--fail-fast"], 1, refused);
    await c.check();
  } finally {
    await redis.close();
  }
});

Deno.test({
  name: "exit codes: Python Celery's CLI exits the same for a failed task, a bad flag, no reply",
  ignore: WITHOUT_REDIS || WITHOUT_CELERY,
}, async () => {
  const c = new ExpectedCodes();
  const redis = await PrivateRedis.start();
  const env = {
    CELERY_BROKER_URL: redis.url,
    CELERY_RESULT_BACKEND: redis.url,
    INTEROP_QUEUE: "exit-codes",
  };
  const celery = new CeleryCliSession(env);
  try {
    const at = ["-b", redis.url, "--backend", redis.url];
    const cases: [string[], string[], number][] = [
      [["call", "py.mul", "--bogus"], ["call", "py.mul", "--app", TASKS, ...at, "--bogus"], 2],
      [["inspect", "ping", "-t", "0.3"], ["inspect", "ping", ...at, "-t", "0.3"], 69],
      [["inspect", "nosuch"], ["inspect", "nosuch", ...at], 2],
    ];
    for (const [python, ours, code] of cases) {
      const theirs = await celery.run(python);
      assert.equal(theirs.code, code, `celery ${python.join(" ")}: ${theirs.stderr}`);
      c.expect(ours, code);
    }
    // A failed task's `celery result` ends on the uncaught exception (pycli.py would end with
    // it): a process of its own.
    const failed = await stored(redis.url, "FAILURE");
    const theirs = await new Deno.Command(PYTHON, {
      args: ["-m", "celery", "-A", "pytasks", "result", failed],
      cwd: new URL("./interop/", import.meta.url).pathname,
      env: { ...env, PYTHONPATH: new URL("./interop/", import.meta.url).pathname },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(theirs.code, 1, new TextDecoder().decode(theirs.stderr));
    c.expect(["result", failed, ...at], 1);
    await c.check();
  } finally {
    await celery.close();
    await redis.close();
  }
});

Deno.test({
  name: "exit codes: an --app module that throws, or does not parse, is 2, as Celery 5.2's -A",
  ignore: WITHOUT_CELERY,
}, async () => {
  const c = new ExpectedCodes();
  // Celery's -A type catches any exception of the import (celery/bin/celery.py, App.convert)
  // and fails the parameter: click's usage error, 2 — not only a module or attribute not found.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-exit-app-" });
  try {
    const modules: [string, string, string][] = [
      ["throws", 'raise RuntimeError("settings.json is missing")\n', 'throw new Error("x");\n'],
      ["syntax", "def f(:\n", "export const app = (;\n"],
      ["missing_dep", "import nosuchdep\n", 'import "./nosuchdep.ts";\n'],
    ];
    for (const [name, py, ts] of modules) {
      await Deno.writeTextFile(`${dir}/${name}.py`, py);
      await Deno.writeTextFile(`${dir}/${name}.ts`, ts);
      c.expect(
        ["inspect", "ping", "--app", `${dir}/${name}.ts`, ...NOWHERE],
        2,
        /^error: --app /,
      );
    }
    // The Python processes and our batch do not depend on each other: they run at once.
    const python = modules.map(async ([name]) => {
      const theirs = await new Deno.Command(PYTHON, {
        args: ["-m", "celery", "-A", name, "inspect", "ping"],
        cwd: dir,
        env: { PYTHONPATH: dir },
        stdout: "null",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(theirs.stderr);
      assert.equal(theirs.code, 2, `celery -A ${name}: ${said}`);
      assert.match(said, /Unable to load celery application/);
    });
    const outcomes = await Promise.allSettled([...python, c.check()]);
    for (const o of outcomes) if (o.status === "rejected") throw o.reason;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
