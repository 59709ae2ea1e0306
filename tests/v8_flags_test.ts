/**
 * The worker's V8 flags by default: `worker.ts` run with `-A` starts itself
 * over (same process id) with
 * `DENO_V8_FLAGS=--max-semi-space-size=1,--no-allocation-site-pretenuring,--no-short-builtin-calls,--single-threaded-gc,--expose-gc,--enable-experimental-regexp-engine,--enable-experimental-regexp-engine-on-excessive-backtracks`
 * unless the command or the environment already sets those flags or
 * `CELERIAC_V8_FLAGS` says otherwise; narrower permissions keep V8's defaults.
 * The same restart sets `MALLOC_ARENA_MAX=2` and `DENO_NO_PROMPT=1` unless the
 * environment sets them.
 * `worker.ts dashboard` does the same with the same flags but the first: its
 * young generation is left to V8.
 */

import assert from "node:assert/strict";
import { DEFAULT_V8_FLAGS, planV8Flags } from "../src/cli/v8_flags.ts";
import { reservePorts } from "./helpers/ports.ts";
import { celeriacWorker, Proc } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const CMD = ["deno", "run", "-A", "worker.ts", "--app", "./tasks.ts"];
/** The worker's default V8 flags, written out: a change to the defaults must change this test. */
const FLAGS = [
  "--max-semi-space-size=1",
  "--no-allocation-site-pretenuring",
  "--no-short-builtin-calls",
  "--single-threaded-gc",
  "--expose-gc",
  "--enable-experimental-regexp-engine",
  "--enable-experimental-regexp-engine-on-excessive-backtracks",
];
const JOINED = FLAGS.join(",");
/** The dashboard's: the worker's without the 1 MiB young generation and the regexp engines. */
const DASHBOARD_JOINED = FLAGS.slice(1, 5).join(",");

Deno.test("v8 flags: planned when neither the command nor DENO_V8_FLAGS sets them", () => {
  assert.deepEqual(planV8Flags({ wanted: DEFAULT_V8_FLAGS, cmdline: CMD }), {
    restart: true,
    flags: FLAGS,
    denoV8Flags: JOINED,
    env: { MALLOC_ARENA_MAX: "2", DENO_NO_PROMPT: "1" },
  });
  assert.deepEqual(
    planV8Flags({ wanted: DEFAULT_V8_FLAGS, denoV8Flags: "--stack-size=2000", cmdline: CMD }),
    {
      restart: true,
      flags: FLAGS,
      denoV8Flags: `--stack-size=2000,${JOINED}`,
      env: { MALLOC_ARENA_MAX: "2", DENO_NO_PROMPT: "1" },
    },
  );
});

Deno.test("v8 flags: MALLOC_ARENA_MAX is left to the environment that sets it", () => {
  const plan = (environment: Record<string, string>) =>
    planV8Flags({ wanted: DEFAULT_V8_FLAGS, cmdline: CMD, environment });
  assert.deepEqual(plan({ MALLOC_ARENA_MAX: "8" }), {
    restart: true,
    flags: FLAGS,
    denoV8Flags: JOINED,
    env: { DENO_NO_PROMPT: "1" },
  });
  assert.deepEqual(
    plan({ GLIBC_TUNABLES: "glibc.malloc.trim_threshold=0:glibc.malloc.arena_max=4" }),
    {
      restart: true,
      flags: FLAGS,
      denoV8Flags: JOINED,
      env: { DENO_NO_PROMPT: "1" },
    },
  );
  assert.deepEqual(plan({ GLIBC_TUNABLES: "glibc.malloc.trim_threshold=0", HOME: "/root" }), {
    restart: true,
    flags: FLAGS,
    denoV8Flags: JOINED,
    env: { MALLOC_ARENA_MAX: "2", DENO_NO_PROMPT: "1" },
  });
});

Deno.test("v8 flags: DENO_NO_PROMPT is set unless the environment sets it", () => {
  const plan = planV8Flags({
    wanted: DEFAULT_V8_FLAGS,
    cmdline: CMD,
    environment: { DENO_NO_PROMPT: "" },
  });
  assert.deepEqual(plan.restart && plan.env, { MALLOC_ARENA_MAX: "2" });
});

Deno.test("v8 flags: the user's value wins, whatever its spelling", () => {
  const withFlag = [
    "deno",
    "run",
    "--v8-flags=--max-old-space-size=500,--max_semi_space_size=8,--allocation-site-pretenuring,--short_builtin_calls,--no-single_threaded_gc,--expose_gc," +
    "--no-enable-experimental-regexp-engine,--enable_experimental_regexp_engine_on_excessive_backtracks",
  ];
  assert.deepEqual(planV8Flags({ wanted: DEFAULT_V8_FLAGS, cmdline: [...withFlag, "worker.ts"] }), {
    restart: false,
    reason: "the command sets them",
  });
  assert.equal(
    planV8Flags({
      wanted: DEFAULT_V8_FLAGS,
      denoV8Flags:
        "--max-semi-space-size=2,--no_allocation_site_pretenuring,--noshort-builtin-calls,--single-threaded_gc,--noexpose-gc," +
        "--enable-experimental-regexp-engine,--noenable-experimental-regexp-engine-on-excessive-backtracks",
      cmdline: CMD,
    }).restart,
    false,
  );
  // a flag the command does not set is added to those it does
  assert.deepEqual(
    planV8Flags({ wanted: DEFAULT_V8_FLAGS, denoV8Flags: "--max-semi-space-size=2", cmdline: CMD }),
    {
      restart: true,
      flags: [
        "--no-allocation-site-pretenuring",
        "--no-short-builtin-calls",
        "--single-threaded-gc",
        "--expose-gc",
        "--enable-experimental-regexp-engine",
        "--enable-experimental-regexp-engine-on-excessive-backtracks",
      ],
      denoV8Flags: `--max-semi-space-size=2,${FLAGS.slice(1).join(",")}`,
      env: { MALLOC_ARENA_MAX: "2", DENO_NO_PROMPT: "1" },
    },
  );
});

Deno.test("v8 flags: CELERIAC_V8_FLAGS empty turns it off; never started over twice", () => {
  assert.deepEqual(planV8Flags({ wanted: " ", cmdline: CMD }), {
    restart: false,
    reason: "CELERIAC_V8_FLAGS is empty",
  });
  assert.equal(
    planV8Flags({ wanted: DEFAULT_V8_FLAGS, cmdline: CMD, applied: true }).restart,
    false,
  );
  assert.deepEqual(
    planV8Flags({ wanted: "--max-semi-space-size=2,--optimize-for-size", cmdline: CMD }),
    {
      restart: true,
      flags: ["--max-semi-space-size=2", "--optimize-for-size"],
      denoV8Flags: "--max-semi-space-size=2,--optimize-for-size",
      env: { MALLOC_ARENA_MAX: "2", DENO_NO_PROMPT: "1" },
    },
  );
});

/** An environment variable of a running process. */
async function envOf(pid: number, name: string): Promise<string | undefined> {
  const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
  const entry = environ.split("\0").find((e) => e.startsWith(`${name}=`));
  return entry?.slice(name.length + 1);
}

/** The V8 flags in the environment of a running process. */
function v8FlagsOf(pid: number): Promise<string | undefined> {
  return envOf(pid, "DENO_V8_FLAGS");
}

/** A worker that starts over with the flags itself, as one run by hand (`v8Start: "restart"`). */
async function startWorker(prefix: string, env: Record<string, string>, denoArgs: string[] = []) {
  const broker = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const args = ["--app", "./tests/apps/worker_app.ts", "-b", broker, "--backend", broker];
  const queue = ["-Q", `v8-${crypto.randomUUID().slice(0, 8)}`, "-c", "1", "--loglevel", "DEBUG"];
  if (denoArgs.length === 0) {
    return await celeriacWorker([...args, ...queue], env, { v8Start: "restart" });
  }
  const p = Proc.start("celeriac worker", Deno.execPath(), [
    "run",
    ...denoArgs,
    "worker.ts",
    ...args,
    ...queue,
  ], { env, v8Start: "restart" });
  await p.waitFor(/ ready: /, 60_000);
  return p;
}

Deno.test({
  name: "v8 flags: a worker run with -A runs with them, same process, and says so",
  ignore: WITHOUT_REDIS || Deno.build.os !== "linux",
}, async () => {
  const prefix = uniquePrefix("v8flags");
  try {
    const worker = await startWorker(prefix, {});
    try {
      assert.equal(
        await v8FlagsOf(worker.child.pid),
        JOINED,
      );
      assert.equal(await envOf(worker.child.pid, "MALLOC_ARENA_MAX"), "2");
      assert.equal(await envOf(worker.child.pid, "DENO_NO_PROMPT"), "1");
      assert.match(
        worker.output,
        /V8 flags --max-semi-space-size=1,--no-allocation-site-pretenuring,--no-short-builtin-calls,--single-threaded-gc,--expose-gc,--enable-experimental-regexp-engine,--enable-experimental-regexp-engine-on-excessive-backtracks, MALLOC_ARENA_MAX=2, DENO_NO_PROMPT=1 \(the worker's defaults/,
      );
    } finally {
      assert.equal((await worker.stop()).code, 0);
    }
    const own = await startWorker(prefix, { MALLOC_ARENA_MAX: "1" });
    try {
      assert.equal(
        await v8FlagsOf(own.child.pid),
        JOINED,
      );
      assert.equal(await envOf(own.child.pid, "MALLOC_ARENA_MAX"), "1");
    } finally {
      assert.equal((await own.stop()).code, 0);
    }
  } finally {
    await deleteKeys(prefix);
  }
});

Deno.test({
  name:
    "v8 flags: not applied when turned off, set by the command, without FFI permission, or without -A (the worker runs)",
  ignore: WITHOUT_REDIS || Deno.build.os !== "linux",
}, async () => {
  const prefix = uniquePrefix("v8flags");
  const narrow = ["--allow-net", "--allow-read", "--allow-env", "--allow-sys"];
  const cases: [Record<string, string>, string[], RegExp][] = [
    [{ CELERIAC_V8_FLAGS: "" }, [], /CELERIAC_V8_FLAGS is empty/],
    [
      {},
      [
        "-A",
        "--v8-flags=--max-semi-space-size=4,--allocation-site-pretenuring,--short-builtin-calls,--no-single-threaded-gc,--expose-gc," +
        "--enable-experimental-regexp-engine,--enable-experimental-regexp-engine-on-excessive-backtracks",
      ],
      /the command sets them/,
    ],
    [{}, narrow, /needs -A \(Deno reads \/proc\/self only when every permission is granted\)/],
    // FFI, env and read granted, but not all: Deno refuses /proc/self/cmdline then.
    [{}, [...narrow, "--allow-ffi"], /cannot start over with them \(.*-A allows it\)/],
  ];
  try {
    for (const [env, denoArgs, why] of cases) {
      const worker = await startWorker(prefix, env, denoArgs);
      try {
        assert.equal(await v8FlagsOf(worker.child.pid), undefined);
        assert.equal(await envOf(worker.child.pid, "MALLOC_ARENA_MAX"), undefined);
        assert.equal(await envOf(worker.child.pid, "DENO_NO_PROMPT"), undefined);
        assert.match(worker.output, why);
        assert.doesNotMatch(worker.output, /the worker's defaults/);
      } finally {
        assert.equal((await worker.stop()).code, 0);
      }
    }
  } finally {
    await deleteKeys(prefix);
  }
});

Deno.test({
  name:
    "v8 flags: worker.ts dashboard run with -A runs with its own (V8's young generation), and says so at DEBUG only",
  ignore: Deno.build.os !== "linux",
}, async () => {
  using ports = reservePorts();
  const port = ports.base;
  const p = Proc.start("dashboard", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    "dashboard",
    "--app",
    "./examples/tasks.ts",
    "--broker",
    "kv://:memory:",
    "--port",
    String(port),
  ], { v8Start: "restart" });
  try {
    await p.waitFor(/Dashboard on /);
    assert.equal(
      await v8FlagsOf(p.child.pid),
      DASHBOARD_JOINED,
    );
    assert.equal(await envOf(p.child.pid, "MALLOC_ARENA_MAX"), "2");
    // A detail of tuning, not news at every start: the line is at DEBUG (the worker test reads it).
    assert.doesNotMatch(p.output, /V8 flags/);
  } finally {
    assert.equal((await p.stop("SIGTERM")).code, 0, p.output);
  }
});
