/**
 * The tests' workers start with the worker's V8 flags in their environment
 * (helpers/worker_env.ts) instead of starting over to get them: the same
 * flags and environment as a worker that starts over, for the commands that
 * would, and nothing added to any other command line.
 */

import assert from "node:assert/strict";
import { startedWithFlags } from "../src/cli/v8_flags.ts";
import { celeriacWorker, type Proc } from "./helpers/procs.ts";
import { type V8Start, workerEnv } from "./helpers/worker_env.ts";

/** The worker's default V8 flags, written out: a change to the defaults must change this test. */
const JOINED =
  "--max-semi-space-size=1,--no-allocation-site-pretenuring,--no-short-builtin-calls," +
  "--single-threaded-gc,--expose-gc,--enable-experimental-regexp-engine," +
  "--enable-experimental-regexp-engine-on-excessive-backtracks";
/** The dashboard's: the worker's without the 1 MiB young generation. */
const DASHBOARD_JOINED =
  "--no-allocation-site-pretenuring,--no-short-builtin-calls,--single-threaded-gc,--expose-gc";

const RUN = ["run", "-A", "worker.ts"];
const WORKER = [...RUN, "--app", "./tests/apps/worker_app.ts", "-b", "kv://:memory:"];

/** No variable of the test's own environment: what is planned depends on `env` alone. */
const BARE: Record<string, string> = {};

Deno.test("worker env: a worker or dashboard run with -A gets what its start over would set", () => {
  const dashboard = [...RUN, "dashboard", "--port", "0"];
  for (const args of [WORKER, dashboard, [...RUN, "worker", "-c", "1"]]) {
    const env = workerEnv(args, {}, "preset", BARE);
    assert.deepEqual(env, {
      DENO_V8_FLAGS: args === dashboard ? DASHBOARD_JOINED : JOINED,
      MALLOC_ARENA_MAX: "2",
      DENO_NO_PROMPT: "1",
      CELERIAC_V8_FLAGS_APPLIED: "1",
    });
    assert.ok(
      startedWithFlags(env),
      "marked as started with them: the worker does not start over",
    );
  }
  assert.deepEqual(
    workerEnv(WORKER, { DENO_V8_FLAGS: "--stack-size=100", MALLOC_ARENA_MAX: "1" }, "preset", BARE),
    {
      DENO_V8_FLAGS: `--stack-size=100,${JOINED}`,
      MALLOC_ARENA_MAX: "1",
      DENO_NO_PROMPT: "1",
      CELERIAC_V8_FLAGS_APPLIED: "1",
    },
  );
});

Deno.test("worker env: nothing added where the worker would not start over, or when asked to", () => {
  const kept: [string[], Record<string, string>, V8Start?][] = [
    [WORKER, { A: "1" }, "restart"],
    [[...RUN, "status", "-b", "kv://:memory:"], {}],
    [[...RUN, "beat", "--app", "./tests/apps/beat_app.ts"], {}],
    [[...RUN, "--help"], {}],
    [[...RUN, "--no-such-flag"], {}],
    [["run", "--allow-net", "--allow-env", "worker.ts", "--app", "./tasks.ts"], {}],
    [["run", "-A", "bench/spawn_cost.ts"], {}],
    [WORKER, { CELERIAC_V8_FLAGS: "" }],
    [WORKER, { DENO_V8_FLAGS: JOINED }],
  ];
  for (const [args, env, v8Start] of kept) {
    assert.deepEqual(workerEnv(args, env, v8Start, BARE), env, args.join(" "));
  }
});

/** An environment variable of a running process. */
async function envOf(pid: number, name: string): Promise<string | undefined> {
  const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
  return environ.split("\0").find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1);
}

Deno.test({
  name: "worker env: a worker started with the flags preset runs as one that starts over does",
  ignore: Deno.build.os !== "linux",
}, async () => {
  const args = ["--app", "./tests/apps/worker_app.ts", "-b", "kv://:memory:", "-c", "1"];
  const start = (v8Start: V8Start) => celeriacWorker([...args, "-l", "DEBUG"], {}, { v8Start });
  const workers: Proc[] = [];
  try {
    workers.push(await start("preset"), await start("restart"));
    const names = [
      "DENO_V8_FLAGS",
      "MALLOC_ARENA_MAX",
      "DENO_NO_PROMPT",
      "CELERIAC_V8_FLAGS_APPLIED",
    ];
    const [preset, restart] = await Promise.all(
      workers.map((w) => Promise.all(names.map((n) => envOf(w.child.pid, n)))),
    );
    assert.deepEqual(preset, restart);
    assert.equal(preset[0]?.endsWith(JOINED), true, `DENO_V8_FLAGS=${preset[0]}`);
    for (const w of workers) {
      assert.match(
        w.output,
        /V8 flags \S+, MALLOC_ARENA_MAX=\S+, DENO_NO_PROMPT=\S+ \(the worker's defaults/,
      );
    }
  } finally {
    for (const w of workers) assert.equal((await w.stop()).code, 0, w.output);
  }
});
