/**
 * KV broadcast subscribers list what is new (from a cursor, with an overlap
 * behind it), not every broadcast kept for the minute; a broadcast committed
 * after one with a larger `seq` (another process's, or a late commit) is
 * still handed over, and nothing is handed over twice.
 *
 * Before, each look listed every broadcast kept (60 s of them): a KV
 * dashboard watching a `-E` worker at 50 tasks/s spent about 17 % of a CPU.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { keepBroadcast, watchBroadcasts } from "../src/broker/kv_fanout.ts";
import { encodeMessage } from "../src/broker/kv_message.ts";
import type { KvScope } from "../src/broker/kv_moves.ts";
import { openSharedKv, type SharedKv } from "../src/broker/kv_store.ts";
import { message } from "./broker_conformance.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { until } from "./helpers/waits.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const NS = ["fanout-test"];
const EXCHANGE = "ev";

/** The entries each `list` call yielded, in order, and how many listed every key (sweeps). */
interface Looks {
  entries: number[];
  sweeps: number;
}

/** A scope on `shared` whose `kv.list` counts what it yields. */
function countingScope(shared: SharedKv, looks: Looks): KvScope {
  const kv = new Proxy(shared.kv, {
    get(target, prop) {
      if (prop === "list") {
        return (selector: Deno.KvListSelector, options?: Deno.KvListOptions) => {
          const at = looks.entries.push(0) - 1;
          if (!("start" in selector)) looks.sweeps++;
          const iter = target.list(selector, options);
          return (async function* () {
            for await (const entry of iter) {
              looks.entries[at]++;
              yield entry;
            }
          })();
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    kv,
    shared,
    k: (...parts) => [...NS, ...parts],
    depthKey: (queue) => [...NS, "depth", queue],
  };
}

function textOf(m: { body: Uint8Array }): string {
  return JSON.parse(new TextDecoder().decode(m.body));
}

/** Run `fn` with a fresh KV file (its URL and path); removed after. */
async function withFile(fn: (url: string, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-fanout-" });
  try {
    await fn(`kv://${dir}/f.sqlite`, `${dir}/f.sqlite`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Store a well-formed broadcast `text` under `seq`, sent at `at`, as a late commit would. */
function rawBroadcast(op: Deno.AtomicOperation, seq: bigint, id: string, text: string, at: number) {
  const stored = encodeMessage(message(text), EXCHANGE, "");
  return op.set([...NS, "fanout", EXCHANGE, seq, id], { message: stored, at }, {
    expireIn: 60_000,
  });
}

Deno.test("kv broadcasts: a look lists the broadcasts from its cursor on, not all those kept", async () => {
  await withFile(async (url, path) => {
    const shared = await openSharedKv(path, url);
    const looks: Looks = { entries: [], sweeps: 0 };
    const scope = countingScope(shared, looks);
    const stop = new AbortController();
    try {
      // 1,000 broadcasts of the last 40 s, kept as a busy exchange keeps them
      const old = Date.now() - 40_000;
      for (let batch = 0; batch < 10; batch++) {
        const op = shared.kv.atomic();
        for (let i = 0; i < 100; i++) {
          const at = old + (batch * 100 + i) * 30;
          rawBroadcast(op, BigInt(at) * 1000n, crypto.randomUUID(), "old", at);
        }
        assert.ok((await op.commit()).ok);
      }
      const got: string[] = [];
      const reading = watchBroadcasts(
        scope,
        EXCHANGE,
        (m) => got.push(textOf(m)),
        stop.signal,
        () => true,
        { overlapMs: 100, sweepMs: 3_600_000 },
      );
      const rounds = 16;
      const perRound = 25;
      const want: string[] = [];
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < perRound; i++) {
          want.push(`r${round}-${i}`);
          await keepBroadcast(
            scope,
            EXCHANGE,
            encodeMessage(message(`r${round}-${i}`), EXCHANGE, ""),
          );
        }
        await until(`round ${round}`, () => got.length === want.length);
        await new Promise((r) => setTimeout(r, 150));
      }
      assert.deepEqual(got, want);
      // each look lists this round's and at most the last round's (100 ms of overlap), not the
      // 1,400 kept
      const most = Math.max(...looks.entries);
      assert.ok(most <= 3 * perRound, `a look listed ${most} entries: ${looks.entries.join(" ")}`);
      assert.equal(looks.sweeps, 0);
      stop.abort();
      await reading;
    } finally {
      stop.abort();
      await shared.release();
    }
  });
});

Deno.test("kv broadcasts: one committed behind the cursor is handed over by a sweep, once; a malformed one is logged once", async () => {
  const records = await captureLogs("warning");
  try {
    await withFile(async (url, path) => {
      const shared = await openSharedKv(path, url);
      const looks: Looks = { entries: [], sweeps: 0 };
      const scope = countingScope(shared, looks);
      const stop = new AbortController();
      try {
        const got: string[] = [];
        const reading = watchBroadcasts(
          scope,
          EXCHANGE,
          (m) => got.push(textOf(m)),
          stop.signal,
          () => true,
          { overlapMs: 100, sweepMs: 300 },
        );
        await keepBroadcast(scope, EXCHANGE, encodeMessage(message("a"), EXCHANGE, ""));
        await until("a", () => got.length === 1);
        // a seq 5 s behind the cursor (a commit that waited, or another process's clock), sent now
        const behind = BigInt(Date.now() - 5_000) * 1000n;
        const op = shared.kv.atomic();
        rawBroadcast(op, behind, "late", "late", Date.now());
        op.set([...NS, "fanout", EXCHANGE, behind, "evil"], null, { expireIn: 60_000 });
        assert.ok((await op.commit()).ok);
        await keepBroadcast(scope, EXCHANGE, encodeMessage(message("b"), EXCHANGE, ""));
        await until("the late broadcast", () => got.length === 3);
        const after = looks.sweeps;
        await until("three more sweeps", () => looks.sweeps >= after + 3);
        assert.deepEqual(got.toSorted(), ["a", "b", "late"]);
        const evil = records.map(logLine).filter((l) => l.includes('"evil"]'));
        assert.equal(evil.length, 1, evil.join("\n"));
        stop.abort();
        await reading;
      } finally {
        stop.abort();
        await shared.release();
      }
    });
  } finally {
    await reset();
  }
});

/** Broadcasts `args[2]` messages named `<args[1]>-<i>` on `args[0]`, 20 commits in flight. */
const PUBLISH_SCRIPT = `import { openKvBroker } from ${
  JSON.stringify(new URL("../src/broker/kv.ts", import.meta.url).href)
};
const [url, name, count] = Deno.args;
const broker = await openKvBroker(url, { prefix: ${JSON.stringify(NS)} });
const body = (i) => new TextEncoder().encode(JSON.stringify(name + "-" + i));
for (let i = 0; i < Number(count); i += 20) {
  await Promise.all(Array.from({ length: Math.min(20, Number(count) - i) }, (_, j) =>
    broker.broadcast(${JSON.stringify(EXCHANGE)}, {
      body: body(i + j),
      contentType: "application/json",
      contentEncoding: "utf-8",
      headers: { task: "x", id: name + (i + j) },
      properties: {},
    })));
}
await broker.close();
`;

// The order of seq is not the order of commits between processes: with no overlap behind the
// cursor (and no sweep) this lost 36 of 600 broadcasts in 1 of 5 runs.
Deno.test("kv broadcasts: two processes publishing at once on one file: each broadcast arrives once", async () => {
  await withFile(async (url, path) => {
    const shared = await openSharedKv(path, url);
    const looks: Looks = { entries: [], sweeps: 0 };
    const scope = countingScope(shared, looks);
    const stop = new AbortController();
    const dir = path.slice(0, path.lastIndexOf("/"));
    try {
      const got: string[] = [];
      const reading = watchBroadcasts(
        scope,
        EXCHANGE,
        (m) => got.push(textOf(m)),
        stop.signal,
        () => true,
        { sweepMs: 3_600_000 },
      );
      await Deno.writeTextFile(`${dir}/publish.ts`, PUBLISH_SCRIPT);
      const count = 300;
      const run = (name: string) =>
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--config",
            `${ROOT}deno.json`,
            `${dir}/publish.ts`,
            url,
            name,
            `${count}`,
          ],
          stdout: "null",
          stderr: "piped",
        }).output();
      const outs = await Promise.all([run("p1"), run("p2")]);
      for (const out of outs) assert.ok(out.success, new TextDecoder().decode(out.stderr));
      await until("every broadcast", () => got.length >= 2 * count);
      // three more looks, each listing a second behind the newest again: nothing twice
      const after = looks.entries.length;
      await until("three more looks", () => looks.entries.length >= after + 3);
      const want = ["p1", "p2"].flatMap((p) =>
        Array.from({ length: count }, (_, i) => `${p}-${i}`)
      );
      assert.equal(got.length, 2 * count, "broadcasts lost or handed over twice");
      assert.equal(looks.sweeps, 0);
      assert.deepEqual(got.toSorted(), want.toSorted());
      stop.abort();
      await reading;
    } finally {
      stop.abort();
      await shared.release();
    }
  });
});
