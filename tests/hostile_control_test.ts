/**
 * Hostile remote-control requests reaching a worker's pidbox: whatever a
 * request holds, handling it never throws into the transport that
 * delivered it (a throw there is uncaught: on Redis it ends the worker
 * process, and with it every worker on the fanout), and no request grows
 * the pool past what the host can hold.
 */

import assert from "node:assert/strict";
import type { Broker } from "../src/broker/port.ts";
import {
  addressedTo,
  decodeControlRequest,
  decodeEnvelope,
  encodeControlRequest,
  encodeEnvelope,
  LamportClock,
  type Message,
  ProtocolError,
} from "../protocol.ts";
import {
  AutoscalePolicy,
  type ControlTarget,
  type PoolEvents,
  RemoteControl,
  runInspect,
  ThreadPool,
  type WorkerInspection,
} from "../worker.ts";

const NODE = "celeriac@hostile";

/** A pidbox on a fake broker: `deliver` hands it a raw request body, `replies` are what it sent. */
async function pidbox(clock = new LamportClock()): Promise<{
  deliver(body: string, headers?: Record<string, unknown>): void;
  replies: string[];
  revoked: string[];
  stop(): void;
}> {
  let onMessage: ((m: Message) => void) | undefined;
  const replies: string[] = [];
  const revoked: string[] = [];
  const broker = {
    subscribe(_exchange: string, fn: (m: Message) => void): Promise<void> {
      onMessage = fn;
      return Promise.resolve();
    },
    publish(message: Message): Promise<void> {
      replies.push(new TextDecoder().decode(message.body));
      return Promise.resolve();
    },
  } as unknown as Broker;
  const target: ControlTarget = {
    hostname: NODE,
    revoke: (ids) => {
      revoked.push(...ids);
      return [];
    },
    revoked: () => revoked,
    registered: () => [],
    setRateLimit: () => {},
    shutdown: () => {},
  };
  const ac = new AbortController();
  await new RemoteControl(broker, target, clock).start(ac.signal);
  return {
    deliver(body: string, headers: Record<string, unknown> = { clock: 1 }) {
      const request: Message = {
        body: new TextEncoder().encode(body),
        contentType: "application/json",
        contentEncoding: "utf-8",
        headers,
        properties: {},
      };
      const raw = encodeEnvelope(request, { exchange: "celery.pidbox", routing_key: "" }, "t");
      onMessage!(decodeEnvelope(raw));
    },
    replies,
    revoked,
    stop: () => ac.abort(),
  };
}

async function settle(replies: string[], n: number): Promise<void> {
  for (let i = 0; i < 200 && replies.length < n; i++) await new Promise((r) => setTimeout(r, 1));
}

Deno.test("pidbox: a request whose arguments hold an integer beyond 2^53 is answered, not thrown into the transport", async () => {
  const box = await pidbox();
  try {
    const reply = '"reply_to": {"exchange": "reply.celery.pidbox", "routing_key": "k"}';
    box.deliver(
      '{"method": "revoke", "arguments": {"task_id": ["t-1"], "n": 123456789012345678901234567890},' +
        ` "destination": null, "ticket": "k1", ${reply}}`,
    );
    box.deliver(
      '{"method": "ping", "arguments": {"x": [18446744073709551616]}, "destination": null, ' +
        `"ticket": "k2", ${reply}}`,
    );
    await settle(box.replies, 2);
    assert.deepEqual(box.revoked, ["t-1"]);
    assert.deepEqual(box.replies.map((r) => JSON.parse(r)), [
      { [NODE]: { ok: "tasks t-1 flagged as revoked" } },
      { [NODE]: { ok: "pong" } },
    ]);
  } finally {
    box.stop();
  }
});

Deno.test("pidbox: a destination list naming this node among others, or among values of other types, is answered; one that does not name it is not", async () => {
  // kombu's Node.handle_message (5.2): `if destination: if hostname in destination: dispatch`.
  // Before: a list holding a non-string was refused whole ("destination must list node names").
  const req = (dest: string) =>
    decodeControlRequest(
      encodeControlRequestBody(`{"method": "ping", "arguments": {}, "destination": ${dest}}`),
    );
  for (
    const [dest, answered] of [
      [`["celeriac@other", "${NODE}"]`, true],
      [`["${NODE}", {"toString": 1}, 5, null, ["${NODE}"]]`, true],
      [`[{"toString": 1}, "celeriac@other"]`, false],
      [`"${NODE}"`, true],
      [`{"${NODE}": 1}`, true],
    ] as const
  ) {
    assert.equal(addressedTo(req(dest), NODE), answered, dest);
  }
  // Naming no node at all: kombu answers nothing; refused by name (the worker logs it).
  for (const dest of ['[{"toString": 1}]', "[[1]]", "5", "true"]) {
    assert.throws(
      () => req(dest),
      (err: unknown) =>
        err instanceof ProtocolError &&
        /destination must list node names \(strings\), got /.test(err.message),
      dest,
    );
  }
  const box = await pidbox();
  try {
    const reply = '"reply_to": {"exchange": {"toString": 1}, "routing_key": "k"}';
    box.deliver(
      `{"method": "ping", "arguments": {}, "destination": [{"toString": 1}], "ticket": "k1", ${reply}}`,
    );
    box.deliver(
      `{"method": "ping", "arguments": {}, "destination": ["celeriac@a", 7, "${NODE}"], "ticket": "k2", ${reply}}`,
    );
    await settle(box.replies, 1);
    assert.deepEqual(box.replies.map((r) => JSON.parse(r)), [{ [NODE]: { ok: "pong" } }]);
  } finally {
    box.stop();
  }
});

Deno.test("pidbox: an empty destination, or a pattern without a matcher, addresses every node; a pcre pattern matches from the start, a glob takes [seq]", () => {
  // kombu: `if destination: ... elif pattern and matcher: match(...) else: dispatch`; its pcre
  // matcher is re.match (anchored at the start), its glob fnmatch.
  const req = (fields: string) =>
    decodeControlRequest(
      encodeControlRequestBody(`{"method": "ping", "arguments": {}, ${fields}}`),
    );
  for (
    const [fields, answered] of [
      ['"destination": []', true],
      ['"destination": [], "pattern": "nobody@*", "matcher": "glob"', false],
      ['"destination": "", "pattern": "celeriac@*", "matcher": "glob"', true],
      ['"destination": null, "pattern": "nobody@*"', true],
      ['"destination": null, "pattern": "nobody@*", "matcher": null', true],
      ['"destination": null, "pattern": "hostile", "matcher": "pcre"', false],
      ['"destination": null, "pattern": "celeriac@h", "matcher": "pcre"', true],
      ['"destination": null, "pattern": "celeriac@[gh]ostile", "matcher": "glob"', true],
      ['"destination": null, "pattern": "celeriac@[!h]ostile", "matcher": "glob"', false],
      ['"destination": {}, "pattern": "celeriac@[]h]ostile", "matcher": "glob"', true],
      ['"destination": 0, "pattern": "celeriac@hostile.", "matcher": "glob"', false],
    ] as const
  ) {
    assert.equal(addressedTo(req(fields), NODE), answered, fields);
  }
  // kombu raises MatcherNotInstalled only when it uses the matcher: a pattern and no destination.
  assert.throws(
    () => addressedTo(req('"destination": null, "pattern": "x", "matcher": "regex"'), NODE),
    /matcher must be "glob" or "pcre", got "regex"/,
  );
  assert.throws(
    () => addressedTo(req('"destination": null, "pattern": "x", "matcher": 7'), NODE),
    /matcher must be "glob" or "pcre", got 7$/,
  );
  assert.throws(
    () => addressedTo(req('"destination": null, "pattern": "x", "matcher": ["glob"]'), NODE),
    /matcher must be "glob" or "pcre", got an array$/,
  );
});

Deno.test("pidbox: an unknown matcher kombu does not use is ignored: beside a destination, or without a pattern", () => {
  const req = (fields: string) =>
    decodeControlRequest(
      encodeControlRequestBody(`{"method": "ping", "arguments": {}, ${fields}}`),
    );
  // Before: both refused when decoded, though every kombu node (the one named) answers them.
  assert.equal(addressedTo(req(`"destination": ["${NODE}"], "matcher": "regex"`), NODE), true);
  assert.equal(
    addressedTo(req(`"destination": ["other@h"], "pattern": "x", "matcher": "regex"`), NODE),
    false,
  );
  assert.equal(addressedTo(req('"destination": null, "matcher": "regex"'), NODE), true);
});

/** A message with this remote-control request body. */
function encodeControlRequestBody(body: string): Message {
  const m = encodeControlRequest({ method: "ping", arguments: {}, destination: null }, {
    clock: 1,
    expires: 0,
  });
  return { ...m, body: new TextEncoder().encode(body) };
}

const noEvents: PoolEvents = {
  onOutcomes: () => {},
  onPublish: () => Promise.resolve(),
  onLost: () => {},
  onTimeLimit: () => {},
};

Deno.test("pool_grow, autoscale and -c past 1,024 Web Workers are refused, and nothing grows", () => {
  const pool = new ThreadPool(
    { size: 2, slots: 1, module: "file:///tasks.ts", config: {} },
    noEvents,
  );
  // `celery control pool_grow 1000000000`: each Web Worker is a thread with its own V8 heap.
  assert.throws(() => pool.resize(1_000_000_000), /at most 1024 Web Workers/);
  assert.equal(pool.concurrency, 2);
  pool.resize(1022);
  assert.equal(pool.concurrency, 1024);
  assert.throws(() => pool.resize(1), /at most 1024 Web Workers/);
  assert.throws(
    () => new ThreadPool({ size: 5000, slots: 1, module: "file:///t.ts", config: {} }, noEvents),
    /at most 1024 Web Workers/,
  );
  const policy = new AutoscalePolicy({ max: 4, min: 1 });
  assert.throws(() => policy.update(1_000_000_000, 1_000_000_000, 1), /at most 1024/);
  assert.equal(policy.max, 4);
  assert.throws(() => new AutoscalePolicy({ max: 2000, min: 1 }), /at most 1024/);
});

Deno.test("pidbox: a request's clock header beyond 2^53 does not stop the worker's Lamport clock", async () => {
  const clock = new LamportClock();
  const box = await pidbox(clock);
  try {
    for (const c of [1e300, "1e300", 2 ** 60, Infinity]) {
      box.deliver('{"method": "ping", "arguments": {}, "destination": null}', { clock: c });
    }
    box.deliver('{"method": "ping", "arguments": {}, "destination": null}', { clock: 41 });
    // Every message still moves the clock on by one: events and replies stay ordered.
    assert.equal(clock.value, 42);
    assert.equal(clock.forward(), 43);
  } finally {
    box.stop();
  }
});

Deno.test("pidbox: pool_grow / pool_shrink with N not a whole number >= 1, and add_consumer without a queue name, are refused", async () => {
  const resized: number[] = [];
  const consumed: string[] = [];
  const unused = () => {
    throw new Error("not used by this test");
  };
  const w: WorkerInspection = {
    active: unused,
    reserved: unused,
    scheduled: unused,
    queryTask: unused,
    stats: unused,
    activeQueues: unused,
    conf: unused,
    report: unused,
    clock: unused,
    revokedTimes: unused,
    mergeRevoked: unused,
    setTimeLimit: unused,
    addConsumer: (q) => {
      consumed.push(q);
      return Promise.resolve(true);
    },
    cancelConsumer: (q) => Promise.resolve(consumed.push(`-${q}`) > 0),
    resizePool: (n) => void resized.push(n),
    autoscale: () => null,
    autoscaling: () => false,
  };
  const ask = (method: string, args: Record<string, unknown>) =>
    runInspect({ method, arguments: args, destination: null }, w, NODE);
  // Shown as Python's repr: JSON.stringify threw for a bigint inside (the reply became a TypeError).
  // A boolean or a list is no N either: true counted as 1 and [2] as 2.
  const shown: [unknown, string][] = [
    [-5, "-5"],
    [0, "0"],
    [1.5, "1.5"],
    ["x", "'x'"],
    [
      { x: 10n ** 20n },
      "{'x': 100000000000000000000}",
    ],
    [true, "True"],
    [[2], "[2]"],
  ];
  for (const [n, repr] of shown) {
    assert.deepEqual(await ask("pool_grow", { n }), {
      error: `pool_grow needs N, a whole number of Web Workers >= 1, got ${repr}`,
    });
    assert.match(((await ask("pool_shrink", { n })) as { error: string }).error, /pool_shrink/);
  }
  assert.deepEqual(
    resized,
    [],
    "a negative pool_shrink grew the pool, a negative pool_grow shrank it",
  );
  assert.deepEqual(await ask("pool_grow", {}), { ok: "pool will grow" }, "N defaults to 1");
  assert.deepEqual(await ask("pool_shrink", { n: "2" }), { ok: "pool will shrink" });
  assert.deepEqual(resized, [1, -2]);
  for (const queue of [{ x: 1 }, ["q"], 5, "", null]) {
    assert.deepEqual(await ask("add_consumer", { queue }), {
      error: "add_consumer needs a queue name",
    });
    assert.deepEqual(await ask("cancel_consumer", { queue }), {
      error: "cancel_consumer needs a queue name",
    });
  }
  assert.deepEqual(consumed, [], "a worker consumed from the queue '[object Object]'");
});

Deno.test("pidbox: a request refused for its matcher still moves the clock on, as kombu's does", async () => {
  // kombu's Node.handle_message adjusts the clock before it matches the node name.
  const clock = new LamportClock();
  const box = await pidbox(clock);
  try {
    box.deliver('{"method": "ping", "arguments": {}, "pattern": "x", "matcher": "regex"}', {
      clock: 41,
    });
    assert.equal(clock.value, 42);
    assert.deepEqual(box.replies, []);
  } finally {
    box.stop();
  }
});

Deno.test("pidbox: a request with no method still moves the clock on, as kombu's does", async () => {
  // kombu's Node.handle_message adjusts the clock, then fails at dispatch.
  const clock = new LamportClock();
  const box = await pidbox(clock);
  try {
    box.deliver('{"arguments": {}, "destination": null}', { clock: 41 });
    assert.equal(clock.value, 42);
    assert.deepEqual(box.replies, []);
  } finally {
    box.stop();
  }
});
