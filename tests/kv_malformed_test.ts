/**
 * One malformed value written under a KV broker's or backend's keys (by
 * another program, another version, a hand edit) never stops a take, a
 * broadcast reader, the restore sweep, listing or requeueing parked
 * messages, or a result read: the bad entry is parked or listed as
 * malformed, with a log line naming its key, and everything else goes on.
 */
import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { openKvBroker } from "../src/broker/kv.ts";
import { openKvBackend } from "../src/backend/kv.ts";
import { encodeMessage, nextSeq } from "../src/broker/kv_message.ts";
import { parkMalformed, readDepth } from "../src/broker/kv_depth.ts";
import { type KvScope, moveBack } from "../src/broker/kv_moves.ts";
import type { Unacked } from "../src/broker/kv_message.ts";
import {
  depthProblem,
  messageProblem,
  parkedProblem,
  unackedProblem,
} from "../src/broker/kv_entry_check.ts";
import { resultProblem } from "../src/backend/kv_result_check.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { message } from "./broker_conformance.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { until } from "./helpers/waits.ts";

/** Run `fn` with a fresh KV file's URL and path; the directory is removed after. */
async function withFile(fn: (url: string, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-malformed-" });
  try {
    await fn(`kv://${dir}/b.sqlite`, `${dir}/b.sqlite`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Write raw values straight into the file, as another program would. */
async function writeRaw(path: string, entries: [Deno.KvKey, unknown][]): Promise<void> {
  const kv = await Deno.openKv(path);
  try {
    for (const [key, value] of entries) await kv.set(key, value);
  } finally {
    kv.close();
  }
}

function textOf(body: Uint8Array): string {
  return JSON.parse(new TextDecoder().decode(body));
}

const good = encodeMessage(message("x"), "", "q");

Deno.test("kv entry check: what is wrong with each kind of stored value", () => {
  assert.equal(messageProblem(good), null);
  assert.match(messageProblem(null)!, /null/);
  assert.match(messageProblem({ ...good, body: "b" })!, /body is a string/);
  assert.match(messageProblem({ ...good, envelope: {} })!, /envelope/);
  assert.match(messageProblem({ ...good, step: "x" })!, /priority step/);
  assert.match(messageProblem({ ...good, step: NaN })!, /priority step/);
  assert.match(unackedProblem({ message: good, queue: "q", deadline: "x" })!, /deadline/);
  assert.match(unackedProblem({ message: 1, queue: "q", deadline: 0 })!, /its message/);
  assert.match(parkedProblem({ queue: "q", reason: 3, parkedAt: 0 })!, /reason/);
  assert.match(depthProblem("x")!, /not a Deno.KvU64/);
  assert.match(depthProblem(new Deno.KvU64(2n ** 64n - 1n))!, /below zero/);
  assert.equal(depthProblem(null), null);
  assert.match(resultProblem({ meta: "", status: "SUCCESS", expiresAt: 0, parts: 1 })!, /parts/);
});

Deno.test("kv take: malformed values under a queue key are parked, naming the key; the good messages of every queue are taken", async () => {
  const records = await captureLogs("warning");
  try {
    await withFile(async (url, path) => {
      const broker = await openKvBroker(url);
      try {
        await broker.publish(message("a"), { routingKey: "q" });
        await broker.publish(message("b"), { routingKey: "q-other" });
        const bad: [string, unknown][] = [
          ["null", null],
          ["string", "hello"],
          ["no-envelope", { body: good.body, step: 0, redelivered: false }],
          ["body-string", { ...good, body: "not bytes" }],
          ["step-string", { ...good, step: "x" }],
        ];
        // step 0 and a sequence before the good message's: listed first
        await writeRaw(path, bad.map(([id, v]) => [["celeriac", "q", "q", 0, 1n, id], v]));
        const taken = await broker.take(["q", "q-other"], { max: 20 });
        assert.deepEqual(taken.map((d) => textOf(d.body)).sort(), ["a", "b"]);
        await broker.ack(taken);
        const parked = await broker.listParked();
        assert.equal(parked.length, bad.length);
        for (const [id] of bad) {
          assert.ok(parked.some((p) => p.reason.includes(`"${id}"]`) && p.queue === "q"), id);
        }
        assert.equal(await broker.requeueParked(), 0); // never put back to fail again
        // the depth lowered by the parks (they were never counted) is reset
        assert.equal(await broker.queueDepth("q"), 0);
        const lines = records.map(logLine);
        assert.ok(
          lines.some((l) => l.includes('["celeriac","q","q",0,1n,"null"]') && l.includes("null")),
          lines.join("\n"),
        );
      } finally {
        await broker.close();
      }
    });
  } finally {
    await reset();
  }
});

Deno.test("kv depth: a depth counter that is not a KvU64 is reset; publishes and takes go on", async () => {
  const records = await captureLogs("warning");
  try {
    await withFile(async (url, path) => {
      const broker = await openKvBroker(url);
      try {
        await broker.publish(message("a"), { routingKey: "d" });
        await writeRaw(path, [[["celeriac", "depth", "d"], "x"]]);
        await broker.publish(message("b"), { routingKey: "d" });
        assert.equal(await broker.queueDepth("d"), 2);
        const taken = await broker.take(["d"], { max: 5 });
        assert.deepEqual(taken.map((d) => textOf(d.body)), ["a", "b"]);
        await broker.ack(taken);
        assert.equal(await broker.queueDepth("d"), 0);
        await writeRaw(path, [[["celeriac", "depth", "d"], { n: 1 }]]);
        assert.equal(await broker.queueDepth("d"), 0); // reading resets it
        await broker.publish(message("c"), { routingKey: "d" });
        assert.equal(await broker.queueDepth("d"), 1);
        assert.ok(
          records.map(logLine).some((l) =>
            l.includes('["celeriac","depth","d"]') && l.includes("not a Deno.KvU64")
          ),
        );
      } finally {
        await broker.close();
      }
    });
  } finally {
    await reset();
  }
});

Deno.test("kv parked counter: one that is not a KvU64 is reset where a park or requeue fails on it; nothing is parked twice", async () => {
  const records = await captureLogs("warning");
  try {
    await withFile(async (url, path) => {
      const broker = await openKvBroker(url);
      try {
        await broker.publish(message("u"), { routingKey: "pc" });
        await broker.publish(message("e"), { routingKey: "pc" });
        const [unacked, early] = await broker.take(["pc"], { max: 2 });
        await broker.ack([early]);
        await writeRaw(path, [[["celeriac", "parked-count"], "x"]]);
        await broker.reject([{ delivery: unacked, reason: "refused u" }]);
        await writeRaw(path, [[["celeriac", "parked-count"], { n: 1 }]]);
        await broker.reject([{ delivery: early, reason: "refused e" }]);
        assert.deepEqual((await broker.listParked()).map((p) => p.reason), [
          "refused u",
          "refused e",
        ]);
        assert.equal(await broker.countParked(), 2);
        await writeRaw(path, [[["celeriac", "parked-count"], "y"]]);
        assert.equal(await broker.requeueParked(), 2);
        assert.equal(await broker.countParked(), 0);
        assert.equal(await broker.queueDepth("pc"), 2);
        const back = await broker.take(["pc"], { max: 5 });
        assert.deepEqual(back.map((d) => textOf(d.body)), ["u", "e"]);
        await broker.ack(back);
        assert.ok(
          records.map(logLine).some((l) =>
            l.includes('["celeriac","parked-count"]') && l.includes("not a Deno.KvU64")
          ),
        );
      } finally {
        await broker.close();
      }
    });
  } finally {
    await reset();
  }
});

Deno.test("kv broadcasts: a malformed value under the fanout key is logged and skipped; later broadcasts arrive", async () => {
  const records = await captureLogs("warning");
  try {
    await withFile(async (url, path) => {
      // sent before the reader began: skipped like any old broadcast, not logged
      await writeRaw(path, [[["celeriac", "fanout", "ex", 0n, "old"], { at: 1, message: 5 }]]);
      const broker = await openKvBroker(url);
      const stop = new AbortController();
      try {
        const got: string[] = [];
        await broker.subscribe("ex", (m) => got.push(textOf(m.body)), { signal: stop.signal });
        await broker.broadcast("ex", message("one"));
        await until("the first broadcast", () => got.length === 1);
        // under a current seq: one far behind the reader's cursor waits for its sweep
        // (kv_fanout_cursor_test)
        await writeRaw(path, [[["celeriac", "fanout", "ex", nextSeq(), "evil"], null]]);
        await broker.broadcast("ex", message("two"));
        await broker.broadcast("ex", message("three"));
        await until("the later broadcasts", () => got.length === 3);
        assert.deepEqual(got, ["one", "two", "three"]);
        const lines = records.map(logLine).filter((l) => l.includes('"evil"]'));
        assert.equal(lines.length, 1, lines.join("\n")); // once, not at every look
        const old = records.map(logLine).filter((l) => l.includes('"old"]'));
        assert.deepEqual(old, []);
      } finally {
        stop.abort();
        await broker.close();
      }
    });
  } finally {
    await reset();
  }
});

Deno.test("kv restore sweep: a malformed unacked entry is parked; the expired delivery is restored", async () => {
  const records = await captureLogs("warning");
  try {
    await withFile(async (url, path) => {
      const first = await openKvBroker(url, { visibilityTimeout: 1 });
      await first.publish(message("held"), { routingKey: "s" });
      assert.equal((await first.take(["s"], { max: 1 })).length, 1);
      await first.close(); // its consumer "dies" holding it
      // "!" sorts before the UUID tags: the sweep reads it first
      await writeRaw(path, [[["celeriac", "unacked", "!evil"], null]]);
      const second = await openKvBroker(url, { visibilityTimeout: 1 });
      try {
        // the signal only keeps a failure from hanging: [] then fails below
        const again = await second.take(["s"], { max: 1, signal: AbortSignal.timeout(20_000) });
        assert.deepEqual(again.map((d) => textOf(d.body)), ["held"]);
        assert.equal(again[0].redelivered, true);
        await second.ack(again);
        const parked = await second.listParked();
        assert.equal(parked.length, 1);
        assert.match(parked[0].reason, /\["celeriac","unacked","!evil"\]: it is null/);
        assert.ok(records.map(logLine).some((l) => l.includes('"!evil"]')));
      } finally {
        await second.close();
      }
    });
  } finally {
    await reset();
  }
});

Deno.test("kv parked: a malformed parked entry is listed as malformed and left parked; the others are listed and requeued", async () => {
  const records = await captureLogs("warning");
  try {
    await withFile(async (url, path) => {
      await writeRaw(path, [[["celeriac", "parked", 0n, "evil"], null]]);
      const broker = await openKvBroker(url);
      try {
        await broker.publish(message("p"), { routingKey: "pq" });
        const [d] = await broker.take(["pq"], { max: 1 });
        await broker.reject([{ delivery: d, reason: "refused" }]);
        const listed = await broker.listParked();
        assert.equal(listed.length, 2);
        const evil = listed.find((p) => p.id === "evil")!;
        assert.match(evil.reason, /malformed parked entry \["celeriac","parked",0n,"evil"\]/);
        assert.equal(listed.find((p) => p.id !== "evil")!.reason, "refused");
        assert.equal(await broker.requeueParked(), 1);
        const back = await broker.take(["pq"], { max: 1 });
        assert.deepEqual(back.map((m) => textOf(m.body)), ["p"]);
        await broker.ack(back);
        assert.deepEqual((await broker.listParked()).map((p) => p.id), ["evil"]);
        assert.ok(records.map(logLine).some((l) => l.includes('"evil"]')));
      } finally {
        await broker.close();
      }
    });
  } finally {
    await reset();
  }
});

Deno.test("kv results: a value of unknown shape under a result key is a ProtocolError naming the key, not PENDING", async () => {
  await withFile(async (url, path) => {
    const cases: [string, unknown][] = [
      ["null", null],
      ["string", "hello"],
      ["status-number", { meta: '{"status": "SUCCESS", "result": 1}', status: 5, expiresAt: 0 }],
      ["parts-bogus", {
        meta: "",
        parts: { id: "p", count: 1e9 },
        status: "SUCCESS",
        expiresAt: 0,
      }],
    ];
    await writeRaw(path, cases.map(([id, v]) => [["celeriac", "celery-task-meta", id], v]));
    const backend = await openKvBackend(url);
    try {
      for (const [id] of cases) {
        const key = new RegExp(`\\["celeriac","celery-task-meta","${id}"\\]`);
        await assert.rejects(
          backend.get(id),
          (e) => e instanceof ProtocolError && key.test(e.message),
        );
        await assert.rejects(
          backend.waitFor(id, AbortSignal.timeout(20_000)), // only keeps a failure from hanging
          (e) => e instanceof ProtocolError && key.test(e.message),
        );
      }
      assert.equal(await backend.get("never-stored"), null);
    } finally {
      await backend.close();
    }
  });
});

Deno.test("kv park of a malformed entry: a failed commit is thrown, not retried with the value unwrapped", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const key = ["t", "q", "q", 0, 1n, "id"];
    await kv.set(key, "hello");
    const entry = await kv.get(key) as Deno.KvEntry<unknown>;
    // a database whose next commit fails for another reason than size
    let fail = true;
    const flaky = new Proxy(kv, {
      get(target, prop) {
        if (prop !== "atomic") return Reflect.get(target, prop, target).bind(target);
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = () => {
            if (!fail) return commit();
            fail = false;
            return Promise.reject(new Error("disk I/O error"));
          };
          return op;
        };
      },
    });
    const keys = {
      kv: flaky,
      k: (...p: Deno.KvKeyPart[]) => ["t", ...p],
      depthKey: (q: string) => ["t", "depth", q],
    };
    await assert.rejects(parkMalformed(keys, entry, "q", "it is a string", true), /disk I\/O/);
    assert.equal((await kv.get(key)).value, "hello");
    // one too large to wrap in a parked record is parked as it is
    const big = "x".repeat(65_500);
    await kv.set(key, big);
    const bigEntry = await kv.get(key) as Deno.KvEntry<unknown>;
    assert.equal(await parkMalformed(keys, bigEntry, "q", "it is a string", true), true);
    const [parked] = await Array.fromAsync(kv.list({ prefix: ["t", "parked"] }));
    assert.ok(parked.value === big, "parked as it is");
  } finally {
    kv.close();
  }
});

Deno.test("kv depth reset: a counter changed while the messages are counted is read and counted again", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const depthKey = ["t", "depth", "q"];
    await kv.set(depthKey, "x");
    await kv.set(["t", "q", "q", 0, 1n, "a"], good);
    // another writer changes the counter (and adds a message) during the first count
    let first = true;
    const busy = new Proxy(kv, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target).bind(target);
        if (prop !== "list") return value;
        return (...args: Parameters<Deno.Kv["list"]>) => {
          if (first) {
            first = false;
            return (async function* () {
              yield* target.list(...args);
              await target.set(["t", "q", "q", 0, 2n, "b"], good);
              await target.set(depthKey, "y");
            })();
          }
          return value(...args);
        };
      },
    });
    const keys = {
      kv: busy,
      k: (...p: Deno.KvKeyPart[]) => ["t", ...p],
      depthKey: () => depthKey,
    };
    assert.equal(await readDepth(keys, "q"), 2);
    assert.deepEqual((await kv.get(depthKey)).value, new Deno.KvU64(2n));
  } finally {
    kv.close();
  }
});

Deno.test("kv move back: a malformed depth counter is reset and the message still moves in the same call", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const depthKey = ["t", "depth", "q"];
    await kv.set(depthKey, "x");
    const key = ["t", "unacked", "tag"];
    await kv.set(key, { message: good, queue: "q", deadline: 0 });
    const entry = await kv.get<Unacked>(key) as Deno.KvEntry<Unacked>;
    const scope = {
      kv,
      k: (...p: Deno.KvKeyPart[]) => ["t", ...p],
      depthKey: () => depthKey,
    } as unknown as KvScope;
    assert.equal(await moveBack(scope, entry, true, true), true);
    assert.equal((await kv.get(key)).versionstamp, null);
    const waiting = await Array.fromAsync(kv.list({ prefix: ["t", "q", "q"] }));
    assert.equal(waiting.length, 1);
    assert.deepEqual((await kv.get(depthKey)).value, new Deno.KvU64(1n));
  } finally {
    kv.close();
  }
});
