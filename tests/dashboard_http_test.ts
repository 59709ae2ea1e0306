/**
 * The dashboard's HTTP surface on a real server (Deno.serve on a free
 * port, an in-memory KV broker): auth (basic, bearer, required off
 * loopback), CSRF and read-only on actions, clear 4xx JSON errors, the live
 * stream, /metrics, the static UI, and actions that reach the broker.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard, type DashboardOptions, DashboardOptionsError } from "../dashboard.ts";
import { feed } from "./helpers/event_feed.ts";
import { DASHBOARD_USAGE } from "../src/cli/dashboard.ts";

async function withDashboard(
  options: Partial<DashboardOptions>,
  fn: (url: string, d: Dashboard, app: Celery, f: ReturnType<typeof feed>) => Promise<void>,
): Promise<void> {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const f = feed();
  const d = new Dashboard({
    app,
    port: 0,
    events: f.source,
    enableEvents: false,
    inspector: null,
    ...options,
  });
  const { url } = await d.start();
  try {
    await fn(url, d, app, f);
  } finally {
    await d.stop();
    await app.close();
  }
}

const now = () => Date.now() / 1000;

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), "condition not met in 2 s");
}

async function json(res: Response): Promise<Record<string, unknown>> {
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  return await res.json();
}

async function csrf(url: string, headers: HeadersInit = {}): Promise<string> {
  const s = await json(await fetch(`${url}/api/session`, { headers }));
  return s.csrfToken as string;
}

function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${url}/api/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

Deno.test("dashboard: listens on 127.0.0.1; refuses other addresses without auth", () => {
  const app = new Celery({ broker: "kv://:memory:" });
  // One DashboardOptionsError, worded with the options' names (the command line rewords it
  // with its flags); was a TypeError naming the flags, which a library user does not pass.
  const refused = (options: Partial<DashboardOptions>, option: string, message: RegExp) =>
    assert.throws(() => new Dashboard({ app, ...options }), (err: unknown) => {
      assert.ok(err instanceof DashboardOptionsError && err instanceof TypeError);
      assert.equal(err.name, "DashboardOptionsError");
      assert.equal(err.code, "DASHBOARD_OPTIONS");
      assert.equal(err.option, option);
      assert.match(err.message, message);
      return true;
    });
  refused(
    { hostname: "0.0.0.0" },
    "hostname",
    /^hostname 0\.0\.0\.0 is off the loopback interface: the dashboard needs authentication there, pass auth: \{ basic: \["user:pass"\] \} or auth: \{ token: "…" \}$/,
  );
  refused({ auth: { basic: ["nocolon"] } }, "basic", /^auth\.basic needs user:password/);
  refused({ auth: { token: "short" } }, "token", /^auth\.token needs at least 16/);
  new Dashboard({ app, hostname: "0.0.0.0", auth: { basic: ["a:b"] } }); // accepted
});

Deno.test("dashboard: basic auth and bearer token; a wrong password gets 401 JSON", async () => {
  const token = "t0ken-of-sixteen-chars";
  await withDashboard({ auth: { basic: ["admin:s3cret"], token } }, async (url) => {
    const none = await fetch(`${url}/api/overview`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate")!, /^Basic realm=/);
    assert.equal(((await json(none)).error as { code: string }).code, "unauthorized");
    const wrong = await fetch(`${url}/`, {
      headers: { authorization: `Basic ${btoa("admin:nope")}` },
    });
    assert.equal(wrong.status, 401);
    assert.equal(((await json(wrong)).error as { message: string }).message, "Wrong credentials");
    const ok = await fetch(`${url}/`, {
      headers: { authorization: `Basic ${btoa("admin:s3cret")}` },
    });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /<title>Celeriac dashboard<\/title>/);
    const bearer = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(bearer.status, 200);
    await bearer.body?.cancel();
    const badBearer = await fetch(`${url}/metrics`, { headers: { authorization: "Bearer x" } });
    assert.equal(badBearer.status, 401);
    await badBearer.body?.cancel();
    // browsers cannot send a bearer token: it works as the Basic password
    const asBasic = await fetch(`${url}/api/session`, {
      headers: { authorization: `Basic ${btoa(`any:${token}`)}` },
    });
    assert.equal(asBasic.status, 200);
    await asBasic.body?.cancel();
  });
});

Deno.test("dashboard: actions need the CSRF token, JSON, the same origin; read-only refuses them", async () => {
  await withDashboard({}, async (url, _d, _app, f) => {
    f.push({ type: "task-received", hostname: "w@h", timestamp: now(), uuid: "t1", name: "x" });
    let r = await post(url, "tasks/t1/revoke", {});
    assert.equal(r.status, 403);
    assert.equal(((await json(r)).error as { code: string }).code, "csrf");
    const token = await csrf(url);
    r = await post(url, "tasks/t1/revoke", {}, {
      "x-csrf-token": token,
      origin: "http://evil.example",
    });
    assert.equal(r.status, 403);
    assert.match(((await json(r)).error as { message: string }).message, /Cross-origin/);
    r = await fetch(`${url}/api/tasks/t1/revoke`, {
      method: "POST",
      headers: { "x-csrf-token": token, "content-type": "text/plain" },
      body: "{}",
    });
    assert.equal(r.status, 415);
    await r.body?.cancel();
  });
  await withDashboard({ readOnly: true }, async (url) => {
    const s = await json(await fetch(`${url}/api/session`));
    assert.equal(s.readOnly, true);
    const r = await post(url, "queues/celery/purge", { confirm: "celery" }, {
      "x-csrf-token": s.csrfToken as string,
    });
    assert.equal(r.status, 403);
    assert.equal(((await json(r)).error as { code: string }).code, "read_only");
  });
});

Deno.test("dashboard: bad input gets a clear 4xx JSON error", async () => {
  await withDashboard({}, async (url, _d, _app, f) => {
    const token = await csrf(url);
    const h = { "x-csrf-token": token };
    f.push(
      {
        type: "task-received",
        hostname: "w@h",
        timestamp: now(),
        uuid: "done",
        name: "x",
        args: "()",
        kwargs: "{}",
      },
      { type: "task-succeeded", hostname: "w@h", timestamp: now(), uuid: "done", result: "1" },
    );
    await until(() => _d.model.tasks.get("done")?.state === "SUCCESS");
    const cases: [Promise<Response>, number, string][] = [
      [fetch(`${url}/api/tasks/nope`), 404, "unknown_task"],
      // a revoke takes any id (dashboard_evicted_test.ts); a retry needs the task's args
      [post(url, "tasks/nope/retry", {}, h), 404, "unknown_task"],
      [post(url, "tasks/done/revoke", "{not json", h), 400, "bad_json"],
      [post(url, "tasks/done/revoke", "[1]", h), 400, "bad_json"],
      [post(url, "tasks/done/revoke", {}, h), 409, "finished"],
      [post(url, "tasks/done/retry", {}, h), 409, "not_failed"],
      [fetch(`${url}/api/tasks?limit=0`), 400, "bad_param"],
      [fetch(`${url}/api/workers/ghost@h`), 404, "unknown_worker"],
      [post(url, "workers/ghost@h/shutdown", {}, h), 404, "unknown_worker"],
      [post(url, "queues/celery/purge", {}, h), 400, "confirm"],
      [fetch(`${url}/api/nothing`), 404, "not_found"],
      [fetch(`${url}/api/tasks/100%`), 400, "bad_path"], // a % that starts no escape
      [fetch(`${url}/api/overview`, { method: "DELETE" }), 405, "method"],
      [fetch(`${url}/nothing.js`), 404, "not_found"],
    ];
    for (const [res, status, code] of cases) {
      const r = await res;
      const body = await json(r);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal((body.error as { code: string }).code, code);
      assert.ok((body.error as { message: string }).message.length > 10);
    }
    // %ff decodes, to a byte that is no UTF-8: the message said "is not URL-encoded"
    const utf8 = await json(await fetch(`${url}/api/tasks/%00%ff`));
    assert.equal(
      (utf8.error as { message: string }).message,
      "%00%ff is not valid UTF-8 once its % escapes are decoded",
    );
  });
});

Deno.test("dashboard: revoke reaches the broker; retry re-sends a failed task with its args", async () => {
  await withDashboard({}, async (url, d, app, f) => {
    const h = { "x-csrf-token": await csrf(url) };
    f.push(
      {
        type: "task-received",
        hostname: "w@h",
        timestamp: now(),
        uuid: "run1",
        name: "slow",
        args: "(1,)",
        kwargs: "{}",
      },
      {
        type: "task-received",
        hostname: "w@h",
        timestamp: now(),
        uuid: "f1",
        name: "tasks.add",
        args: "(2, 'x')",
        kwargs: "{'k': None}",
      },
      {
        type: "task-failed",
        hostname: "w@h",
        timestamp: now(),
        uuid: "f1",
        exception: "E()",
        traceback: "T",
      },
    );
    await until(() => d.model.tasks.get("f1")?.state === "FAILURE");
    // a signal Celery's signum() refuses would leave the task running on a Python worker
    for (const signal of ["SIGFOO", "sigterm", 9]) {
      const bad = await post(url, "tasks/run1/terminate", { signal }, h);
      assert.equal(bad.status, 400, String(signal));
      assert.equal(((await json(bad)).error as { code: string }).code, "bad_param");
    }
    assert.deepEqual(await (await app.broker()).listRevoked(), []);
    const r = await json(await post(url, "tasks/run1/terminate", { signal: "SIGKILL" }, h));
    assert.equal(r.ok, true);
    const revoked = await (await app.broker()).listRevoked();
    assert.deepEqual(revoked.map((e) => e.id), ["run1"]);
    assert.equal(await app.queueDepth("celery"), 0);
    const again = await json(await post(url, "tasks/f1/retry", {}, h));
    assert.equal(again.ok, true);
    assert.notEqual(again.id, "f1");
    const broker = await app.broker();
    const [m] = await broker.take(["celery"], { max: 1, signal: AbortSignal.timeout(2000) });
    assert.equal(m.headers.task, "tasks.add");
    assert.equal(m.headers.id, again.id);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(m.body)).slice(0, 2), [[2, "x"], {
      k: null,
    }]);
    await broker.ack([m]);
  });
});

Deno.test("dashboard: queues, purge with confirmation, parked messages and requeue", async () => {
  await withDashboard({ queues: ["extra"] }, async (url, _d, app) => {
    const h = { "x-csrf-token": await csrf(url) };
    await app.sendTask("a", [], { queue: "extra" });
    await app.sendTask("a", [], { queue: "extra" });
    const q = await json(await fetch(`${url}/api/queues`));
    assert.deepEqual(q.queues, [{ name: "celery", depth: 0 }, { name: "extra", depth: 2 }]);
    const purged = await json(await post(url, "queues/extra/purge", { confirm: "extra" }, h));
    assert.equal(purged.purged, 2);
    // park one message the way a worker does, then requeue it from the API
    await app.sendTask("unknown.task", [], { queue: "extra" });
    const broker = await app.broker();
    const [m] = await broker.take(["extra"], { max: 1, signal: AbortSignal.timeout(2000) });
    await broker.reject([{ delivery: m, reason: 'unregistered task "unknown.task"' }]);
    const parked = await json(await fetch(`${url}/api/parked`));
    const list = parked.parked as { queue: string; taskName: string; reason: string }[];
    assert.equal(list.length, 1);
    assert.equal(list[0].taskName, "unknown.task");
    assert.match(list[0].reason, /unregistered/);
    assert.equal(parked.total, 1);
    // a page smaller than the parking store says how many there are in all
    await app.sendTask("unknown.task", [], { queue: "extra" });
    const [m2] = await broker.take(["extra"], { max: 1, signal: AbortSignal.timeout(2000) });
    await broker.reject([{ delivery: m2, reason: 'unregistered task "unknown.task"' }]);
    const page = await json(await fetch(`${url}/api/parked?limit=1`));
    assert.equal((page.parked as unknown[]).length, 1);
    assert.equal(page.total, 2);
    const rq = await json(await post(url, "parked/requeue", { limit: 10 }, h));
    assert.equal(rq.requeued, 2);
    assert.equal(await app.queueDepth("extra"), 2);
    await app.purge("extra");
  });
});

Deno.test("dashboard: the Queues page's depths right after a purge or a requeue are the new ones", async () => {
  await withDashboard({ queues: ["extra"] }, async (url, _d, app) => {
    const h = { "x-csrf-token": await csrf(url) };
    const depth = async () => {
      const q = await json(await fetch(`${url}/api/queues`));
      return (q.queues as { name: string; depth: number }[]).find((x) => x.name === "extra")?.depth;
    };
    await app.sendTask("a", [], { queue: "extra" });
    await app.sendTask("a", [], { queue: "extra" });
    assert.equal(await depth(), 2);
    // the page asks for the depths again as soon as the purge is answered: not the cached 2
    await json(await post(url, "queues/extra/purge", { confirm: "extra" }, h));
    assert.equal(await depth(), 0);
    await app.sendTask("unknown.task", [], { queue: "extra" });
    const broker = await app.broker();
    const [m] = await broker.take(["extra"], { max: 1, signal: AbortSignal.timeout(2000) });
    await broker.reject([{ delivery: m, reason: 'unregistered task "unknown.task"' }]);
    assert.equal(await depth(), 0);
    await json(await post(url, "parked/requeue", { limit: 1 }, h));
    assert.equal(await depth(), 1);
    await app.purge("extra");
  });
});

Deno.test("dashboard: live stream pushes changed tasks and workers; hide-args masks payloads", async () => {
  await withDashboard({ hideArgs: true }, async (url, _d, _app, f) => {
    const res = await fetch(`${url}/api/stream`);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    f.push(
      {
        type: "worker-heartbeat",
        hostname: "w@h",
        timestamp: now(),
        freq: 2,
        active: 1,
        sw_ident: "celeriac",
        sw_ver: "0.1.0",
      },
      {
        type: "task-received",
        hostname: "w@h",
        timestamp: now(),
        uuid: "s1",
        name: "n",
        args: "('secret',)",
        kwargs: "{}",
      },
    );
    let text = "";
    while (!text.includes('"s1"')) text += (await reader.read()).value ?? "";
    const data = JSON.parse(text.split("data: ").pop()!.trim());
    assert.equal(data.tasks[0].args, "•••");
    assert.equal(data.workers[0].language, "celeriac");
    assert.equal(data.overview.workersOnline, 1);
    await reader.cancel();
    const detail = await json(await fetch(`${url}/api/tasks/s1`));
    assert.equal((detail.task as { args: string }).args, "•••");
    assert.equal((await fetch(`${url}/api/tasks?text=secret`)).status, 400);
  });
});

Deno.test("dashboard: /metrics and the static UI files", async () => {
  await withDashboard({}, async (url, _d, app, f) => {
    await app.sendTask("a", []);
    f.push({ type: "worker-online", hostname: "w@h", timestamp: now(), freq: 2 });
    await until(() => _d.model.eventCount === 1);
    const m = await fetch(`${url}/metrics`);
    assert.match(m.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const text = await m.text();
    assert.match(text, /^flower_worker_online\{worker="w@h"\} 1$/m);
    assert.match(text, /^celeriac_queue_length\{queue="celery"\} 1$/m);
    for (
      const path of [
        "/static/js/main.js",
        "/static/vendor/preact.mjs",
        "/static/vendor/uPlot.iife.min.js",
      ]
    ) {
      const r = await fetch(`${url}${path}`);
      assert.equal(r.status, 200, path);
      assert.match(r.headers.get("content-type")!, /text\/javascript/);
      assert.match(r.headers.get("content-security-policy")!, /default-src 'self'/);
      await r.body?.cancel();
    }
    const licenses = await (await fetch(`${url}/static/vendor/LICENSES.txt`)).text();
    assert.match(licenses, /^preact 10\.27\.2/);
    await app.purge("celery");
  });
});

Deno.test("dashboard: a worker's page asks each inspect command of that node only", async () => {
  const asked: string[] = [];
  const inspector: DashboardOptions["inspector"] = (command, { destination }) => {
    asked.push(`${command}:${destination?.join(",") ?? "*"}`);
    if (command === "stats" && !destination) {
      return Promise.resolve({ "w@h": { pool: { "max-concurrency": 4 } } }); // the periodic ask
    }
    if (command === "stats") return Promise.reject(new Error("no reply within 1 s"));
    if (command === "active_queues") return Promise.resolve({ "w@h": [{ name: "q1" }] });
    return Promise.resolve({ [destination![0]]: command === "registered" ? ["t.a"] : [] });
  };
  await withDashboard({ inspector }, async (url, d, _app, f) => {
    f.push({ type: "worker-online", hostname: "w@h", timestamp: now(), freq: 2 });
    await until(() => d.model.workers.get("w@h")?.queues[0] === "q1");
    await until(() => d.model.workers.get("w@h")?.pool === 4);
    const body = await json(await fetch(`${url}/api/workers/w@h`));
    const inspect = body.inspect as Record<string, unknown>;
    assert.deepEqual(inspect.registered, ["t.a"]);
    assert.deepEqual(inspect.active, []);
    assert.deepEqual(inspect.stats, { error: "no reply within 1 s" });
    assert.deepEqual(
      asked.filter((a) => a.endsWith("w@h")).sort(),
      ["active:w@h", "registered:w@h", "reserved:w@h", "scheduled:w@h", "stats:w@h"],
    );
    assert.deepEqual((await json(await fetch(`${url}/api/queues`))).queues, [
      { name: "celery", depth: 0 },
      { name: "q1", depth: 0 },
    ]);
  });
  await withDashboard({ inspector: null }, async (url, _d, _app, f) => {
    f.push({ type: "worker-online", hostname: "w@h", timestamp: now(), freq: 2 });
    await until(() => _d.model.workers.get("w@h") !== undefined);
    assert.equal((await json(await fetch(`${url}/api/workers/w@h`))).inspect, null);
  });
});

Deno.test("dashboard: a worker's page gives the pool size of the stats it shows", async () => {
  // After Grow pool the page's stats listed 3 processes while its Pool size said 2 until the
  // next periodic round, up to 10 s later.
  let processes = [11, 12];
  const inspector: DashboardOptions["inspector"] = (command, { destination }) => {
    const stats = { pool: { "max-concurrency": 2, processes } };
    if (command === "stats") return Promise.resolve({ "w@h": stats });
    if (command === "active_queues") return Promise.resolve({ "w@h": [{ name: "q1" }] });
    return Promise.resolve(destination ? { [destination[0]]: [] } : {});
  };
  await withDashboard({ inspector }, async (url, d, _app, f) => {
    f.push({ type: "worker-online", hostname: "w@h", timestamp: now(), freq: 2 });
    await until(() => d.model.workers.get("w@h")?.pool === 2);
    processes = [11, 12, 13]; // pool_grow 1
    const body = await json(await fetch(`${url}/api/workers/w@h`));
    assert.equal((body.worker as { pool: number }).pool, 3);
    assert.equal(d.model.workers.get("w@h")?.pool, 3);
  });
});

Deno.test("dashboard: a worker's inspect reply with an integer beyond 2^53 is served, digits and all", async () => {
  // Response.json threw for the bigint the decoder makes of it: the worker page answered 500.
  const inspector: DashboardOptions["inspector"] = (command, { destination }) =>
    Promise.resolve(
      destination && command === "stats" ? { [destination[0]]: { clock: 2n ** 70n } } : {},
    );
  await withDashboard({ inspector }, async (url, d, _app, f) => {
    f.push({ type: "worker-online", hostname: "w@h", timestamp: now(), freq: 2 });
    await until(() => d.model.workers.get("w@h") !== undefined);
    const res = await fetch(`${url}/api/workers/w@h`);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.match(text, /"stats":\{"clock":1180591620717411303424\}/);
  });
});

Deno.test("dashboard: an online worker that missed the periodic inspect is asked again soon", async () => {
  const asked: string[] = [];
  const online = Promise.withResolvers<void>();
  const inspector: DashboardOptions["inspector"] = async (command, { destination }) => {
    asked.push(`${command}:${destination?.join(",") ?? "*"}`);
    if (!destination) {
      await online.promise;
      return command === "stats" ? {} : { "w@h": [{ name: "q1" }] }; // stats missed w@h
    }
    return { "w@h": { pool: { "max-concurrency": 4 } } };
  };
  await withDashboard({ inspector }, async (_url, d, _app, f) => {
    f.push({ type: "worker-online", hostname: "w@h", timestamp: now(), freq: 2 });
    await until(() => d.model.workers.get("w@h")?.online === true);
    online.resolve();
    // the re-ask comes after 1 s, not at the next round 10 s later
    for (let i = 0; i < 100 && d.model.workers.get("w@h")?.pool !== 4; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(d.model.workers.get("w@h")?.pool, 4);
    assert.deepEqual(d.model.workers.get("w@h")?.queues, ["q1"]);
    assert.deepEqual(asked, ["active_queues:*", "stats:*", "stats:w@h"]);
  });
});

Deno.test("dashboard: a worker action says when the worker did not answer", async () => {
  await withDashboard({}, async (url, d, _app, f) => {
    const h = { "x-csrf-token": await csrf(url) };
    f.push({ type: "worker-online", hostname: "gone@h", timestamp: now(), freq: 2 });
    await until(() => d.model.workers.get("gone@h") !== undefined);
    const r = await json(await post(url, "workers/gone@h/pool_grow", { n: 2 }, h));
    assert.equal(r.message, "pool_grow sent to gone@h; no reply within 2 s");
    const bad = await post(url, "workers/gone@h/pool_grow", { n: 0 }, h);
    assert.equal(bad.status, 400);
    assert.match(((await json(bad)).error as { message: string }).message, /n must be a whole/);
    const scaled = await json(await post(url, "workers/gone@h/autoscale", { max: 4, min: 1 }, h));
    assert.equal(scaled.message, "autoscale sent to gone@h; no reply within 2 s");
    for (
      const [args, why] of [
        [{ min: 1 }, /max is required/],
        [{ max: 0, min: 0 }, /max must be a whole number 1\.\.1000/],
        [{ max: 3, min: -1 }, /min must be a whole number 0\.\.1000/],
      ] as const
    ) {
      const r = await post(url, "workers/gone@h/autoscale", args, h);
      assert.equal(r.status, 400);
      assert.match(((await json(r)).error as { message: string }).message, why);
    }
  });
});

Deno.test("dashboard: a task's workflow lists its root, children and parentless members", async () => {
  await withDashboard({}, async (url, d, _app, f) => {
    const ev = (uuid: string, root: string, parent: string | null, name: string) => ({
      type: "task-received",
      hostname: "w@h",
      timestamp: now(),
      uuid,
      name,
      root_id: root,
      parent_id: parent,
    });
    f.push(
      ev("h1", "r", null, "header"), // a chord's header, sent by a client: no parent
      ev("h2", "r", null, "header"),
      ev("r", "r", null, "first"),
      ev("c1", "r", "r", "next"), // a chain step
      ev("c2", "r", "c1", "last"),
    );
    await until(() => d.model.tasks.size === 5);
    const detail = await json(await fetch(`${url}/api/tasks/c2`));
    const steps = detail.workflow as { uuid: string; depth: number }[];
    assert.deepEqual(steps.map((s) => `${s.uuid}:${s.depth}`), [
      "r:0",
      "c1:1",
      "c2:2",
      "h1:1",
      "h2:1",
    ]);
    assert.deepEqual((detail.parent as { uuid: string }).uuid, "c1");
    assert.deepEqual((detail.root as { uuid: string }).uuid, "r");
  });
});

Deno.test("dashboard --read-only still switches task events on in workers, as Flower, and says so", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const sent: string[] = [];
  (app.control as { broadcast: (name: string) => Promise<unknown> }).broadcast = (name) => {
    sent.push(name);
    return Promise.resolve([]);
  };
  const d = new Dashboard({
    app,
    port: 0,
    readOnly: true,
    events: async function* () {},
    inspector: null,
  });
  const { url } = await d.start();
  try {
    const session = await json(await fetch(`${url}/api/session`));
    assert.equal(session.readOnly, true);
    assert.deepEqual(sent, ["enable_events"]);
  } finally {
    await d.stop();
    await app.close();
  }
  const help = DASHBOARD_USAGE.slice(DASHBOARD_USAGE.indexOf("--read-only"));
  assert.match(help.slice(0, help.indexOf("--hide-args")), /still\s+broadcasts\s+enable_events/);
});
