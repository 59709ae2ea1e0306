import assert from "node:assert/strict";
import { openKvBackend } from "../src/backend/kv.ts";
import { KV_MAX_RESULT_BYTES } from "../src/backend/kv_meta_store.ts";
import { openKvBroker } from "../src/broker/kv.ts";
import { openSharedKv } from "../src/broker/kv_store.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { backendConformance } from "./backend_conformance.ts";
import { runDenoScript } from "./helpers/procs.ts";
import { until } from "./helpers/waits.ts";

const dir = Deno.makeTempDirSync({ prefix: "celeriac-kv-backend-" });
const url = `kv://${dir}/results.sqlite`;
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

backendConformance("kv", () => openKvBackend(url));

function success(taskId: string, result: unknown) {
  return {
    taskId,
    status: "SUCCESS" as const,
    meta: encodeResultMeta({ taskId, status: "SUCCESS", result, dateDone: new Date() }),
  };
}

Deno.test("kv backend: results expire after resultExpires seconds", async () => {
  const backend = await openKvBackend(url, { resultExpires: 1 });
  const keeper = await openKvBackend(url, { resultExpires: 0 });
  try {
    const id = crypto.randomUUID();
    const kept = crypto.randomUUID();
    const stored = Date.now();
    await backend.store([success(id, "short-lived")]);
    await keeper.store([success(kept, "kept")]);
    assert.equal((await backend.get(id))?.result, "short-lived");
    while (await backend.get(id) !== null) {
      assert.ok(Date.now() - stored < 5000, "the result did not expire within 5 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(Date.now() - stored >= 900, "the result expired too early");
    assert.equal((await backend.get(kept))?.result, "kept", "resultExpires 0 keeps results");
    await backend.store([success(id, "again")]);
    assert.equal((await backend.get(id))?.result, "again", "an expired SUCCESS may be replaced");
  } finally {
    await keeper.close();
    await backend.close();
  }
});

Deno.test("kv backend: an oversized result is refused with an EncodeError naming the limit", async () => {
  const backend = await openKvBackend(url);
  try {
    const id = crypto.randomUUID();
    await assert.rejects(
      backend.store([success(id, "x".repeat(KV_MAX_RESULT_BYTES))]),
      (e: Error) => e.name === "EncodeError" && /Redis backend/.test(e.message),
    );
    assert.equal(await backend.get(id), null);
    await backend.store([success(id, "x".repeat(100_000))]);
    assert.equal(((await backend.get(id))?.result as string).length, 100_000);
  } finally {
    await backend.close();
  }
});

Deno.test("kv backend: a broker and a backend on kv://:memory: share one database", async () => {
  const broker = await openKvBroker("kv://:memory:");
  const backend = await openKvBackend("kv://:memory:");
  const other = await openKvBackend("kv://:memory:");
  try {
    const id = crypto.randomUUID();
    await backend.store([success(id, 7)]);
    assert.equal((await other.get(id))?.result, 7);
    await broker.close();
    await backend.close();
    assert.equal((await other.get(id))?.result, 7, "closing the others keeps the database");
  } finally {
    await other.close();
  }
});

Deno.test("kv backend: prefixes keep namespaces apart", async () => {
  const a = await openKvBackend(url, { prefix: ["app-a"] });
  const b = await openKvBackend(`${url}?prefix=app-b`);
  try {
    const id = crypto.randomUUID();
    await a.store([success(id, "a")]);
    assert.equal(await b.get(id), null);
    assert.equal((await a.get(id))?.result, "a");
  } finally {
    await a.close();
    await b.close();
  }
});

function started(taskId: string, result: unknown) {
  return {
    taskId,
    status: "STARTED" as const,
    meta: encodeResultMeta({ taskId, status: "STARTED", result }),
  };
}

Deno.test("kv backend: a listener that throws rejects its own wait only; the other waits go on", async () => {
  const backend = await openKvBackend(url);
  try {
    const taskId = crypto.randomUUID();
    const seen: unknown[] = [];
    const failing = assert.rejects(
      backend.waitFor(taskId, undefined, (m) => {
        if (m.result === 2) throw new Error("listener broke");
      }),
      /listener broke/,
    );
    const other = backend.waitFor(taskId, undefined, (m) => seen.push(m.result));
    other.catch(() => {});
    await backend.store([started(taskId, 1)]);
    await until("the first state", () => seen.includes(1));
    // told by the re-check after the notification, not by a wait's first read
    await backend.store([started(taskId, 2)]);
    await failing;
    await until("the second state", () => seen.includes(2));
    await backend.store([success(taskId, 3)]);
    assert.equal((await other).result, 3);
  } finally {
    await backend.close();
  }
});

Deno.test("kv backend: a failed read of a long state's parts is read again, not the end of the waits", async () => {
  const backend = await openKvBackend(url);
  const shared = await openSharedKv(`${dir}/results.sqlite`, url);
  const getMany = shared.kv.getMany.bind(shared.kv);
  let failed = 0;
  shared.kv.getMany =
    ((keys: Deno.KvKey[], options?: { consistency?: Deno.KvConsistencyLevel }) => {
      if (failed === 0 && keys.some((k) => k.includes("celery-task-meta-part"))) {
        failed++;
        return Promise.reject(new Error("transient read failure"));
      }
      return getMany(keys, options);
    }) as Deno.Kv["getMany"];
  try {
    const taskId = crypto.randomUUID();
    const seen: unknown[] = [];
    const waiting = backend.waitFor(taskId, undefined, (m) => seen.push(m.result));
    waiting.catch(() => {});
    await backend.store([started(taskId, "x".repeat(100_000))]);
    await until("the long state", () => seen.length > 0);
    assert.equal(failed, 1);
    await backend.store([success(taskId, 3)]);
    assert.equal((await waiting).result, 3);
  } finally {
    shared.kv.getMany = getMany;
    await shared.release();
    await backend.close();
  }
});

Deno.test("kv backend: close rejects pending waits with an AbortError", async () => {
  const backend = await openKvBackend(url);
  const waiting = assert.rejects(
    backend.waitFor(crypto.randomUUID()),
    (e: Error) => e.name === "AbortError",
  );
  await new Promise((r) => setTimeout(r, 50));
  await backend.close();
  await waiting;
  await assert.rejects(backend.get("x"), /closed/);
});

Deno.test("kv backend: close while a wait is still on its first read rejects it with an AbortError", async () => {
  // Seen in CI on a loaded host: close() released the database under the wait's first read,
  // which rejected with "Database is closed." instead.
  for (let i = 0; i < 20; i++) {
    const backend = await openKvBackend(url);
    const waiting = assert.rejects(
      backend.waitFor(crypto.randomUUID()),
      (e: Error) => e.name === "AbortError",
    );
    if (i % 2) await Promise.resolve();
    await backend.close();
    await waiting;
  }
});

Deno.test("kv backend: bad options are refused", async () => {
  await assert.rejects(openKvBackend(url, { resultExpires: -1 }), RangeError);
  await assert.rejects(openKvBackend("kv://"), TypeError);
});

Deno.test("kv backend: waitFor wakes up when another process stores the result", async () => {
  const backend = await openKvBackend(url);
  const id = crypto.randomUUID();
  const script = `${dir}/store.ts`;
  Deno.writeTextFileSync(
    script,
    `import { openKvBackend } from ${JSON.stringify(import.meta.resolve("../src/backend/kv.ts"))};
import { encodeResultMeta } from ${
      JSON.stringify(import.meta.resolve("../src/protocol/result_meta.ts"))
    };
const [url, taskId] = Deno.args;
const backend = await openKvBackend(url);
const meta = encodeResultMeta({ taskId, status: "SUCCESS", result: "from another process" });
await backend.store([{ taskId, status: "SUCCESS", meta }]);
await backend.close();
`,
  );
  try {
    const waiting = backend.waitFor(id, AbortSignal.timeout(15_000));
    await runDenoScript(script, [url, id]);
    const stored = performance.now();
    const meta = await waiting;
    const latency = performance.now() - stored;
    assert.equal(meta.result, "from another process");
    assert.ok(latency < 500, `woken ${latency} ms after the store`);
  } finally {
    await backend.close();
  }
});

Deno.test("kv backend and broker: the URL's prefix wins over the option; an empty one is refused", async () => {
  const empty = /prefix must name at least one key part/;
  await assert.rejects(openKvBackend("kv://:memory:", { prefix: [] }), empty);
  await assert.rejects(openKvBroker("kv://:memory:", { prefix: [] }), empty);
  const dir = await Deno.makeTempDir();
  const url = `kv://${dir}/ns.sqlite`;
  const backend = await openKvBackend(`${url}?prefix=fromurl`, { prefix: ["ignored"] });
  try {
    const taskId = crypto.randomUUID();
    const meta = encodeResultMeta({ taskId, status: "SUCCESS", result: 1, dateDone: new Date() });
    await backend.store([{ taskId, status: "SUCCESS", meta }]);
    const kv = await Deno.openKv(`${dir}/ns.sqlite`);
    try {
      assert.notEqual((await kv.get(["fromurl", "celery-task-meta", taskId])).versionstamp, null);
    } finally {
      kv.close();
    }
  } finally {
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
