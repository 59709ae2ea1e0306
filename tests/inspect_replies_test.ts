/**
 * Reply shapes of the inspect and control commands, against the replies
 * captured from Celery 5.2.6 (tests/fixtures/celery-5.2/redis/control_replies.json):
 * request info, scheduled entries, kombu queue descriptions, the broker
 * block of `stats`, `hello`, `clock`, `time_limit`, `enable_events` /
 * `disable_events`, unknown commands and bad arguments; the numbers Celery
 * sends as Python floats are floats on the wire, whole seconds too.
 */

import assert from "node:assert/strict";
import type { Broker } from "../src/broker/port.ts";
import { Celery } from "../mod.ts";
import {
  decodeEnvelope,
  encodeControlRequest,
  encodeEnvelope,
  encodeTaskMessage,
  type Message,
} from "../protocol.ts";
import {
  brokerInfo,
  confReply,
  type ControlTarget,
  handleControl,
  type HeldTask,
  queueInfo,
  RemoteControl,
  requestInfo,
  runInspect,
  scheduledInfo,
  type WorkerInspection,
} from "../worker.ts";
import { withPythonFloats } from "../src/worker/inspect_commands.ts";
import { heldTaskOf } from "./helpers/run_info.ts";

const replies = (JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/celery-5.2/redis/control_replies.json", import.meta.url),
  ),
) as { replies: Record<string, unknown> }).replies;
const NODE = "celery@fixture-host";
function theirs<T>(command: string): T {
  const r = replies[command];
  return (Array.isArray(r) ? r[0] : r as Record<string, unknown>)[NODE] as T;
}

type Info = Record<string, unknown> & { delivery_info: Record<string, unknown> };

function held(id: string, args: unknown[], eta?: string, since = 0): HeldTask {
  const m = encodeTaskMessage({
    task: "capapp.add",
    id,
    args,
    kwargs: {},
    now: new Date(),
    eta,
    origin: "gen1@vm",
    replyTo: "r",
  });
  return heldTaskOf(m, since, true);
}

Deno.test("inspect replies: scheduled and reserved entries are Celery's, field for field", () => {
  const [py] = theirs<{ eta: string; priority: number; request: Info }[]>("inspect_scheduled");
  const ours = scheduledInfo(held(py.request.id as string, [7, 7], py.eta), NODE, false);
  // Celery's Redis transport cannot tell redeliveries (null); Celeriac's can (false).
  assert.deepEqual(
    { ...ours, request: { ...ours.request, delivery_info: { ...ours.request.delivery_info } } },
    {
      ...py,
      request: {
        ...py.request,
        delivery_info: { ...py.request.delivery_info, redelivered: false },
      },
    },
  );
  const [reserved] = theirs<Info[]>("inspect_reserved");
  const r = requestInfo(held(reserved.id as string, [100, 1]), {
    hostname: NODE,
    safe: false,
    started: false,
  });
  assert.deepEqual({ ...r, delivery_info: { ...r.delivery_info, redelivered: null } }, reserved);
});

Deno.test("inspect replies: active entries have Celery's fields and types; safe gives reprs", () => {
  const [py] = theirs<Info[]>("inspect_active");
  const t = held(py.id as string, [30], undefined, 1795490349524);
  const ours = requestInfo(t, { hostname: NODE, safe: false, started: true });
  assert.deepEqual(Object.keys(ours), Object.keys(py));
  assert.deepEqual(Object.keys(ours.delivery_info), Object.keys(py.delivery_info));
  assert.equal(ours.time_start, 1795490349.524);
  assert.equal(ours.acknowledged, true);
  assert.equal(typeof ours.worker_pid, "number");
  assert.deepEqual(ours.args, py.args);
  const [pySafe] = theirs<Info[]>("inspect_active_safe");
  const safe = requestInfo(t, { hostname: NODE, safe: true, started: true });
  assert.equal(safe.args, pySafe.args);
  assert.equal(safe.kwargs, pySafe.kwargs);
  // a message without argsrepr / kwargsrepr headers (another client's): reprs of its body,
  // a one-element tuple with its comma as Python writes it
  delete t.req.headers.argsrepr;
  delete t.req.headers.kwargsrepr;
  Object.assign(t.req, { argsrepr: null, kwargsrepr: null });
  const bare = requestInfo(t, { hostname: NODE, safe: true, started: true });
  assert.equal(bare.args, "(30,)");
  assert.equal(bare.kwargs, "{}");
});

Deno.test("inspect replies: active_queues and the stats broker block are kombu's", () => {
  const [py] = theirs<Record<string, unknown>[]>("inspect_active_queues");
  assert.deepEqual(queueInfo("celery"), py);
  const pyBroker = theirs<Record<string, Record<string, unknown>>>("inspect_stats").broker;
  const ours = brokerInfo("redis://127.0.0.1:6390/1");
  assert.deepEqual(ours, { ...pyBroker });
  const amqp = brokerInfo("amqp://guest:secret@rabbit:5672/prod");
  assert.equal(amqp.userid, "guest");
  assert.equal(amqp.virtual_host, "prod");
  assert.equal(amqp.transport, "amqp");
  assert.ok(!JSON.stringify(amqp).includes("secret"), "no password");
});

Deno.test("inspect conf: broker_url and result_backend hide every password, as Celery's **", () => {
  for (
    const [url, shown] of [
      ["redis://:sec,ret@h:6379/0", "redis://:**@h:6379/0"],
      ["redis://u:p@ss@h:6379/0", "redis://u:**@h:6379/0"],
      ["redis://:pa/ss@h:6379/0", "redis://:**@h:6379/0"],
      [
        "sentinel://:a@h1:26379;sentinel://:b@h2:26379",
        "sentinel://:**@h1:26379;sentinel://:**@h2:26379",
      ],
      ["redis://h:6379/0?password=secret", "redis://h:6379/0?password=**"],
    ]
  ) {
    const conf = confReply(new Celery({ broker: url, backend: url }).config, false);
    assert.equal(conf.broker_url, shown, url);
    assert.equal(conf.result_backend, shown, url);
  }
});

function inspection(over: Partial<WorkerInspection> = {}): WorkerInspection {
  const none = () => [];
  return {
    active: none,
    reserved: none,
    scheduled: none,
    queryTask: () => ({}),
    stats: () => ({}),
    activeQueues: none,
    conf: () => ({}),
    report: () => "",
    clock: () => 158,
    revokedTimes: () => ({ "00000000-0000-0000-0000-00000000dead": 12345.0 }),
    mergeRevoked: () => {},
    setTimeLimit: (task) => {
      if (task !== "capapp.sleeper") throw new RangeError("unknown task");
    },
    addConsumer: () => Promise.resolve(true),
    cancelConsumer: () => Promise.resolve(true),
    resizePool: () => {
      throw new Error("fixed size");
    },
    ...over,
  };
}

Deno.test("inspect replies: hello's revoked of odd shapes is read as Celery 5.2.6 reads it", async () => {
  // Checked against a real Celery 5.2.6 worker: [1, 2] adds 1 and 2 (which no task id, a
  // string, equals: a task "1" still runs), "abc" adds its characters, an unhashable element
  // or a timestamp that is not a number is an error reply. The reply goes through
  // withPythonFloats as the pidbox sends it (which turned the error into a JS TypeError).
  const hello = async (revoked: unknown) => {
    const merged: string[] = [];
    const w = inspection({ mergeRevoked: (ids) => merged.push(...ids) });
    const reply = withPythonFloats(
      "hello",
      await runInspect(
        {
          method: "hello",
          arguments: { from_node: "celery@other-node", revoked },
          destination: null,
        },
        w,
        NODE,
      ),
    ) as Record<string, unknown>;
    return { merged, error: reply.error };
  };
  assert.deepEqual(await hello([1, 2]), { merged: [], error: undefined }, "no ids '0', '1'");
  assert.deepEqual(await hello(["a", 5, null, "b"]), { merged: ["a", "b"], error: undefined });
  assert.deepEqual(await hello("abc"), { merged: ["a", "b", "c"], error: undefined });
  assert.deepEqual(await hello(["a", [1]]), {
    merged: ["a"],
    error: `TypeError("unhashable type: 'list'")`,
  });
  assert.deepEqual(await hello(5), {
    merged: [],
    error: `TypeError("'int' object is not iterable")`,
  });
  assert.deepEqual(await hello({ k: [1.5, "k"] }), { merged: ["k"], error: undefined });
  assert.deepEqual(await hello({ k2: "zz" }), {
    merged: [],
    error: `ValueError("Expecting float timestamp, got type <class 'str'> with value: zz")`,
  });
  assert.deepEqual(await hello(null), { merged: [], error: undefined });
});

Deno.test("inspect replies: hello, clock, time_limit, consumers, pool as Celery answers", async () => {
  const ask = (method: string, args: Record<string, unknown> = {}, w = inspection()) =>
    runInspect({ method, arguments: args, destination: null }, w, NODE);
  const merged: string[] = [];
  const hello = await ask("hello", {
    from_node: "celery@other-node",
    revoked: { a1: 1.0 },
  }, inspection({ mergeRevoked: (ids) => merged.push(...ids) })) as Record<string, unknown>;
  const pyHello = theirs<Record<string, Record<string, unknown>>>("hello");
  assert.deepEqual(Object.keys(hello), Object.keys(pyHello));
  const dead = "00000000-0000-0000-0000-00000000dead";
  assert.deepEqual((hello.revoked as Record<string, unknown>)[dead], pyHello.revoked[dead]);
  assert.deepEqual(merged, ["a1"]);
  assert.equal(await ask("hello", { from_node: NODE }), null, "no reply to itself");
  assert.deepEqual(await ask("clock"), { clock: 158 });
  assert.deepEqual(
    await ask("time_limit", { task_name: "capapp.sleeper", hard: 120, soft: 60 }),
    theirs("time_limit"),
  );
  assert.deepEqual(await ask("time_limit", { task_name: "nope" }), { error: "unknown task" });
  assert.deepEqual(await ask("add_consumer", { queue: "extra_q" }), theirs("add_consumer"));
  assert.deepEqual(await ask("cancel_consumer", { queue: "extra_q" }), theirs("cancel_consumer"));
  const resized: number[] = [];
  const resizable = inspection({ resizePool: (n) => void resized.push(n) });
  assert.deepEqual(await ask("pool_grow", { n: 2 }, resizable), { ok: "pool will grow" });
  assert.deepEqual(await ask("pool_shrink", {}, resizable), { ok: "pool will shrink" });
  assert.deepEqual(resized, [2, -1], "pool_shrink without n shrinks by 1, as Celery");
  await assert.rejects(ask("pool_grow", { n: 1 }), /fixed size/);
  assert.deepEqual(await ask("autoscale", { max: 4, min: 1 }), {
    error: "ValueError('Autoscale not enabled')",
  }, "Celery's reply from a worker without --autoscale");
});

Deno.test("control replies: events on/off, heartbeat, unknown command, bad arguments", () => {
  let events = true;
  let beats = 0;
  const target: ControlTarget = {
    hostname: NODE,
    revoke: () => [],
    revoked: () => [],
    registered: () => [],
    setRateLimit: () => {},
    shutdown: () => {},
    setTaskEvents: (on) => {
      const changed = events !== on;
      events = on;
      return changed;
    },
    heartbeat: () => beats++,
  };
  const ask = (method: string, args: Record<string, unknown> = {}) =>
    handleControl({ method, arguments: args, destination: null }, target);
  assert.deepEqual(ask("enable_events"), theirs("enable_events"), "already enabled, as with -E");
  assert.deepEqual(ask("disable_events"), { ok: "task events disabled" });
  assert.deepEqual(ask("disable_events"), theirs("disable_events"));
  assert.deepEqual(ask("enable_events"), { ok: "task events enabled" });
  // Celery 5.2's worker replies None (sent only when the request has a reply_to).
  assert.equal(ask("heartbeat"), null, "`celery control heartbeat` gets a reply");
  assert.equal(beats, 1);
  assert.deepEqual(ask("no_such_command"), theirs("unknown_command"));
  assert.throws(() => ask("revoke", {}), /task_id/);
});

Deno.test("control replies: terminate with a name that is no signal is refused, nothing terminated", () => {
  // Celery 5.2's signum() raises for it and the task runs on; Celeriac terminated it and said OK.
  const killed: [string[], boolean][] = [];
  const target: ControlTarget = {
    hostname: NODE,
    revoke: (ids, terminate) => {
      killed.push([ids, terminate]);
      return terminate ? ids : [];
    },
    revoked: () => [],
    registered: () => [],
    setRateLimit: () => {},
    shutdown: () => {},
  };
  const ask = (method: string, args: Record<string, unknown>) =>
    handleControl({ method, arguments: args, destination: null }, target) as Record<string, string>;
  for (const signal of ["SIGFOO", "sigterm", "KILL ", true, 99999, -9, 65, 9.5]) {
    const reply = ask("revoke", { task_id: ["t1"], terminate: true, signal });
    assert.match(
      reply.error,
      /^ValueError\('unknown signal .*SIGTERM, SIGKILL or KILL/,
      String(signal),
    );
    assert.ok(ask("terminate", { task_id: ["t1"], signal }).error, String(signal));
  }
  assert.deepEqual(killed, []);
  for (const signal of ["SIGKILL", "TERM", 9, "", undefined, null]) {
    assert.deepEqual(ask("revoke", { task_id: ["t1"], terminate: true, signal }), {
      ok: "terminate: t1",
    });
  }
  assert.deepEqual(ask("revoke", { task_id: ["t2"], signal: "SIGFOO" }), {
    ok: "tasks t2 flagged as revoked",
  }, "a revoke without terminate does not use the signal, as in Celery");
  assert.equal(killed.length, 7);
});

/** The reply texts a pidbox answering `method` publishes, its requests passed through a Redis envelope. */
async function replyText(
  inspect: WorkerInspection,
  method: string,
  args: Record<string, unknown> = {},
): Promise<string> {
  let deliver: ((m: Message) => void) | undefined;
  const replies: string[] = [];
  const broker = {
    subscribe(_exchange: string, onMessage: (m: Message) => void): Promise<void> {
      deliver = onMessage;
      return Promise.resolve();
    },
    publish(message: Message): Promise<void> {
      replies.push(new TextDecoder().decode(message.body));
      return Promise.resolve();
    },
  } as unknown as Broker;
  const target: ControlTarget = {
    hostname: NODE,
    revoke: () => [],
    revoked: () => [],
    registered: () => [],
    setRateLimit: () => {},
    shutdown: () => {},
    inspect,
  };
  const ac = new AbortController();
  await new RemoteControl(broker, target).start(ac.signal);
  const request = encodeControlRequest({
    method,
    arguments: args,
    destination: null,
    ticket: "t-1",
    replyTo: { exchange: "reply.celery.pidbox", routingKey: "k" },
  }, { clock: 1, expires: Date.now() / 1000 + 10 });
  const raw = encodeEnvelope(request, { exchange: "celery.pidbox", routing_key: "" }, "tag");
  deliver!(decodeEnvelope(raw));
  for (let i = 0; i < 100 && replies.length === 0; i++) await new Promise((r) => setTimeout(r, 1));
  ac.abort();
  assert.equal(replies.length, 1, `one reply to ${method}`);
  return replies[0];
}

Deno.test("control replies: time_start and hello's revoked times are Python floats on the wire, whole seconds too", async () => {
  const [py] = theirs<Info[]>("inspect_active");
  const running = held(py.id as string, [30], undefined, 1795490349000);
  const w = inspection({
    active: () => [requestInfo(running, { hostname: NODE, safe: false, started: true })],
    queryTask: () => ({
      [py.id as string]: [
        "active",
        requestInfo(running, { hostname: NODE, safe: false, started: true }),
      ],
    }),
    reserved: () => [requestInfo(held("r1", [1]), { hostname: NODE, safe: false, started: false })],
  });
  assert.match(await replyText(w, "active"), /"time_start": 1795490349\.0, "acknowledged": true/);
  assert.match(
    await replyText(w, "query_task", { ids: [py.id] }),
    /\["active", \{"id": "[^"]+", .*"time_start": 1795490349\.0, /,
  );
  assert.match(await replyText(w, "reserved"), /"time_start": null, /);
  // Celery's text for the revoked id it was sent with 12345.0 (a whole float).
  const dead = "00000000-0000-0000-0000-00000000dead";
  const hello = await replyText(w, "hello", { from_node: "celery@other-node", revoked: {} });
  assert.match(hello, /^\{"celery@fixture-host": \{"revoked": \{/);
  assert.ok(
    hello.includes(`"${dead}": [12345.0, "${dead}"]`),
    `${hello} has Celery's [12345.0, id]`,
  );
  assert.match(hello, /\}, "clock": 158\}\}$/);
});
