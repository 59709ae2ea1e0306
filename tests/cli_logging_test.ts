/**
 * The command line's output: `--log-format json` (one JSON object per record
 * with hostname, task_id and task_name), `--logfile`, the start-up banner
 * with masked URLs, `--version`, and one-line errors for unknown flags.
 */

import assert from "node:assert/strict";
import { CELERIAC_VERSION as VERSION, Celery } from "../mod.ts";
import { argumentError, closestOption } from "../src/cli/arg_errors.ts";
import { bannerFields } from "../src/cli/banner.ts";
import { maskPassword } from "../src/broker/errors.ts";
import { jsonLogFormatter } from "../src/cli/log_output.ts";
import { parseLogFormat } from "../worker.ts";
import { parseArgs } from "node:util";
import { runCliCases } from "./helpers/cli_batch.ts";
import { Proc, runCli } from "./helpers/procs.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("cli logging: the JSON formatter writes task id, name and hostname as fields", () => {
  const fields = { hostname: "celeriac@web1" };
  const format = jsonLogFormatter(fields);
  const line = format({
    category: ["celeriac", "worker"],
    level: "info",
    timestamp: Date.UTC(2026, 0, 2, 3, 4, 5),
    message: ["Task ", "tasks.add", "[", "t1", "] succeeded in ", 0.5, "s"],
    rawMessage: "Task {name}[{id}] succeeded in {seconds}s",
    properties: { name: "tasks.add", id: "t1", seconds: 0.5 },
  });
  assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"), "one line per record");
  assert.deepEqual(JSON.parse(line), {
    "@timestamp": "2026-01-02T03:04:05.000Z",
    level: "INFO",
    message: "Task tasks.add[t1] succeeded in 0.5s",
    logger: "celeriac.worker",
    hostname: "celeriac@web1",
    task_id: "t1",
    task_name: "tasks.add",
    seconds: 0.5,
  });
  fields.hostname = "celeriac@renamed";
  const other = JSON.parse(format({
    category: ["celeriac", "backend", "kv"],
    level: "debug",
    timestamp: 0,
    message: ["Task ", "t2", " already succeeded"],
    rawMessage: "Task {taskId} already succeeded",
    properties: { taskId: "t2", name: "not a task name here" },
  }));
  assert.equal(other.hostname, "celeriac@renamed", "fields are read at each record");
  assert.equal(other.task_id, "t2");
  assert.equal(other.name, "not a task name here", "outside the worker, name stays name");
  assert.equal(other.task_name, undefined);
  assert.equal(parseLogFormat("JSON"), "json");
  assert.throws(() => parseLogFormat("xml"), /--log-format must be "text" or "json"/);
});

Deno.test("cli logging: unknown and mistyped flags get one line and the --help hint", async () => {
  const known = ["concurrency", "queues", "loglevel"];
  assert.equal(closestOption("--concurency", known), "--concurrency");
  assert.equal(closestOption("--log-level", known), "--loglevel");
  assert.equal(closestOption("--colour", known), undefined);
  const err = (args: string[]) => {
    try {
      parseArgs({ args, options: { concurrency: { type: "string", short: "c" } } });
    } catch (e) {
      return argumentError(e as Error, known);
    }
    throw new Error("parseArgs accepted the arguments");
  };
  assert.equal(
    err(["-c"]),
    "error: option -c, --concurrency needs a value; run with --help to see the options",
  );
  // A value that starts with a dash (-t -1, --countdown -5) printed only the first line of
  // node's message, "Option '-c' argument is ambiguous.;", without how to write it.
  assert.equal(
    err(["-c", "-1"]),
    "error: option -c takes a value, and what follows it starts with a dash: to give such a " +
      "value write '--concurrency=-XYZ' or '-c-XYZ'; run with --help to see the options",
  );

  // Usage errors that do not name their --app module's path run in one process
  // (helpers/cli_batch.ts, which imports each case's --app anew under a query of its own);
  // the others, and the one whose stdout is checked, in processes of their own, all at once.
  const app = ["--app", "./tests/apps/worker_app.ts"];
  const noQueue = (command: string[]) => [...command, ...app, "-b", "kv://:memory:", "-Q", " ,"];
  const batch = runCliCases([
    ["--frobnicate"],
    ["frobnicate", ...app],
    ["inspct", "stats"],
    ["status", "--broker", "kv://:memory:", "-t", "0.3"],
    ["--broker", "kv://:memory:"],
    ["inspect", "pign", "-b", "kv://:memory:"],
    ["inspect", "stat", ...app],
    ["control", "rate-limit", ...app],
    noQueue([]),
    noQueue(["purge", "-f"]),
    ["toString", ...app],
  ].map((args) => ({ args, env: {} })));
  const [typo, program, missing, throws] = await Promise.all([
    runCli([...app, "--concurency", "2"]),
    runCli(["--app", "./tests/apps/program_app.ts", "-b", "kv://:memory:"]),
    runCli(["--app", "./tests/apps/no_such_app.ts", "-b", "kv://:memory:"]),
    runCli(["--app", "./tests/apps/throws_at_import_app.ts", "-b", "kv://:memory:"]),
  ]);
  const [unknown, command, mistyped, noApp, worker, swapped, method, control, ...rest] =
    await batch;
  const [noQueueWorker, noQueuePurge, inherited] = rest;
  assert.equal(typo.code, 2);
  assert.equal(typo.stdout, "");
  assert.equal(
    typo.stderr,
    "error: unknown option --concurency (did you mean --concurrency?); run with --help to see the options\n",
  );
  assert.equal(unknown.code, 2);
  assert.equal(unknown.err.trim().split("\n").length, 1, unknown.err);
  assert.match(unknown.err, /^error: unknown option --frobnicate; run with --help/);
  assert.equal(command.code, 2);
  assert.match(command.err, /^error: unknown command "frobnicate"; run with --help/);
  assert.equal(mistyped.code, 2, "a mistyped command is named before --app is asked for");
  assert.equal(
    mistyped.err,
    'error: unknown command "inspct" (did you mean inspect?); run with --help to see the commands\n',
  );
  assert.equal(noApp.code, 69, `status needs only a broker, as celery -b: ${noApp.err}`);
  assert.match(noApp.err, /No nodes replied/);
  assert.equal(worker.code, 2, "a missing --app is a usage error");
  assert.match(worker.err, /^error: --app is required for worker: .*--app \.\/tasks\.ts/);
  // Two letters swapped were two edits, too many for a four-letter name: no hint for "pign".
  assert.equal(swapped.code, 2);
  assert.match(swapped.err, /^error: unknown inspect command "pign" \(did you mean ping\?\)/);
  assert.equal(method.code, 2);
  assert.match(
    method.err,
    /^error: unknown inspect command "stat" \(did you mean stats\?\); one of: /,
  );
  assert.equal(control.code, 2);
  assert.match(
    control.err,
    /^error: unknown control command "rate-limit" \(did you mean rate_limit\?\)/,
  );
  assert.equal(program.code, 2, `a program, not an app module: ${program.stderr}`);
  assert.match(program.stderr, /must export its app: .*--app names the module that defines/);
  assert.doesNotMatch(program.stderr, /Top-level await/);
  // Said only "Module not found" and the module's own message, with neither --app nor where.
  assert.equal(missing.code, 2);
  assert.match(
    missing.stderr,
    /^error: --app \.\/tests\/apps\/no_such_app\.ts: no module at file:\/\/.*no_such_app\.ts \(a relative path starts from the current directory, /,
  );
  assert.equal(throws.code, 2, "as Celery's -A that cannot load its app");
  assert.match(
    throws.stderr,
    /^error: --app \.\/tests\/apps\/throws_at_import_app\.ts: importing the app module failed: Error: settings\.json is missing \(at file:\/\/.*throws_at_import_app\.ts:5:7\)/,
  );
  // -Q "" (as -Q "$QUEUES" with the variable unset gives) consumed, or purged, the default queue.
  for (const noQueue of [noQueueWorker, noQueuePurge]) {
    assert.equal(noQueue.code, 2, noQueue.err);
    assert.match(noQueue.err, /^error: -Q, --queues names no queue \(got " ,"\): give one or more/);
  }
  assert.equal(inherited.code, 2, "a name from Object.prototype is no command");
  assert.match(inherited.err, /^error: unknown command "toString"/);
});

Deno.test("cli logging: result's --timeout that is no number is named as the flag, in seconds", async () => {
  // Said "get(): timeout must be a number of milliseconds (leave it out to wait forever), got
  // NaN": the API's words and unit, not the flag's.
  // (`-t abc` is Celery's `-t/--task NAME`: cli_result_task_test.)
  const timeouts = ["abc", "0"];
  const outs = await runCliCases(
    timeouts.map((t) => ({
      args: ["result", "some-id", "-b", "kv://:memory:", "--timeout", t],
      env: {},
    })),
  );
  outs.forEach((out, i) => {
    assert.equal(out.code, 2, out.err);
    assert.equal(out.err, `error: --timeout needs a number of seconds > 0, got "${timeouts[i]}"\n`);
  });
});

Deno.test("cli logging: --version prints the package version", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  assert.equal(VERSION, config.version);
  const out = await runCli(["--version"]);
  assert.equal(out.code, 0);
  assert.equal(out.stdout, `celeriac ${config.version} (deno ${Deno.version.deno})\n`);
});

Deno.test("cli logging: broker and backend passwords are masked in the banner", () => {
  assert.equal(maskPassword("redis://:s3cret@h:6379/0"), "redis://:***@h:6379/0");
  assert.equal(maskPassword("amqp://user:pa55@mq:5672//"), "amqp://user:***@mq:5672//");
  assert.equal(maskPassword("redis://:ab#c/d?e@h:6379/0"), "redis://:***@h:6379/0");
  assert.equal(maskPassword("redis://h:6379/0?x=1"), "redis://h:6379/0?x=1");
  assert.equal(
    maskPassword("sentinel://:a@h1:26379;sentinel://:b@h2:26379?sentinel_password=c"),
    "sentinel://:***@h1:26379;sentinel://:***@h2:26379?sentinel_password=***",
  );
  assert.equal(maskPassword("kv://.celeriac/celeriac.sqlite"), "kv://.celeriac/celeriac.sqlite");
  const fields = bannerFields({
    version: "1.2.3",
    hostname: "celeriac@h",
    app: "file:///t.ts",
    broker: "redis://:s3cret@h:6379/0",
    backend: null,
  });
  assert.equal(fields.broker, "redis://:***@h:6379/0");
  assert.equal(fields.backend, "disabled");
  // A relative KV path depends on the directory the worker runs in: the file is named in full.
  const input = {
    version: "1.2.3",
    hostname: "celeriac@h",
    app: "file:///t.ts",
    broker: "kv://.celeriac/celeriac.sqlite?visibility_timeout=60",
    backend: "kv://:memory:",
  };
  const kv = bannerFields(input);
  assert.equal(
    kv.broker,
    `kv://.celeriac/celeriac.sqlite?visibility_timeout=60 (${Deno.cwd()}/.celeriac/celeriac.sqlite)`,
  );
  assert.equal(kv.backend, "kv://:memory:");
  assert.equal(
    bannerFields({ ...input, broker: "kv:///srv/q.sqlite" }).broker,
    "kv:///srv/q.sqlite",
  );
});

Deno.test("cli logging: a worker with --log-format json --logfile writes JSON records to the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-log-" });
  const url = `kv://${dir}/q.sqlite`;
  const logfile = `${dir}/worker.log`;
  const worker = Proc.start("celeriac worker", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    "--app",
    "./tests/apps/worker_app.ts",
    "--broker",
    url,
    "--backend",
    url,
    "-c",
    "1",
    "-n",
    "jsonlog@%h",
    "--loglevel",
    "INFO",
    "--log-format",
    "json",
    "--logfile",
    logfile,
  ]);
  const client = new Celery({ broker: url, backend: url });
  try {
    const r = await client.sendTask<number>("t.add", [2, 3]);
    assert.equal(await r.get({ timeout: 20_000 }), 5);
    const status = await worker.stop("SIGTERM");
    assert.equal(status.code, 0);
    assert.equal(worker.output, "", "nothing on the console when a log file is given");
    const records = (await Deno.readTextFile(logfile)).trimEnd().split("\n").map((l) =>
      JSON.parse(l)
    );
    const hostname = records[0].hostname;
    assert.match(hostname, /^jsonlog@/);
    assert.ok(records.every((rec) => rec.hostname === hostname && rec["@timestamp"] && rec.level));
    const banner = records.find((rec) => rec.logger === "celeriac.cli" && rec.version);
    assert.equal(banner?.version, VERSION);
    assert.equal(banner?.broker, url);
    const done = records.find((rec) => / succeeded in /.test(rec.message));
    assert.equal(done?.task_id, r.id);
    assert.equal(done?.task_name, "t.add");
    assert.ok(records.some((rec) => / stopped: /.test(rec.message)), "flushed at exit");
  } finally {
    await worker.stop("SIGKILL");
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli logging: -c with --autoscale is said to be ignored", async () => {
  // The worker took --autoscale's range and dropped -c without a word.
  const worker = Proc.start("celeriac worker", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    "--app",
    "./tests/apps/worker_app.ts",
    "--broker",
    "kv://:memory:",
    "--autoscale",
    "2,1",
    "-c",
    "3",
  ], { cwd: ROOT });
  try {
    await worker.waitFor(/ ready: /);
    assert.match(
      worker.output,
      /\[WRN\] celeriac·cli: -c 3 is ignored with --autoscale 2,1: the pool grows and shrinks between MIN and MAX/,
    );
  } finally {
    assert.equal((await worker.stop("SIGTERM")).code, 0);
  }
});
