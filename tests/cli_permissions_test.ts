/**
 * The worker under narrow Deno permissions (`deno run --allow-read=.
 * worker.ts`, no `--allow-env`, no `--allow-sys`): it starts, and says in
 * one start-up line what it could not read and which flag would let it —
 * only for what it used.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Proc, runCli } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/** A worker on `kv://:memory:` run with these Deno flags, stopped once ready; its output. */
async function narrowWorker(denoFlags: string[], args: string[] = []): Promise<string> {
  const worker = Proc.start("worker", Deno.execPath(), [
    "run",
    ...denoFlags,
    "worker.ts",
    "--app",
    "./tests/apps/worker_app.ts",
    "--broker",
    "kv://:memory:",
    ...args,
  ]);
  try {
    await worker.waitFor(/ ready: /, 30_000);
  } finally {
    await worker.stop("SIGINT");
  }
  return worker.output;
}

Deno.test("cli permissions: a worker without --allow-env and --allow-sys starts", async () => {
  const out = await narrowWorker(["--allow-read=."]);
  assert.match(out, /celeriac@localhost ready: /);
  assert.doesNotMatch(out, /^error: /m);
});

/** The start-up lines about permissions. */
function hints(out: string): string[] {
  return out.split("\n").filter((line) => line.includes("Deno permissions:"));
}

Deno.test("cli permissions: one start-up line names what was not read and the flag", async () => {
  const [line, ...more] = hints(await narrowWorker(["--allow-read=."]));
  assert.equal(more.length, 0, "one line");
  // The result backend may have come from CELERY_RESULT_BACKEND: a warning.
  assert.match(
    line,
    /\[WRN\].* CELERY_RESULT_BACKEND, CELERY_TIMEZONE, CELERY_DEFAULT_QUEUE, CELERY_RESULT_EXTENDED /,
  );
  assert.doesNotMatch(line, /CELERY_BROKER_URL/, "--broker was given");
  assert.match(line, /--allow-env\b/);
  assert.match(line, /localhost .*--allow-sys=hostname/);
  assert.match(line, /\[0, 0, 0\] .*--allow-sys=loadavg/);
  const granted = ["--allow-read=.", "--allow-env", "--allow-sys=hostname,loadavg"];
  assert.deepEqual(hints(await narrowWorker(granted)), []);
});

Deno.test("cli permissions: only what the worker used, at INFO when no connection depends on it", async () => {
  const deliberate = ["--backend", "kv://:memory:", "-n", "w@box", "--without-heartbeat"];
  const [line, ...more] = hints(await narrowWorker(["--allow-read=."], deliberate));
  assert.equal(more.length, 0, "one line");
  assert.match(
    line,
    /\[INF\] .*: CELERY_TIMEZONE, CELERY_DEFAULT_QUEUE, CELERY_RESULT_EXTENDED not read/,
  );
  assert.doesNotMatch(line, /hostname|loadavg/, "-n has no %h; --without-heartbeat");
  assert.deepEqual(hints(await narrowWorker(["--allow-read=.", "--allow-env"], deliberate)), []);
});

/**
 * `deno run` with these flags in a pseudo-terminal (util-linux `script`), where Deno asks
 * for a permission that is not granted instead of refusing it.
 */
function inTerminal(name: string, denoArgs: string[]): Proc {
  const command = [Deno.execPath(), "run", ...denoArgs].map((a) => `'${a}'`).join(" ");
  return Proc.start(name, "script", ["-qec", command, "/dev/null"]);
}

const WITHOUT_SCRIPT = new Deno.Command("script", { args: ["--version"], stdout: "null" })
  .outputSync().code !== 0;

Deno.test({
  name: "cli permissions: in a terminal, narrow flags bring no prompt (worker and call)",
  ignore: WITHOUT_SCRIPT,
}, async () => {
  // The README's worker rows leave out --allow-sys=hostname (then `localhost`); without
  // --allow-env the CELERY_* variables are named at start-up. Neither may stop at a prompt.
  const worker = inTerminal("tty worker", [
    "--allow-read=.",
    "worker.ts",
    "--app",
    "./tests/apps/worker_app.ts",
    "--broker",
    "kv://:memory:",
  ]);
  try {
    await worker.waitFor(/ ready: |Deno requests/, 30_000);
  } finally {
    await worker.stop("SIGTERM");
  }
  assert.doesNotMatch(worker.output, /Deno requests/);
  assert.match(worker.output, /celeriac@localhost ready: /);
  // A client command: its messages' origin header has the host name.
  const call = inTerminal("tty call", [
    "--allow-read=.",
    "worker.ts",
    "call",
    "t.add",
    "--app",
    "./tests/apps/worker_app.ts",
    "--broker",
    "kv://:memory:",
  ]);
  try {
    await call.waitFor(/[0-9a-f]{8}-[0-9a-f]{4}-|Deno requests/, 30_000);
  } finally {
    await call.stop("SIGTERM");
  }
  assert.doesNotMatch(call.output, /Deno requests/);
});

Deno.test("cli permissions: a broker the worker has no permission for exits at once, naming the flag", async () => {
  // Only new Deno flags fix it: retrying 100 times (about 50 minutes) cannot.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-noperm-" });
  // The hint was "Run deno with the permission it names (set by new Celery({ broker,
  // backend }), CELERY_BROKER_URL / ...)": no flag value to copy, and the URL's sources, as if
  // the URL were wrong. It now gives the narrow flag the README recommends.
  const cases: [string, RegExp][] = [
    [
      `kv://${dir}/broker.sqlite`,
      new RegExp(`Requires write access to .*\\. Run deno with --allow-write=${dir}\n`),
    ],
    [
      "redis://127.0.0.1:6379/0",
      /Requires net access to "127\.0\.0\.1:6379".*\. Run deno with --allow-net=127\.0\.0\.1:6379\n/,
    ],
  ];
  try {
    for (const [url, flag] of cases) {
      const worker = Proc.start("worker", Deno.execPath(), [
        "run",
        "--allow-read=.",
        "--allow-env", // ioredis reads the environment
        "worker.ts",
        "--app",
        "./tests/apps/worker_app.ts",
        "--broker",
        url,
      ]);
      try {
        const finished = await Promise.race([
          worker.finished(),
          new Promise<null>((resolve) => setTimeout(() => resolve(null), 20_000)),
        ]);
        assert.ok(finished, `${url}: still running after 20 s:\n${worker.output}`);
        assert.equal(finished.code, 1, worker.output);
        assert.match(worker.output, flag);
        assert.doesNotMatch(
          worker.output,
          /Trying again|Check that the server runs|set by new Celery/,
        );
      } finally {
        await worker.stop("SIGKILL");
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "cli permissions: on a single Redis server --allow-env narrows to the variables read",
  ignore: WITHOUT_REDIS,
}, async () => {
  // Before 9bbc3c3 the worker loaded ioredis, whose debug dependency lists every variable:
  // a narrowed --allow-env then failed with NotCapable. Sentinel and Cluster URLs still load it.
  const prefix = uniquePrefix("perm-env");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `perm-env-${crypto.randomUUID().slice(0, 8)}`;
  const worker = Proc.start("narrow redis worker", Deno.execPath(), [
    "run",
    `--allow-net=${new URL(REDIS_URL).host}`,
    "--allow-read=.",
    "--allow-env=CELERY_BROKER_URL,CELERY_RESULT_BACKEND",
    "worker.ts",
    "--app",
    "./tests/apps/worker_app.ts",
    "-Q",
    queue,
    "-c",
    "1",
  ], { env: { CELERY_BROKER_URL: url, CELERY_RESULT_BACKEND: url } });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  try {
    await worker.waitFor(/ ready: |^error: /m, 30_000);
    const r = await client.sendTask<number>("t.add", [2, 3]);
    assert.equal(await r.get({ timeout: 15_000 }), 5, worker.output);
  } finally {
    await worker.stop("SIGINT");
    await client.close();
    await deleteKeys(prefix);
  }
  assert.doesNotMatch(worker.output, /NotCapable|Requires env access/);
});

Deno.test("cli permissions: a client command without --allow-env says which broker it used instead", async () => {
  // `call` / `status` without --allow-env fell back to the default KV file without a word, and
  // then only said "Run deno with --allow-write=…/.celeriac": a flag for a broker nobody set.
  const env = { CELERY_BROKER_URL: "kv://:memory:", CELERY_RESULT_BACKEND: "kv://:memory:" };
  const narrow = await runCli(["status", "-t", "0.2"], { permissions: ["--allow-read=."], env });
  const [warning] = narrow.stderr.split("\n");
  assert.equal(
    warning,
    "warning: Deno permissions: CELERY_BROKER_URL not read (run with --allow-env, or give -b): " +
      "the broker is kv://.celeriac/celeriac.sqlite",
    "status reads no result: its backend goes unnamed",
  );
  // Its error said "Run deno with --allow-write=…/.celeriac", which gave a KV broker instead.
  // Without env permission it cannot tell whether the variable is set: both ways, each with its if.
  assert.match(
    narrow.stderr,
    /\nerror: Cannot connect to kv:\/\/\.celeriac\/celeriac\.sqlite: .*That URL is the default, as Deno's permissions kept CELERY_BROKER_URL from being read: if it is set, run deno with --allow-env=CELERY_BROKER_URL to use it .*; to use the default, run deno with --allow-write=\S*\.celeriac\n/,
  );
  const worker = await runCli(["worker", "--app", "./tests/apps/worker_app.ts"], {
    permissions: ["--allow-read=."],
    env,
  });
  assert.notEqual(worker.code, 0);
  assert.match(
    worker.stderr,
    /kept CELERY_BROKER_URL from being read: if it is set, run deno with --allow-env=CELERY_BROKER_URL .*; to use the default, run deno with --allow-write=/,
  );
  const result = await runCli(
    ["result", crypto.randomUUID(), "-b", "kv://:memory:", "-t", "0.1"],
    { permissions: ["--allow-read=."], env },
  );
  assert.equal(result.code, 3, result.stderr);
  assert.match(
    result.stderr,
    /^warning: Deno permissions: CELERY_RESULT_BACKEND not read \(run with --allow-env, or give --backend\): the result backend is kv:\/\/:memory:\n/,
  );
  const allowed = await runCli(["status", "-t", "0.2"], {
    permissions: ["--allow-read=.", "--allow-env"],
    env,
  });
  assert.equal(allowed.code, 69);
  assert.doesNotMatch(allowed.stderr, /Deno permissions/);
  const flagged = await runCli(["status", "-t", "0.2", "-b", "kv://:memory:"], {
    permissions: ["--allow-read=."],
    env,
  });
  assert.doesNotMatch(flagged.stderr, /Deno permissions/, "-b: the variable was not needed");
});

Deno.test("cli permissions: the README's narrowed --allow-env lists every variable the worker reads", async () => {
  // It listed CELERY_BROKER_URL,CELERY_RESULT_BACKEND: the worker then said CELERY_TIMEZONE,
  // CELERY_DEFAULT_QUEUE and CELERY_RESULT_EXTENDED were not read.
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const narrowed = /narrowed to the variables\s+you use\s+\(`(--allow-env=[A-Z_,]+)`\)/.exec(
    readme,
  );
  assert.ok(narrowed, "the README's narrowed --allow-env form");
  const flags = ["--allow-read=.", narrowed[1], "--allow-sys=hostname,loadavg"];
  assert.deepEqual(hints(await narrowWorker(flags)), []);
});
