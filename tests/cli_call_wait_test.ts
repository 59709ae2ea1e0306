/**
 * `call NAME --wait` against a real worker: it prints the id, then the
 * result as `result` prints it (`--json`: one object), exits 1 for a
 * failure and 3 with the task's last state when no result comes in time —
 * on Redis, and on the rpc:// backend, where it is the one way to get a
 * result from the command line.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { runCall } from "../src/cli/call.ts";
import {
  NO_RESULT_EXIT,
  printOutcome,
  TASK_FAILED_EXIT,
  waitTimeout,
} from "../src/cli/task_outcome.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { celeriacWorker } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const TASKS = "./tests/interop/tasks.ts";

/** A command, how it exited and what it printed. */
interface Ran {
  code: number;
  out: string;
  err: string;
}

async function cli(args: string[]): Promise<Ran> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "worker.ts", ...args],
    cwd: ROOT,
    env: { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

function expect(ran: Ran, code: number, out: RegExp, err: RegExp = /^$/): void {
  const show = `exited ${ran.code}\n--- stdout:\n${ran.out}--- stderr:\n${ran.err}`;
  assert.equal(ran.code, code, show);
  assert.match(ran.out, out, show);
  assert.match(ran.err, err, show);
}

const ID = "[0-9a-f-]{36}";

/**
 * The cases every backend passes: a result, a failure, JSON, and the exit codes. The commands
 * run at once (each its own process and task); the plain no-result run is returned.
 */
async function waits(at: string[], queue: string): Promise<Ran> {
  const call = (...args: string[]) => cli(["call", ...args, "--app", TASKS, ...at]);
  // No worker consumes this queue: the task stays PENDING.
  const idle = `${queue}-idle`;
  const [added, boom, json, failed, late, lateJson] = await Promise.all([
    call("tasks.add", "--args", "[2, 3]", "--queue", queue, "--wait", "-t", "30"),
    call("tasks.fail", "--args", '["boom"]', "--queue", queue, "--wait", "--traceback"),
    call("tasks.add", "--args", "[4, 5]", "--queue", queue, "--wait", "--json"),
    call("tasks.fail", "--args", '["no"]', "--queue", queue, "--wait", "--json"),
    call("tasks.add", "--args", "[1, 1]", "--queue", idle, "--wait", "-t", "0.5"),
    call("tasks.add", "--args", "[2, 2]", "--queue", idle, "--wait", "-t", "0.5", "--json"),
  ]);
  expect(added, 0, new RegExp(`^${ID}\\n5\\n$`));
  expect(
    boom,
    TASK_FAILED_EXIT,
    new RegExp(`^${ID}\\n$`),
    /^FAILURE: ValueError: boom\n[\s\S]*boom/,
  );
  expect(json, 0, /^\{/);
  const meta = JSON.parse(json.out);
  assert.match(meta.task_id, new RegExp(`^${ID}$`));
  assert.deepEqual({ ...meta, task_id: 0 }, { task_id: 0, status: "SUCCESS", result: 9 });
  expect(failed, TASK_FAILED_EXIT, /^\{/);
  const failure = JSON.parse(failed.out);
  assert.equal(failure.status, "FAILURE");
  assert.deepEqual(failure.result, {
    exc_type: "ValueError",
    exc_message: ["no"],
    exc_module: "builtins",
  });
  expect(
    late,
    NO_RESULT_EXIT,
    new RegExp(`^${ID}\\n$`),
    new RegExp(
      `^No result for ${late.out.trim()} within 0\\.5 s \\(still pending, or unknown: ` +
        `check that a worker consumes queue "${idle}"(?: and stores results to \\w+:\\S+)?\\)`,
    ),
  );
  expect(lateJson, NO_RESULT_EXIT, /^\{/);
  assert.deepEqual({ ...JSON.parse(lateJson.out), task_id: 0 }, {
    task_id: 0,
    status: "PENDING",
    timeout: 0.5,
  });
  return late;
}

Deno.test({
  name: "cli call --wait: Redis — the result, a failure (exit 1), no result in time (exit 3)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("cli-wait");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `wait-${crypto.randomUUID().slice(0, 8)}`;
  const at = ["-b", url, "--backend", url];
  const worker = await celeriacWorker(["--app", TASKS, ...at, "-Q", queue, "-c", "1"]);
  try {
    const late = await waits(at, queue);
    // Stored results outlive the command: the timeout says where to read it later.
    const id = late.out.trim();
    assert.match(late.err, new RegExp(`; it may still finish: result ${id}\\n$`));
  } finally {
    await worker.stop();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "cli call --wait: rpc:// — the command that sent the task gets its result",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("call-wait");
  const queue = `wait-${crypto.randomUUID().slice(0, 8)}`;
  const at = ["-b", vhost.url(), "--backend", "rpc://"];
  const worker = await celeriacWorker(["--app", TASKS, ...at, "-Q", queue, "-c", "1"]);
  try {
    await waits(at, queue);
  } finally {
    await worker.stop();
    await vhost.remove();
  }
});

Deno.test("cli call: --wait without a result backend, or -t/--json without --wait, sends nothing", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  try {
    await assert.rejects(
      runCall(app, "tasks.add", { wait: true }),
      /call --wait needs the result backend .*nothing was sent/,
    );
    app.configure({ backend: "kv://:memory:" });
    await assert.rejects(
      runCall(app, "tasks.add", { timeout: "5", json: true }),
      /--timeout, --json go with --wait .*nothing was sent/,
    );
    await assert.rejects(
      runCall(app, "tasks.add", { traceback: true }),
      /^UsageError: --traceback goes with --wait/,
    );
    for (const timeout of ["0", "Infinity", "1e308"]) {
      // Infinity and 1e308 s (Infinity ms) were taken, the task sent, then get() refused them.
      await assert.rejects(
        runCall(app, "tasks.add", { wait: true, timeout }),
        new RegExp(`--timeout needs a (finite )?number of seconds > 0.*, got "${timeout}"`),
      );
    }
    assert.equal(await app.purge("celery"), 0, "nothing sent");
  } finally {
    await app.close();
  }
});

Deno.test("cli call --wait: a task defined with ignoreResult is said to end at the timeout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-call-wait-" });
  try {
    const quiet = await cli([
      "call",
      "t.quiet",
      "--app",
      "./tests/apps/worker_app.ts",
      "-b",
      `kv://${dir}/broker.db`,
      "--wait",
      "-t",
      "0.3",
    ]);
    expect(
      quiet,
      NO_RESULT_EXIT,
      new RegExp(`^${ID}\\n$`),
      /^warning: t\.quiet is defined with ignoreResult: a worker stores no result of it, so --wait ends at the timeout \(0\.3 s\)\nNo result for /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli result: no result in time names the KV file a worker must store to", async () => {
  // A client in another directory reads another KV file: the line named neither file nor queue.
  const dir = `.celeriac-wait-${crypto.randomUUID()}`;
  try {
    const url = `kv://${dir}/results.sqlite`;
    const ran = await cli(["result", crypto.randomUUID(), "-b", url, "-t", "0.2"]);
    expect(
      ran,
      NO_RESULT_EXIT,
      /^$/,
      new RegExp(
        `still pending, or unknown: check that a worker consumes its queue and stores results to ` +
          `kv://${dir}/results\\.sqlite \\(${ROOT}${dir}/results\\.sqlite\\)\\)`,
      ),
    );
  } finally {
    await Deno.remove(`${ROOT}${dir}`, { recursive: true }).catch(() => {});
  }
});

Deno.test("cli result --json: an exception nested 5,000 deep prints cut, not a RangeError", async () => {
  // A hostile or buggy producer's FAILURE: it exited 70 with "Maximum call stack size exceeded".
  const dir = `.celeriac-deep-${crypto.randomUUID()}`;
  const url = `kv://${dir}/results.sqlite`;
  const app = new Celery({ broker: url, backend: url });
  try {
    const id = crypto.randomUUID();
    const deep = "[".repeat(5000) + "]".repeat(5000);
    const meta = `{"status": "FAILURE", "result": {"exc_type": "X", "exc_message": ${deep}, ` +
      `"exc_module": "builtins"}, "traceback": null, "children": [], "task_id": "${id}"}`;
    await (await app.resultBackend()).store([{ taskId: id, status: "FAILURE", meta }]);
    const ran = await cli(["result", id, "--json", "-b", url]);
    expect(ran, TASK_FAILED_EXIT, /"<nested deeper than 1000 levels: not shown>"/);
    assert.equal(JSON.parse(ran.out).result.exc_type, "X");
  } finally {
    await app.close();
    await Deno.remove(`${ROOT}${dir}`, { recursive: true }).catch(() => {});
  }
});

Deno.test("cli result: a timeout past 24.8 days waits for the result (it timed out at once)", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  try {
    const id = crypto.randomUUID();
    // 3,000,000 s: more ms than a timer holds (2^31 - 1); it ended in 0.5 s with exit 2.
    const code = printOutcome(app.asyncResult(id), {
      timeout: waitTimeout({ timeout: "3000000" }),
    });
    await new Promise((r) => setTimeout(r, 300));
    const meta = encodeResultMeta({ taskId: id, status: "SUCCESS", result: 5 });
    await (await app.resultBackend()).store([{ taskId: id, status: "SUCCESS", meta }]);
    assert.equal(await code, 0);
  } finally {
    await app.close();
  }
});

Deno.test("cli call --wait --countdown: the default timeout starts when the task is due", async () => {
  // It counted 10 s from the send, so --countdown 60 --wait could never see a result.
  const mem = ["-b", "kv://:memory:", "--backend", "kv://:memory:", "--wait", "--json"];
  const [late, given] = await Promise.all([
    cli(["call", "t.add", ...mem, "--countdown", "0.8"]),
    cli(["call", "t.add", ...mem, "--countdown", "60", "-t", "0.2"]),
  ]);
  assert.equal(late.code, NO_RESULT_EXIT, late.err);
  assert.equal(JSON.parse(late.out).timeout, 10.8);
  assert.equal(given.code, NO_RESULT_EXIT, given.err);
  assert.equal(JSON.parse(given.out).timeout, 0.2, "a -t given counts from the send");
});

Deno.test("cli call: a broker down gets advice for the command line, not an app setting", async () => {
  // It ended "… or let publishes ride out a longer outage with taskPublishRetryPolicy … (set by
  // the app's broker option (new Celery({ broker }), app.configure() or --broker))".
  const ran = await cli([
    "call",
    "tasks.add",
    "--args",
    "[1, 2]",
    "--app",
    TASKS,
    "-b",
    "redis://127.0.0.1:1/0",
  ]);
  assert.notEqual(ran.code, 0, ran.err);
  assert.match(
    ran.err,
    /Cannot connect to redis:\/\/127\.0\.0\.1:1\/0: .*Check that the broker runs and the URL is right, then run call again \(set by the command line's -b\/--broker\)/,
  );
  assert.doesNotMatch(ran.err, /taskPublishRetryPolicy|new Celery/);
});

Deno.test("cli call: keywords the --app definition cannot take are warned about and sent", async () => {
  // Sent without a word; a worker of that app then failed the task with this TypeError.
  const ran = await cli([
    "call",
    "tasks.add",
    "--kwargs",
    '{"a": 1, "b": 2}',
    "--app",
    TASKS,
    "-b",
    "kv://:memory:",
  ]);
  expect(
    ran,
    0,
    new RegExp(`^${ID}\\n$`),
    /warning: tasks\.add of \.\/tests\/interop\/tasks\.ts cannot take this call: TypeError: tasks\.add\(\) got keyword argument\(s\) a, b, but its handler takes positional arguments only: declare \{ params: \[\.\.\.\] \} or \{ bind: true \} and read ctx\.kwargs; sent anyway/,
  );
  const mul = await cli([
    "call",
    "tasks.mul",
    "--kwargs",
    '{"x": 2, "y": 3}',
    "--app",
    TASKS,
    "-b",
    "kv://:memory:",
  ]);
  assert.doesNotMatch(mul.err, /cannot take this call/, mul.err);
});
