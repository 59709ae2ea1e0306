/**
 * The pool of Web Workers: time limits (soft and hard, innocent neighbours
 * put back), Web Workers that die (rejectOnWorkerLost), recycling by task
 * count and memory, and permission sandboxes. Pure logic first, then real
 * workers on Redis and the embedded KV store, then Python Celery calling a
 * task that exceeds its hard limit.
 */

import assert from "node:assert/strict";
import {
  type Celery,
  PermissionDenied,
  SoftTimeLimitExceeded,
  TimeLimitExceeded,
  WorkerLostError,
} from "../mod.ts";
import { exceptionInfo } from "../protocol.ts";
import { pyJsonDumps, pyJsonLoads } from "../src/protocol/json.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { RecyclePolicy } from "../src/worker/recycling.ts";
import { reportedError } from "../src/worker/reported_error.ts";
import { compiledRoot } from "../src/worker/sandbox_start.ts";
import {
  normalizePermissions,
  parseTaskPermissions,
  permissionDenied,
  permissionsKey,
  planSandboxes,
  spawnPermissions,
} from "../src/worker/sandboxes.ts";
import { resolveTimeLimits, TimeLimitTimers } from "../src/worker/time_limits.ts";
import { Worker, type WorkerOptions } from "../src/worker/worker.ts";
import { app as poolApp } from "./apps/pool_app.ts";
import { app as plainApp } from "./apps/worker_app.ts";
import { celeriacWorker, runPython } from "./helpers/procs.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_REDIS } from "./helpers/services.ts";
import { taskFailure, withAppWorker } from "./helpers/worker.ts";

const POOL_APP = new URL("./apps/pool_app.ts", import.meta.url).href;
const PLAIN_APP = new URL("./apps/worker_app.ts", import.meta.url).href;

// ---------------------------------------------------------------- pure logic

Deno.test("time limits: header first, then task options, then worker options, each separately", () => {
  assert.deepEqual(resolveTimeLimits([null, null], {}, {}), { hard: null, soft: null });
  assert.deepEqual(
    resolveTimeLimits([30, null], { timeLimit: 10, softTimeLimit: 5 }, { softTimeLimit: 1 }),
    { hard: 30, soft: 5 },
  );
  assert.deepEqual(
    resolveTimeLimits([null, null], {}, { timeLimit: 300, softTimeLimit: 200 }),
    { hard: 300, soft: 200 },
  );
  assert.deepEqual(
    resolveTimeLimits([0, -1], { timeLimit: 2.5 }, {}),
    { hard: 2.5, soft: null },
    "zero and negative values mean not set",
  );
});

Deno.test("time limit timers: soft fires before hard, hard clears the run, clear cancels", async () => {
  const fired: string[] = [];
  const done = Promise.withResolvers<void>();
  const timers = new TimeLimitTimers({
    soft: (seq, s) => fired.push(`soft ${seq} ${s}`),
    hard: (seq, s) => {
      fired.push(`hard ${seq} ${s}`);
      done.resolve();
    },
  });
  timers.start(1, { hard: 0.08, soft: 0.02 });
  timers.start(2, { hard: 0.01, soft: null });
  timers.start(3, { hard: null, soft: null });
  assert.equal(timers.size, 2, "a run without limits has no timers");
  timers.clear(2);
  await done.promise;
  assert.deepEqual(fired, ["soft 1 0.02", "hard 1 0.08"]);
  assert.equal(timers.size, 0);
  timers.start(4, { hard: 10, soft: 5 });
  timers.clearAll();
  assert.equal(timers.size, 0);
});

Deno.test("recycling policy: task quota and memory bound in KiB", () => {
  const p = new RecyclePolicy({ maxTasksPerChild: 3, maxMemoryPerChild: 100 });
  assert.equal(p.full(2), false);
  assert.equal(p.full(3), true);
  assert.equal(p.overMemory(100 * 1024), false);
  assert.equal(p.overMemory(100 * 1024 + 1), true);
  assert.equal(p.measuresMemory, true);
  const none = new RecyclePolicy();
  assert.equal(none.full(1e9), false);
  assert.equal(none.overMemory(1e12), false);
  assert.equal(none.measuresMemory, false);
  assert.throws(() => new RecyclePolicy({ maxTasksPerChild: 0 }), RangeError);
  assert.throws(() => new RecyclePolicy({ maxMemoryPerChild: 1.5 }), RangeError);
});

Deno.test("sandboxes: --task-permissions forms, canonical keys and groups", () => {
  assert.equal(parseTaskPermissions("inherit"), "inherit");
  assert.equal(parseTaskPermissions(" none "), "none");
  assert.equal(parseTaskPermissions("-A"), "inherit");
  assert.deepEqual(
    parseTaskPermissions("--allow-net=b.example:443,a.example:443 --allow-env"),
    { env: true, net: ["a.example:443", "b.example:443"] },
  );
  assert.deepEqual(parseTaskPermissions('{"read": ["./data"], "net": false}'), {
    read: ["./data"],
    net: false,
  });
  assert.throws(() => parseTaskPermissions("--allow-everything"), /cannot read/);
  assert.throws(() => parseTaskPermissions('{"disk": true}'), /Unknown permission "disk"/);
  assert.throws(() => parseTaskPermissions('{"net": 443}'), /must be true, false/);
  assert.throws(() => parseTaskPermissions("{oops"), /not valid JSON/);
  assert.deepEqual(normalizePermissions({ net: ["b", "a", "a"] }), { net: ["a", "b"] });
  assert.equal(
    permissionsKey({ net: ["b", "a"], read: false }),
    permissionsKey({
      read: false,
      net: ["a", "b"],
    }),
  );
  const plan = planSandboxes([
    { name: "a", options: {} },
    { name: "b", options: { permissions: { net: ["x:1"] } } },
    { name: "c", options: { permissions: "none" } },
    { name: "d", options: { permissions: { net: ["x:1"] } } },
  ], "none");
  assert.deepEqual(plan.map((s) => s.tasks), [["a", "c"], ["b", "d"]]);
  assert.deepEqual(planSandboxes([{ name: "a", options: {} }]).map((s) => s.permissions), [
    "inherit",
  ]);
});

Deno.test("sandboxes: what a Web Worker loads the app with, and revokes before running tasks", () => {
  assert.deepEqual(spawnPermissions("inherit", ["/srv/app"], "/"), {
    permissions: "inherit",
    revoke: [],
  });
  const none = spawnPermissions("none", ["/srv/app"], "/");
  assert.deepEqual(none.permissions, {
    read: "inherit",
    write: "inherit",
    net: "inherit",
    env: "inherit",
    sys: "inherit",
    run: "inherit",
    ffi: "inherit",
    import: "inherit",
  }, "denied kinds are inherited while the module loads");
  assert.deepEqual(none.revoke.map((r) => r.name), [
    "read",
    "write",
    "net",
    "env",
    "sys",
    "run",
    "ffi",
    "import",
  ]);
  const narrow = spawnPermissions({ read: ["data"], net: ["x:1"] }, ["/srv/app"], "/srv/app");
  assert.deepEqual((narrow.permissions as Record<string, unknown>).read, ["data", "/srv/app"]);
  assert.deepEqual((narrow.permissions as Record<string, unknown>).net, ["x:1"]);
  assert.deepEqual(narrow.revoke, [
    { name: "write" },
    { name: "env" },
    { name: "sys" },
    { name: "run" },
    { name: "ffi" },
    { name: "import" },
    { name: "read", path: "/srv/app" },
  ]);
  const covered = spawnPermissions({ read: [".."], import: false }, ["/srv/app"], "/srv/app");
  assert.equal(covered.revoke.some((r) => r.name === "read"), false);
  assert.equal((covered.permissions as Record<string, unknown>).import, "inherit");
  assert.deepEqual(covered.revoke, [
    { name: "write" },
    { name: "net" },
    { name: "env" },
    { name: "sys" },
    { name: "run" },
    { name: "ffi" },
    { name: "import" },
  ], "import denied like the other kinds: inherited while loading, then given up");
  assert.deepEqual(
    spawnPermissions({
      read: true,
      env: true,
      net: true,
      sys: true,
      run: true,
      ffi: true,
      write: true,
      import: true,
    }, [
      "/srv/app",
    ], "/").revoke,
    [],
  );
  assert.deepEqual(
    spawnPermissions({ read: ["/srv/application"] }, ["/srv/app"], "/").revoke.at(-1),
    { name: "read", path: "/srv/app" },
    "a sibling with a common prefix does not cover it",
  );
});

Deno.test("pool start-up: files a deno compile binary embeds are not checked for read access", async () => {
  assert.equal(
    compiledRoot("file:///tmp/deno-compile-celeriac/worker.ts"),
    "file:///tmp/deno-compile-celeriac/",
  );
  assert.equal(compiledRoot("file:///srv/celeriac/worker.ts"), null);
  const check = async (root: string) => {
    const { stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "tests/apps/pool_loads_check.ts", root],
      stdin: "null",
      stderr: "inherit",
    }).output();
    return new TextDecoder().decode(stdout).trim();
  };
  assert.equal(await check("file:///tmp/deno-compile-celeriac/"), "loads ok");
  // Run by deno run from the same place, the process must be able to read them.
  assert.match(
    await check("file:///tmp/celeriac/"),
    /cannot load \/tmp\/celeriac\/src\/worker\/runner\.ts and \/tmp\/celeriac\/tasks\.ts: .* --allow-read=\/tmp\/celeriac$/,
  );
});

Deno.test("sandboxes: Deno's permission errors become PermissionDenied naming permission and task", () => {
  const err = permissionDenied(
    new Deno.errors.NotCapable(
      'Requires read access to "/etc/passwd", run again with the --allow-read flag',
    ),
    "t.peek[42]",
  );
  assert.ok(err instanceof PermissionDenied);
  assert.equal(err.permission, "read");
  assert.equal(err.target, '"/etc/passwd"');
  assert.match(err.message, /^Task t\.peek\[42\] is not allowed read access to "\/etc\/passwd"/);
  // Run with the worker's permissions: the worker's flag, not a sandbox it cannot widen.
  assert.match(err.message, /start the worker with --allow-read=\/etc\/passwd if it needs it/);
  assert.doesNotMatch(err.message, /--task-permissions/);
  const net = permissionDenied(
    new Deno.errors.NotCapable(
      'Requires net access to "example.com:443", run again with the --allow-net flag',
    ),
    "tasks.fetch_status[1]",
  ) as PermissionDenied;
  assert.match(net.message, /start the worker with --allow-net=example\.com:443 /);
  const sandboxed = permissionDenied(
    new Deno.errors.NotCapable(
      'Requires env access to "HOME", run again with the --allow-env flag',
    ),
    "t.env[7]",
    true,
  ) as PermissionDenied;
  assert.match(sandboxed.message, /grant it in the task's `permissions` option/);
  assert.deepEqual(exceptionInfo(err), {
    exc_type: "PermissionDenied",
    exc_message: [err.message],
    exc_module: "celeriac",
  });
  const other = new TypeError("x");
  assert.equal(permissionDenied(other, "t"), other);
});

Deno.test("sandboxes: the OS refusing a file (EACCES) is not turned into advice for a Deno flag", () => {
  // Deno 2 throws PermissionDenied for the OS's "permission denied"; its own denials are NotCapable.
  const os = new Deno.errors.PermissionDenied("Permission denied (os error 13): readfile '/x'");
  assert.equal(permissionDenied(os, "t.save[1]"), os);
  assert.equal(permissionDenied(os, "t.save[1]", true), os);
});

Deno.test("reported error: after the soft limit fired, any throw is stored as SoftTimeLimitExceeded", () => {
  const ctl = new AbortController();
  const thrown = new Error("cleanup failed");
  assert.equal(reportedError(thrown, "t.x[1]", ctl.signal), thrown);
  ctl.abort(new SoftTimeLimitExceeded({ seconds: 2, task: "t.x", id: "1" }));
  const stored = reportedError(thrown, "t.x[1]", ctl.signal);
  assert.ok(stored instanceof SoftTimeLimitExceeded);
  assert.equal(stored.message, "Soft time limit (2s) exceeded for t.x[1]");
  const aborted = new AbortController();
  aborted.abort();
  assert.equal(reportedError(thrown, "t.x[1]", aborted.signal), thrown, "shutdown is not a limit");
});

Deno.test("time limit and worker-lost failures are stored byte-for-byte as Celery 5.2.6 stores them", async () => {
  const fixture = JSON.parse(
    await Deno.readTextFile(
      new URL("./fixtures/celery-5.2/redis/worker-limits/time_limits.json", import.meta.url),
    ),
  ) as { final_meta_values: Record<string, { scenario: string; raw: string }> };
  const stored = (scenario: string) => {
    const found = Object.entries(fixture.final_meta_values).find(([, v]) =>
      v.scenario === scenario
    );
    assert.ok(found, scenario);
    return { task_id: found[0], raw: found[1].raw };
  };
  const meta = (name: string, err: Error, traceback: string | null) => {
    const { task_id, raw } = stored(name);
    const ours = encodeResultMeta({
      taskId: task_id,
      status: "FAILURE",
      result: exceptionInfo(err),
      traceback,
      dateDone: new Date(),
    });
    const noDate = (s: string) => s.replace(/"date_done": "[^"]+"/, '"date_done": "-"');
    return [noDate(ours), noDate(raw)];
  };
  const [hard, pyHard] = meta("hard", new TimeLimitExceeded({ seconds: 1 }), null);
  assert.equal(hard, pyHard);
  const [hardf, pyHardf] = meta("hardf", new TimeLimitExceeded({ seconds: 1.5 }), null);
  assert.equal(hardf, pyHardf);
  const soft = pyJsonLoads(stored("soft").raw) as { result: unknown };
  assert.equal(
    pyJsonDumps(exceptionInfo(new SoftTimeLimitExceeded({ seconds: 1 }))),
    pyJsonDumps(soft.result),
  );
  const lost = pyJsonLoads(stored("lost").raw) as {
    result: { exc_type: string; exc_module: string; exc_message: string[] };
  };
  const ours = exceptionInfo(new WorkerLostError("exitcode 1 Job: 3."));
  assert.deepEqual(ours, lost.result);
});

// ------------------------------------------------------------ real workers

const redisPrefix = uniquePrefix("pool");
const kvDir = await Deno.makeTempDir({ prefix: "celeriac-pool-test-" });

const transports: { name: string; url: string }[] = [
  { name: "redis", url: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(redisPrefix)}` },
  { name: "kv", url: `kv://${kvDir}/pool.sqlite` },
];

function withWorker(
  url: string,
  options: Partial<WorkerOptions>,
  fn: (client: Celery, worker: Worker) => Promise<void>,
): Promise<void> {
  const queue = `pq-${crypto.randomUUID().slice(0, 8)}`;
  const app = options.app ?? poolApp;
  const module = app === poolApp ? POOL_APP : PLAIN_APP;
  const config = { broker: url, backend: url };
  return withAppWorker(app, module, config, { concurrency: 2, prefetch: 4, ...options }, fn, queue);
}

interface Wid {
  wid: string;
  n: number;
  tag?: unknown;
}

for (const t of transports) {
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test(
      { name: `pool on ${t.name}: ${name}`, ignore: t.name === "redis" && WITHOUT_REDIS },
      fn,
    );

  test("a hard limit (task option, header, worker option) fails the task with TimeLimitExceeded", async () => {
    await withWorker(t.url, { timeLimit: 0.4 }, async (client, worker) => {
      // One at a time: a task started in a Web Worker another's limit terminates is lost instead.
      const cases: [string, unknown[], { timeLimit?: number }, number][] = [
        ["p.stuck", [], {}, 0.5],
        ["p.spin", [], {}, 0.5],
        ["p.nap", [30_000], { timeLimit: 0.3 }, 0.3],
        ["p.nap", [30_000], {}, 0.4],
      ];
      for (const [name, args, options, seconds] of cases) {
        const r = await client.sendTask(name, args, options);
        // Each limit replaces a Web Worker; start-ups are slow on a loaded machine.
        const err = await taskFailure(r.get({ timeout: 30_000 }));
        assert.equal(err.excType, "TimeLimitExceeded");
        assert.equal(err.excModule, "billiard.exceptions");
        assert.deepEqual(err.excMessage, [seconds]);
        assert.equal(err.traceback, null);
      }
      assert.equal(worker.stats.failed, 4);
      const ok = await client.sendTask<Wid>("p.wid", []);
      assert.equal(
        typeof (await ok.get({ timeout: 10_000 })).wid,
        "string",
        "the worker carries on",
      );
    });
  });

  test("a soft limit fires ctx.signal: the handler may clean up and return, or fail with SoftTimeLimitExceeded", async () => {
    await withWorker(t.url, {}, async (client) => {
      const cleaned = await client.sendTask<Record<string, unknown>>("p.soft_cleanup", []);
      const v = await cleaned.get({ timeout: 10_000 });
      assert.equal(v.cleaned, true);
      assert.equal(v.reason, "SoftTimeLimitExceeded");
      const thrown = await client.sendTask("p.soft_throw", [], { softTimeLimit: 0.2 });
      const err = await taskFailure(thrown.get({ timeout: 10_000 }));
      assert.equal(err.excType, "SoftTimeLimitExceeded");
      assert.equal(err.excModule, "billiard.exceptions");
      assert.deepEqual(err.excMessage, []);
      assert.match(err.traceback ?? "", /cleanup failed/, "the traceback shows what was thrown");
    });
  });

  test("tasks started in a Web Worker that hits a hard limit are lost, not run again", async () => {
    await withWorker(t.url, { concurrency: 1, prefetch: 4 }, async (client, worker) => {
      const first = await (await client.sendTask<Wid>("p.wid", [])).get({ timeout: 10_000 });
      // The naps outlast the stuck task's 0.5 s limit by seconds, so that under load they are
      // still running in the same Web Worker when it is terminated: they ran there (and may
      // run on, Deno not stopping the thread), so they are not run again.
      const early = await client.sendTask<{ wid: string }>("p.nap", [5000]);
      const late = await client.sendTask<{ wid: string }>("p.nap_late", [5000]);
      const stuck = await client.sendTask("p.stuck", []);
      const err = await taskFailure(stuck.get({ timeout: 30_000 }));
      assert.equal(err.excType, "TimeLimitExceeded");
      for (const r of [early, late]) {
        const lost = await taskFailure(r.get({ timeout: 30_000 }));
        assert.equal(lost.excType, "WorkerLostError");
      }
      // The worker carries on, on the replacement Web Worker.
      const after = await client.sendTask<Wid>("p.wid", []);
      assert.notEqual((await after.get({ timeout: 30_000 })).wid, first.wid);
      assert.equal(worker.stats.failed, 3, "the task over its limit and the two started with it");
      assert.equal(worker.stats.succeeded, 2);
    });
  });

  test("a Web Worker that really dies: rejectOnWorkerLost requeues, otherwise WorkerLostError", async () => {
    await withWorker(t.url, {}, async (client, worker) => {
      const once = await client.sendTask<{ survived: boolean }>("p.crash_once", []);
      assert.deepEqual((await once.get({ timeout: 15_000 })).survived, true);
      const late = await client.sendTask("p.crash_late", []);
      const err = await taskFailure(late.get({ timeout: 15_000 }));
      assert.equal(err.excType, "WorkerLostError");
      assert.equal(err.excModule, "billiard.exceptions");
      assert.match(String(err.excMessage[0]), /^Worker exited prematurely: .*uncaught error/);
      assert.equal(worker.stats.failed, 1);
    });
  });

  test("the worker's rejectOnWorkerLost never requeues early-ack tasks", async () => {
    await withWorker(
      t.url,
      { app: plainApp, rejectOnWorkerLost: true },
      async (client) => {
        const err = await taskFailure(
          (await client.sendTask("t.crash", [])).get({ timeout: 15_000 }),
        );
        assert.equal(err.excType, "WorkerLostError");
      },
    );
  });

  test("max-tasks-per-child 10: 200 tasks run exactly once over at least 20 Web Worker generations", async () => {
    await withWorker(t.url, { maxTasksPerChild: 10 }, async (client, worker) => {
      const sent = await Promise.all(
        Array.from({ length: 200 }, (_, i) => client.sendTask<Wid>("p.wid", [i])),
      );
      const results = await Promise.all(sent.map((r) => r.get({ timeout: 30_000 })));
      assert.deepEqual(results.map((r) => r.tag), sent.map((_, i) => i));
      const byWid = Map.groupBy(results, (r) => r.wid);
      for (const [wid, runs] of byWid) {
        const ns = runs.map((r) => r.n).sort((a, b) => a - b);
        assert.ok(ns.length <= 10, `Web Worker ${wid} ran ${ns.length} tasks`);
        // Counters 1..k without gaps: no run of this Web Worker went unreported.
        assert.deepEqual(ns, ns.map((_, i) => i + 1), `Web Worker ${wid} ran ${ns}`);
      }
      assert.ok(byWid.size >= 20, `${byWid.size} generations`);
      assert.equal(worker.stats.received, 200, "nothing was delivered twice");
      assert.equal(worker.stats.succeeded, 200);
    });
  });

  test("max-memory-per-child replaces a Web Worker whose heap outgrew the bound", async () => {
    await withWorker(
      t.url,
      { concurrency: 1, maxMemoryPerChild: 40_000 },
      async (client) => {
        const a = await (await client.sendTask<Wid>("p.wid", [])).get({ timeout: 10_000 });
        const b = await (await client.sendTask<Wid>("p.wid", [])).get({ timeout: 10_000 });
        assert.equal(b.wid, a.wid, "a small heap does not recycle");
        const hog = await (await client.sendTask<{ wid: string }>("p.hog", [64])).get({
          timeout: 10_000,
        });
        assert.equal(hog.wid, a.wid);
        const c = await (await client.sendTask<Wid>("p.wid", [])).get({ timeout: 10_000 });
        assert.notEqual(c.wid, a.wid, "the Web Worker holding 64 MiB was replaced");
        assert.equal(c.n, 1);
      },
    );
  });

  test("sandboxes: each permission set has its own Web Workers; denied access fails with PermissionDenied", async () => {
    await withWorker(t.url, {}, async (client, worker) => {
      const allowed = await client.sendTask<{ text: string; wid: string }>("p.read_allowed", []);
      assert.equal((await allowed.get({ timeout: 10_000 })).text, "pool fixture");
      const own = await taskFailure(
        (await client.sendTask("p.read_own_source", [])).get({ timeout: 10_000 }),
      );
      assert.equal(own.excType, "PermissionDenied");
      assert.equal(own.excModule, "celeriac");
      assert.match(
        String(own.excMessage[0]),
        /p\.read_own_source\[.+\] is not allowed read access/,
      );
      assert.match(String(own.excMessage[0]), /pool_app\.ts/);
      // In its sandbox: the sandbox's permissions are what to change.
      assert.match(String(own.excMessage[0]), /grant it in the task's `permissions` option/);
      const env = await taskFailure(
        (await client.sendTask("p.env_denied", [])).get({ timeout: 10_000 }),
      );
      assert.match(String(env.excMessage[0]), /p\.env_denied\[.+\] is not allowed env access/);
      // An import() of an address is a request: denied without import permission, as a
      // PermissionDenied (Deno throws a TypeError there).
      const imported = await taskFailure(
        (await client.sendTask("p.import_url", ["https://example.com/m.js"])).get({
          timeout: 10_000,
        }),
      );
      assert.equal(imported.excType, "PermissionDenied");
      assert.match(
        String(imported.excMessage[0]),
        /p\.import_url\[.+\] is not allowed import access to "example\.com:443"/,
      );
      const pure = await (await client.sendTask<{ n: number; wid: string; envAtLoad: boolean }>(
        "p.pure",
        [21],
      )).get({ timeout: 10_000 });
      assert.equal(pure.n, 42, "the worker carries on");
      assert.equal(pure.envAtLoad, true, "top-level code ran with the process's permissions");
      const plain = await (await client.sendTask<Wid>("p.wid", [])).get({ timeout: 10_000 });
      const wids = new Set([plain.wid, pure.wid]);
      assert.equal(wids.size, 2, "different sandboxes, different Web Workers");
      assert.equal(worker.stats.failed, 3);
    });
  });

  test("the worker's taskPermissions applies to tasks without their own", async () => {
    await withWorker(t.url, { app: plainApp, taskPermissions: "none" }, async (client) => {
      assert.equal(
        await (await client.sendTask<number>("t.add", [2, 3])).get({ timeout: 10_000 }),
        5,
      );
      const err = await taskFailure(
        (await client.sendTask("t.env", ["HOME"])).get({ timeout: 10_000 }),
      );
      assert.equal(err.excType, "PermissionDenied");
    });
  });

  test("the inline pool refuses sandboxed tasks, and enforces hard limits by failing the task", async () => {
    const inline = new Worker({ app: poolApp, pool: "inline", queues: ["unused"] });
    poolApp.configure({ broker: t.url, backend: t.url });
    await assert.rejects(() => inline.start(), /inline pool cannot enforce/);
    await poolApp.close();
    await withWorker(t.url, { app: plainApp, pool: "inline" }, async (client) => {
      const r = await client.sendTask("t.slow", [30_000], { timeLimit: 0.3 });
      const err = await taskFailure(r.get({ timeout: 10_000 }));
      assert.equal(err.excType, "TimeLimitExceeded");
    });
  });
}

Deno.test({
  name:
    "interop: Python Celery sees TimeLimitExceeded from billiard.exceptions (header and --time-limit)",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `pool-py-${crypto.randomUUID().slice(0, 8)}`;
  const worker = await celeriacWorker([
    "--app",
    "./tests/interop/tasks.ts",
    "--broker",
    transports[0].url,
    "--backend",
    REDIS_URL,
    "-Q",
    queue,
    // Two Web Workers, a nap each: one started in a Web Worker the other's limit ends is lost.
    "-c",
    "2",
    "--time-limit",
    "0.5",
    "--task-permissions",
    "none",
    "--max-tasks-per-child",
    "2",
  ]);
  try {
    const out = pyJsonLoads(
      await runPython(
        "pyclient.py",
        [pyJsonDumps([
          { task: "tasks.nap", args: [30], options: { time_limit: 0.3 } },
          { task: "tasks.nap", args: [30] },
          { task: "tasks.add", args: [1, 2] },
        ])],
        {
          CELERY_BROKER_URL: REDIS_URL,
          CELERY_RESULT_BACKEND: REDIS_URL,
          INTEROP_KEYPREFIX: redisPrefix,
          INTEROP_QUEUE: queue,
        },
      ),
    ) as { ok?: unknown; error?: { type: string; module: string; args: unknown[] }; id: string }[];
    assert.deepEqual(out[0].error, {
      type: "TimeLimitExceeded",
      module: "billiard.exceptions",
      args: [0.3],
    });
    assert.deepEqual(out[1].error, {
      type: "TimeLimitExceeded",
      module: "billiard.exceptions",
      args: [0.5],
    });
    assert.equal(out[2].ok, 3);
    assert.match(worker.output, /Hard time limit \(0\.3s\) exceeded for tasks\.nap/);
    const redis = await rawRedis();
    await redis.del(...out.map((o) => `celery-task-meta-${o.id}`));
    await redis.quit();
  } finally {
    await worker.stop();
  }
});

Deno.test("pool: clean up", async () => {
  if (!WITHOUT_REDIS) await deleteKeys(redisPrefix);
  await Deno.remove(kvDir, { recursive: true });
});
