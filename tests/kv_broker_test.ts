import assert from "node:assert/strict";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { openKvBroker } from "../src/broker/kv.ts";
import { KV_MAX_MESSAGE_BYTES } from "../src/broker/kv_message.ts";
import { openSharedKv, parseKvUrl } from "../src/broker/kv_store.ts";
import type { Broker, Delivery } from "../src/broker/port.ts";
import { brokerConformance, message, uniqueQueue } from "./broker_conformance.ts";
import { KV_PUBLISH_SCRIPT } from "./helpers/kv_scripts.ts";
import { runDenoScript } from "./helpers/procs.ts";

const dir = Deno.makeTempDirSync({ prefix: "celeriac-kv-broker-" });
const url = `kv://${dir}/broker.sqlite`;
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

brokerConformance("kv", (o) => openKvBroker(url, o));

function textOf(d: Delivery): string {
  return JSON.parse(new TextDecoder().decode(d.body));
}

async function withBroker(fn: (b: Broker) => Promise<void>, vt?: number): Promise<void> {
  const broker = await openKvBroker(url, { visibilityTimeout: vt });
  try {
    await fn(broker);
  } finally {
    await broker.close();
  }
}

Deno.test("kv url: paths, memory and options are parsed; mistakes are explained", () => {
  assert.deepEqual(parseKvUrl("kv://data/q.sqlite"), { path: "data/q.sqlite" });
  assert.deepEqual(parseKvUrl("kv:///var/q.sqlite?visibility_timeout=60&prefix=app"), {
    path: "/var/q.sqlite",
    visibilityTimeout: 60,
    prefix: "app",
  });
  assert.deepEqual(parseKvUrl("kv://:memory:"), { path: ":memory:" });
  assert.throws(() => parseKvUrl("redis://localhost"), TypeError);
  assert.throws(() => parseKvUrl("kv://"), /names no database file/);
  assert.throws(() => parseKvUrl("kv://:memory:?visibility_timeout=0"), RangeError);
  assert.throws(() => parseKvUrl("kv://:memory:?visiblity_timeout=5"), /Unknown option/);
});

Deno.test("kv broker: an unopenable database is a BrokerConnectionError naming the path", async () => {
  // A file where the directory should be (`.celeriac` as a file), a file that is no
  // database: waiting cannot fix either, so a worker exits instead of retrying, and the
  // hint is about the path, not about a server.
  const file = `${dir}/not-a-dir`;
  Deno.writeTextFileSync(file, "x");
  const notDb = `${dir}/not-a-db.sqlite`;
  Deno.writeTextFileSync(notDb, "not a database, ".repeat(1000));
  for (const bad of [`kv://${file}/db.sqlite`, `kv://${notDb}`]) {
    await assert.rejects(openKvBroker(bad), (err: Error) => {
      assert.ok(err instanceof BrokerConnectionError, String(err));
      assert.equal(err.transient, false, bad);
      assert.match(err.message, /Check the path in the kv:\/\/ URL/);
      assert.doesNotMatch(err.message, /server/);
      return true;
    });
  }
});

Deno.test("kv broker: kv://:memory: opened twice in one process is one database", async () => {
  const a = await openKvBroker("kv://:memory:");
  const b = await openKvBroker("kv://:memory:");
  const q = uniqueQueue("memory");
  try {
    await a.publish(message("shared"), { routingKey: q });
    assert.equal(await b.queueDepth(q), 1);
    await a.close();
    const [d] = await b.take([q], { max: 1 });
    assert.equal(textOf(d), "shared");
    await b.ack([d]);
    await b.publish(message("still open"), { routingKey: q });
    assert.equal(textOf((await b.take([q], { max: 1 }))[0]), "still open");
  } finally {
    await b.close();
  }
  const fresh = await openKvBroker("kv://:memory:");
  try {
    await fresh.publish(message("new"), { routingKey: q });
    assert.equal(await fresh.queueDepth(q), 1, "the database was closed with its last user");
  } finally {
    await fresh.close();
  }
});

Deno.test("kv broker: priorities are quantised to steps 0/3/6/9, FIFO within a step", async () => {
  await withBroker(async (b) => {
    const q = uniqueQueue("steps");
    for (const p of [8, 2, 9, 5, 0, 6, 3, 1, 12, -4]) {
      await b.publish(message(`p${p}`, { properties: { priority: p } }), { routingKey: q });
    }
    const got = await b.take([q], { max: 10 });
    assert.deepEqual(got.map(textOf), [
      "p2",
      "p0",
      "p1",
      "p-4", // step 0
      "p5",
      "p3", // step 3
      "p8",
      "p6", // step 6
      "p9",
      "p12", // step 9
    ]);
    await b.ack(got);
  });
});

Deno.test("kv broker: several queues are taken priority-major, then in queue order", async () => {
  await withBroker(async (b) => {
    const q1 = uniqueQueue("major-a");
    const q2 = uniqueQueue("major-b");
    await b.publish(message("a6", { properties: { priority: 6 } }), { routingKey: q1 });
    await b.publish(message("b0", { properties: { priority: 0 } }), { routingKey: q2 });
    await b.publish(message("a0", { properties: { priority: 0 } }), { routingKey: q1 });
    const got = await b.take([q1, q2, q1], { max: 5 });
    assert.deepEqual(got.map(textOf), ["a0", "b0", "a6"]);
    await b.ack(got);
  });
});

Deno.test("kv broker: concurrent publishes share commits, keep their order and count", async () => {
  await withBroker(async (b) => {
    const q = uniqueQueue("grouped");
    const n = 500;
    await Promise.all(
      Array.from({ length: n }, (_, i) => b.publish(message(`m${i}`), { routingKey: q })),
    );
    assert.equal(await b.queueDepth(q), n);
    const kv = await Deno.openKv(`${dir}/broker.sqlite`);
    try {
      const stamps = new Set<string>();
      for await (const e of kv.list({ prefix: ["celeriac", "q", q] })) stamps.add(e.versionstamp);
      // One commit per message before grouping (500); grouped, at most 100 a commit.
      assert.ok(stamps.size <= n / 100 + 1, `${n} publishes took ${stamps.size} commits`);
    } finally {
      kv.close();
    }
    const got: string[] = [];
    while (got.length < n) {
      const ds = await b.take([q], { max: 100 });
      got.push(...ds.map(textOf));
      await b.ack(ds);
    }
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => `m${i}`));
  });
});

Deno.test("kv broker: concurrent acknowledgements share commits and delete every delivery", async () => {
  const prefix = [`acks-${crypto.randomUUID().slice(0, 8)}`];
  const b = await openKvBroker(url, { prefix });
  // The broker's own handle (one per path and process), counted as it commits.
  const shared = await openSharedKv(`${dir}/broker.sqlite`, url);
  const atomic = shared.kv.atomic;
  let commits = 0;
  shared.kv.atomic = function (this: Deno.Kv) {
    const op = atomic.call(this);
    const commit = op.commit;
    op.commit = () => {
      commits++;
      return commit.call(op);
    };
    return op;
  };
  try {
    const q = uniqueQueue("acks");
    const n = 300;
    await Promise.all(
      Array.from({ length: n }, (_, i) => b.publish(message(`m${i}`), { routingKey: q })),
    );
    const taken: Delivery[] = [];
    while (taken.length < n) taken.push(...await b.take([q], { max: 64 }));
    commits = 0;
    await Promise.all(taken.map((d) => b.ack([d])));
    // One commit per call before grouping (300); grouped, at most 200 deliveries a commit.
    assert.ok(commits <= 3, `${n} concurrent acks took ${commits} commits`);
    const left = await Array.fromAsync(shared.kv.list({ prefix: [...prefix, "unacked"] }));
    assert.equal(left.length, 0, "every acknowledged delivery is deleted");
    assert.equal(await b.queueDepth(q), 0);
    await b.ack(taken);
    assert.equal(await b.queueDepth(q), 0, "acknowledging again changes nothing");
  } finally {
    shared.kv.atomic = atomic;
    await shared.release();
    await b.close();
  }
});

Deno.test("kv broker: an oversized message is refused with a RangeError naming the limit", async () => {
  await withBroker(async (b) => {
    const q = uniqueQueue("big");
    const big = message("big");
    big.body = new Uint8Array(KV_MAX_MESSAGE_BYTES);
    await assert.rejects(
      b.publish(big, { routingKey: q }),
      (e: Error) =>
        e instanceof RangeError && /60000 bytes/.test(e.message) && /Redis/.test(e.message),
    );
    assert.equal(await b.queueDepth(q), 0);
    const fits = message("fits");
    fits.body = new Uint8Array(KV_MAX_MESSAGE_BYTES - 1024).fill(7);
    await b.publish(fits, { routingKey: q });
    const [d] = await b.take([q], { max: 1 });
    assert.equal(d.body.byteLength, KV_MAX_MESSAGE_BYTES - 1024);
    assert.ok(d.body.every((x) => x === 7));
    await b.reject([{ delivery: d, reason: "x".repeat(5000) }]);
    const parked = (await b.listParked({ limit: 1000 })).filter((p) => p.queue === q);
    assert.equal(parked.length, 1, "a large message with a long reason can be parked");
    assert.ok(parked[0].reason.length <= 1000);
    assert.ok(await b.requeueParked() >= 1);
    assert.equal(await b.purge(q), 1, "the large parked message went back to its queue");
  });
});

Deno.test("kv broker: requeueParked honours its limit and marks messages redelivered", async () => {
  await withBroker(async (b) => {
    const q = uniqueQueue("unpark");
    await b.requeueParked();
    for (const t of ["r0", "r1", "r2"]) await b.publish(message(t), { routingKey: q });
    const got = await b.take([q], { max: 3 });
    await b.reject(got.map((delivery) => ({ delivery, reason: "test" })));
    const parked = await b.listParked({ limit: 1000 });
    assert.deepEqual(parked.map((p) => p.taskId), got.map((d) => d.headers.id));
    assert.equal(parked[0].taskName, "conf.task", "the task name defaults to the task header");
    assert.equal(await b.requeueParked({ limit: 2 }), 2);
    assert.equal((await b.listParked()).length, 1);
    assert.equal(await b.queueDepth(q), 2);
    const back = await b.take([q], { max: 5 });
    assert.deepEqual(back.map(textOf), ["r0", "r1"]);
    assert.ok(back.every((d) => d.redelivered && d.headers.redelivered === true));
    await b.ack(back);
    assert.equal(await b.requeueParked(), 1);
    await b.ack(await b.take([q], { max: 1 }));
  });
});

Deno.test("kv broker: a restored delivery goes in front, redelivered in flag and headers", async () => {
  await withBroker(async (b) => {
    const q = uniqueQueue("restore");
    await b.publish(message("old"), { routingKey: q });
    const crashed = await openKvBroker(url, { visibilityTimeout: 0.5 });
    const [lost] = await crashed.take([q], { max: 1 });
    await crashed.close();
    await b.publish(message("new"), { routingKey: q });
    await new Promise((r) => setTimeout(r, 600));
    const rescuer = await openKvBroker(url, { visibilityTimeout: 0.5 });
    try {
      const got = await rescuer.take([q], { max: 2 });
      assert.deepEqual(got.map(textOf), ["old", "new"]);
      assert.equal(got[0].redelivered, true);
      assert.equal(got[0].headers.redelivered, true);
      assert.equal(got[0].headers.id, lost.headers.id);
      assert.equal(got[1].redelivered, false);
      assert.equal(got[1].headers.redelivered, undefined);
      await b.ack([lost]);
      await rescuer.ack(got);
    } finally {
      await rescuer.close();
    }
  });
});

Deno.test("kv broker: two sweepers restore an expired delivery only once", async () => {
  const q = uniqueQueue("sweepers");
  await withBroker(async (crashed) => {
    await crashed.publish(message("once"), { routingKey: q });
    await crashed.take([q], { max: 1 });
  }, 0.2);
  await new Promise((r) => setTimeout(r, 300));
  const sweepers = [await openKvBroker(url), await openKvBroker(url)];
  try {
    const got = await Promise.all(
      sweepers.map((s) => s.take([q], { max: 10, signal: AbortSignal.timeout(1000) })),
    );
    assert.deepEqual(got.flat().map(textOf), ["once"]);
    assert.equal(await sweepers[0].queueDepth(q), 0);
    await sweepers[0].ack(got.flat());
  } finally {
    await Promise.all(sweepers.map((s) => s.close()));
  }
});

Deno.test("kv broker: acking or requeueing a settled delivery is a no-op", async () => {
  await withBroker(async (b) => {
    const q = uniqueQueue("settled");
    await b.publish(message("x"), { routingKey: q });
    const first = await b.take([q], { max: 1 });
    await b.requeue(first);
    await b.requeue(first);
    await b.ack(first);
    assert.equal(await b.queueDepth(q), 1, "a second requeue or a late ack changes nothing");
    const again = await b.take([q], { max: 1 });
    await b.ack(again);
    await b.ack(again);
    await b.requeue(again);
    assert.equal(await b.queueDepth(q), 0);
  });
});

Deno.test("kv broker: close ends a pending take with [] and later calls are refused", async () => {
  const b = await openKvBroker(url);
  const q = uniqueQueue("close");
  const pending = b.take([q], { max: 1 });
  await new Promise((r) => setTimeout(r, 50));
  await b.close();
  assert.deepEqual(await pending, []);
  await assert.rejects(b.take([q], { max: 1 }), /this broker was closed/);
  await assert.rejects(b.publish(message("late"), { routingKey: q }), /closed/);
  await b.close();
});

Deno.test("kv broker: bad arguments are refused with what to change", async () => {
  await withBroker(async (b) => {
    await assert.rejects(b.take([], { max: 1 }), TypeError);
    await assert.rejects(b.take(["q"], { max: 0 }), RangeError);
    await assert.rejects(b.publish(message("x"), { routingKey: "" }), TypeError);
    await assert.rejects(b.declareQueue("q".repeat(300)), /256 bytes/);
    await assert.rejects(b.listParked({ limit: -1 }), RangeError);
  });
  await assert.rejects(openKvBroker(url, { visibilityTimeout: 0 }), RangeError);
});

Deno.test("kv broker: a take wakes up when another process publishes to the same file", async () => {
  const b = await openKvBroker(url);
  const q = uniqueQueue("xproc");
  const script = `${dir}/publish.ts`;
  Deno.writeTextFileSync(script, KV_PUBLISH_SCRIPT);
  try {
    const pending = b.take([q], { max: 1, signal: AbortSignal.timeout(15_000) });
    await runDenoScript(script, [url, q]);
    const published = performance.now();
    const got = await pending;
    const latency = performance.now() - published;
    assert.equal(got.length, 1, "the pending take was not woken");
    assert.equal(textOf(got[0]), "from another process");
    assert.equal(got[0].headers.id, "child");
    assert.ok(latency < 500, `woken ${latency} ms after the publish`);
    await b.ack(got);
  } finally {
    await b.close();
  }
});

Deno.test("kv broker: countParked reads a counter kept with parks and requeues, not every parked message", async () => {
  const prefix = [`count-${crypto.randomUUID().slice(0, 8)}`];
  const q = uniqueQueue("count");
  // The broker's own handle (one per path and process): its list() reads values in full.
  const shared = await openSharedKv(`${dir}/broker.sqlite`, url);
  const list = shared.kv.list;
  let listed = 0;
  shared.kv.list = function (this: Deno.Kv, ...args: Parameters<Deno.Kv["list"]>) {
    listed++;
    return list.apply(this, args);
  } as Deno.Kv["list"];
  const b = await openKvBroker(url, { prefix });
  try {
    for (const t of ["c0", "c1", "c2"]) await b.publish(message(t), { routingKey: q });
    const got = await b.take([q], { max: 3 });
    await b.reject(got.map((delivery) => ({ delivery, reason: "test" })));
    listed = 0;
    assert.equal(await b.countParked(), 3);
    assert.equal(listed, 0, "counted without listing the parked messages");
    assert.equal(await b.requeueParked({ limit: 2 }), 2);
    listed = 0;
    assert.equal(await b.countParked(), 1);
    assert.equal(listed, 0);
    // A store parked in before the counter existed is counted once by listing.
    await shared.kv.delete([...prefix, "parked-count"]);
    assert.equal(await b.countParked(), 1);
    listed = 0;
    assert.equal(await b.countParked(), 1);
    assert.equal(listed, 0, "the counter was set by the count that listed");
    await b.requeueParked();
    await b.purge(q);
  } finally {
    shared.kv.list = list;
    await b.close();
    await shared.release();
  }
});
