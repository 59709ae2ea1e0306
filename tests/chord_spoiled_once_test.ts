/**
 * A chord whose join keys another tool spoiled is failed exactly once, even
 * when its members join at the same moment: both joins read the spoiled key
 * before either deletes it (here: two joins started together, so their
 * reads go out before any reply), and only the join whose delete removed it
 * reports. Before the fix both joins rejected, and the worker logged
 * "Chord … failed" and stored the body's FAILURE twice (seen in CI with
 * two members on one worker).
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { reset } from "@logtape/logtape";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { openKvBackend } from "../src/backend/kv.ts";
import type { ChordFailure, ChordPart, ResultBackend } from "../src/backend/port.ts";
import { joinChords } from "../src/worker/canvas_send.ts";
import { ProtocolError } from "../protocol.ts";
import { chordPart, withChordBackend } from "./helpers/chord_keys.ts";
import { rawRedis } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { taskSig } from "./helpers/signatures.ts";

/**
 * Two members of chord `g` join at once on `backend`: exactly one join rejects with a
 * ProtocolError matching `pattern`, the other resolves `null`.
 */
async function joinsTwice(backend: ResultBackend, g: string, pattern: RegExp): Promise<void> {
  const settled = await Promise.allSettled([
    backend.chordPartReturn!(chordPart(g, 0)),
    backend.chordPartReturn!(chordPart(g, 1)),
  ]);
  const rejected = settled.filter((s) => s.status === "rejected");
  assert.equal(rejected.length, 1, `${g}: ${JSON.stringify(settled.map((s) => s.status))}`);
  const { reason } = rejected[0] as PromiseRejectedResult;
  assert.ok(reason instanceof ProtocolError, String(reason));
  assert.match(reason.message, pattern);
  const fulfilled = settled.find((s) => s.status === "fulfilled") as PromiseFulfilledResult<
    unknown
  >;
  assert.equal(fulfilled.value, null);
}

Deno.test({
  name:
    "redis chord joins at once on a spoiled size, delta or key type: exactly one rejects, the keys go",
  ignore: WITHOUT_REDIS,
}, async () => {
  await withChordBackend("chord-spoiled-once", async (backend, r, stem) => {
    await r.set(stem("size") + ".s", "lots");
    await joinsTwice(backend, "size", /\.s holds "lots", not a count/);
    await r.set(stem("delta") + ".s", "2");
    await r.set(stem("delta") + ".t", "x");
    await joinsTwice(backend, "delta", /\.t holds "x"/);
    await r.rpush(stem("stype") + ".s", "2");
    await joinsTwice(backend, "stype", /holds another type.*WRONGTYPE/);
    await r.set(stem("jtype") + ".j", "a string");
    await r.set(stem("jtype") + ".s", "2");
    await joinsTwice(backend, "jtype", /holds another type.*WRONGTYPE/);
    for (const g of ["size", "delta", "stype", "jtype"]) {
      assert.equal(await r.exists(stem(g) + ".j", stem(g) + ".t", stem(g) + ".s"), 0, g);
    }
  });
});

Deno.test({
  name: "redis chord joins on keys spoiled with bytes that are not UTF-8: one rejects, the keys go",
  ignore: WITHOUT_REDIS,
}, async () => {
  // Before: the claim was sent the text as read (U+FFFD for those bytes), which never equals what
  // Redis holds: every join resolved null, the chord was never failed and its keys stayed.
  await withChordBackend("chord-spoiled-bytes", async (backend, r, stem) => {
    await r.set(stem("size") + ".s", Buffer.from([0xff, 0x31]));
    await joinsTwice(backend, "size", /\.s holds "\uFFFD1", not a count/);
    await r.set(stem("delta") + ".s", "2");
    await r.set(stem("delta") + ".t", Buffer.from([0x31, 0xc3]));
    await joinsTwice(backend, "delta", /\.t holds "1\uFFFD"/);
    // A Python worker with result_serializer='pickle' (a pickle starts with \x80): the second
    // member to join completes the count and reads it.
    await r.zadd(stem("pickle") + ".j", 0, Buffer.from("80049517000000000000005d94284b01", "hex"));
    await r.set(stem("pickle") + ".s", "3");
    await joinsTwice(backend, "pickle", /an entry of .*\.j is no join entry/);
    for (const g of ["size", "delta", "pickle"]) {
      assert.equal(await r.exists(stem(g) + ".j", stem(g) + ".t", stem(g) + ".s"), 0, g);
    }
  });
});

/**
 * Two members of chord `g` (its size spoiled) join at once through `joinChords` on `backend`,
 * which passes the worker's failure on to the join when `passFailure` (the backend stores it
 * with its claim), else drops it (the worker stores it). One "Chord g failed" line, the body's
 * FAILURE stored and published once; what the worker stored itself is returned.
 */
async function joinThroughWorker(passFailure: boolean): Promise<string[]> {
  const records = await captureLogs("warning");
  try {
    const stored: string[] = [];
    await withChordBackend("chord-spoiled-once", async (backend, r, stem) => {
      await r.set(stem("g") + ".s", "lots");
      const bodyKey = stem("g").replace(/celery-taskset-meta-g$/, "celery-task-meta-body");
      const sub = await rawRedis();
      const published: string[] = [];
      sub.on("message", (_channel: string, message: string) => published.push(message));
      await sub.subscribe(bodyKey);
      const recording = {
        transport: backend.transport,
        store: (entries: Parameters<typeof backend.store>[0]) => {
          stored.push(...entries.map((e) => `${e.taskId} ${e.status}`));
          return backend.store(entries);
        },
        chordPartReturn: (p: ChordPart, failure?: ChordFailure) =>
          backend.chordPartReturn(p, passFailure ? failure : undefined),
        chordCleanup: (g: string) => backend.chordCleanup(g),
      } as unknown as ResultBackend;
      const io = { backend: recording, publish: () => Promise.resolve() };
      const body = taskSig("t.sum", "body");
      const join = (groupIndex: number) => ({
        part: chordPart("g", groupIndex),
        body,
        parent: {
          id: `member-${groupIndex}`,
          rootId: "root",
          origin: "test@host",
          defaultQueue: "celery",
        },
      });
      await Promise.all([joinChords([join(0)], io), joinChords([join(1)], io)]);
      await sub.ping(); // behind any message published before the joins ended
      await sub.quit();
      assert.equal(published.length, 1, JSON.stringify(published));
      const failed = records.map(logLine).filter((l) => l.startsWith("warning Chord g failed"));
      assert.equal(failed.length, 1, JSON.stringify(records.map(logLine)));
      assert.equal((await backend.get("body"))?.status, "FAILURE");
    });
    return stored;
  } finally {
    await reset();
  }
}

Deno.test({
  name:
    "redis chord joins at once on a spoiled size through the worker: one 'Chord failed' line, the body's FAILURE stored once",
  ignore: WITHOUT_REDIS,
}, async () => {
  // A backend that does not store the failure with its claim: the claiming worker stores it.
  assert.deepEqual(await joinThroughWorker(false), ["body FAILURE"]);
  // One that does: the worker stores nothing more.
  assert.deepEqual(await joinThroughWorker(true), []);
});

Deno.test("kv chord joins at once on a spoiled size or counter: exactly one rejects, the size and counter go", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-chord-spoiled-once-" });
  const backend = await openKvBackend(`kv://${dir}/results.sqlite`, { prefix: ["so"] });
  const raw = await Deno.openKv(`${dir}/results.sqlite`);
  const key = (g: string, ...rest: string[]) => ["so", "chord", g, ...rest];
  try {
    await raw.set(key("size", "size"), "lots");
    await joinsTwice(backend, "size", /"size","size"\] holds "lots", not a count/);
    await raw.set(key("count", "size"), 2);
    await raw.set(key("count", "count"), "x");
    await joinsTwice(backend, "count", /"count","count"\] holds "x", not a count/);
    await raw.set(key("past", "size"), 2);
    await raw.set(key("past", "count"), 5);
    await joinsTwice(backend, "past", /"past","count"\] counts \d members of a chord of 2/);
    // The size goes, so no later member completes the join ("past": the losing member may be
    // counted again after the keys went, as a member joining after the failure is).
    for (const g of ["size", "count", "past"]) {
      assert.equal((await raw.get(key(g, "size"))).value, null, g);
    }
    assert.equal((await raw.get(key("count", "count"))).value, null);
  } finally {
    raw.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
