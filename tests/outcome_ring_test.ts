import assert from "node:assert/strict";
import type { RunOutcome } from "../src/worker/executor.ts";
import { readOutcomes, writeOutcomes } from "../src/worker/outcome_ring.ts";
import { newRing, RingReader, RingWriter } from "../src/worker/shared_ring.ts";

const ok = (seq: number, meta?: string, blocked?: number): RunOutcome => {
  const o: RunOutcome = { seq, ok: true, runtime: seq / 10 };
  if (meta !== undefined) o.meta = meta;
  if (blocked !== undefined) o.blocked = blocked;
  return o;
};

Deno.test("outcome ring: outcomes come out as written, in order, across many wraps", () => {
  const memory = newRing();
  const writer = new RingWriter(memory);
  const reader = new RingReader(memory);
  let read = 0;
  // ~0.6-3 KiB an outcome in a 64 KiB ring: it wraps every few dozen, at every offset.
  for (let seq = 1; seq <= 600; seq++) {
    const meta = `{"result": "${"é".repeat(200 + (seq * 37) % 900)}", "n": ${seq}}`;
    assert.ok(writeOutcomes(writer, [ok(seq, meta, seq % 2 ? 1.5 : undefined)], 0, seq));
    if (seq % 3 !== 0) continue; // two or three wait in the ring at a time
    const { outcomes, now } = readOutcomes(reader, 0);
    assert.equal(now, seq);
    for (const o of outcomes) {
      read++;
      assert.equal(o.seq, read);
      assert.equal(o.runtime, read / 10);
      assert.equal(o.ok, true);
      assert.equal(o.blocked, read % 2 ? 1.5 : undefined);
      assert.equal(JSON.parse(o.meta!).n, read);
    }
  }
  assert.equal(read, 600);
});

Deno.test("outcome ring: a record waits for the posts made before it", () => {
  const memory = newRing();
  const writer = new RingWriter(memory);
  const reader = new RingReader(memory);
  assert.ok(writeOutcomes(writer, [ok(1, "{}")], 0, 1));
  assert.ok(writeOutcomes(writer, [ok(2)], 2, 2));
  assert.deepEqual(readOutcomes(reader, 1).outcomes.map((o) => o.seq), [1]);
  assert.deepEqual(readOutcomes(reader, 1).outcomes, []);
  const later = readOutcomes(reader, 2).outcomes;
  assert.deepEqual(later.map((o) => [o.seq, o.meta]), [[2, undefined]]);
});

Deno.test("outcome ring: an outcome not plain or too big, or a batch of several, is posted instead", () => {
  const memory = newRing();
  const writer = new RingWriter(memory);
  const reader = new RingReader(memory);
  assert.equal(
    writeOutcomes(writer, [{ seq: 2, ok: false, runtime: 0, repr: "boom" }], 0, 0),
    false,
  );
  assert.equal(writeOutcomes(writer, [ok(3, "x".repeat(30_000))], 0, 0), false);
  assert.equal(writeOutcomes(writer, [ok(4, "{}"), ok(5, "{}")], 0, 0), false);
  const later = { ...ok(6, "{}"), later: "a field added to RunOutcome" } as RunOutcome;
  assert.equal(writeOutcomes(writer, [later], 0, 0), false);
  assert.deepEqual(readOutcomes(reader, 0).outcomes, []);
  // Unread records fill it: the writer refuses rather than overwrite them.
  let written = 0;
  while (writeOutcomes(writer, [ok(written, "y".repeat(1000))], 0, 0)) written++;
  assert.ok(written > 50 && written < 70, `${written}`);
  const got = readOutcomes(reader, 0).outcomes;
  assert.deepEqual(got.map((o) => o.seq), [...Array(written).keys()]);
  assert.ok(writeOutcomes(writer, [ok(99, "z")], 0, 0));
  assert.deepEqual(readOutcomes(reader, 0).outcomes.map((o) => o.seq), [99]);
});

Deno.test("outcome ring: the reader's listener runs when the writer rings from another thread", async () => {
  const memory = newRing();
  const reader = new RingReader(memory);
  const got: number[] = [];
  let stop = false;
  const { promise, resolve } = Promise.withResolvers<void>();
  reader.listen(() => {
    for (const o of readOutcomes(reader, 0).outcomes) got.push(o.seq);
    if (got.length === 3) resolve();
  }, () => stop);
  const url = (f: string) => JSON.stringify(new URL(`../src/worker/${f}`, import.meta.url).href);
  const src = `import { writeOutcomes } from ${url("outcome_ring.ts")};
    import { RingWriter } from ${url("shared_ring.ts")};
    self.onmessage = async (e) => {
      const w = new RingWriter(e.data);
      for (let s = 1; s <= 3; s++) {
        writeOutcomes(w, [{ seq: s, ok: true, runtime: 0 }], 0, 0);
        await new Promise((r) => setTimeout(r, 20));
      }
    };`;
  const worker = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })), {
    type: "module",
  });
  worker.postMessage(memory);
  const timer = setTimeout(() => resolve(), 10_000);
  await promise;
  clearTimeout(timer);
  stop = true;
  worker.terminate();
  assert.deepEqual(got, [1, 2, 3]);
});
