import assert from "node:assert/strict";
import { readRuns, writeRuns } from "../src/worker/run_ring.ts";
import { newRing, RingReader, RingWriter } from "../src/worker/shared_ring.ts";
import { runInfo, runRequest } from "./helpers/run_info.ts";

const enc = new TextEncoder();

Deno.test("run ring: a plain request comes out as it went in, bodies copied out of the ring", () => {
  const memory = newRing();
  const writer = new RingWriter(memory);
  const reader = new RingReader(memory);
  const batch = [
    runRequest(1, enc.encode("[[1, 2], {}, {}]")),
    runRequest(2, enc.encode('[["é"], {}, {}]'), {
      task: "tâches.x",
      storeResult: false,
      describe: true,
      extended: true,
      contentType: "application/x-msgpack",
      contentEncoding: "binary",
      info: runInfo({
        rootId: "id-2",
        retries: 3,
        redelivered: true,
        queue: "q2",
        hostname: "w@h",
      }),
    }),
  ];
  for (let round = 0; round < 2000; round++) {
    const one = batch[round % 2];
    assert.ok(writeRuns(writer, [one], 0), `round ${round}`);
    const got = readRuns(reader, 0);
    assert.deepEqual(got, [one]);
    assert.ok(got.every((r) => !(r.body.buffer instanceof SharedArrayBuffer)));
  }
});

Deno.test("run ring: a request with fields it does not carry, or a batch, is refused; a request waits for earlier posts", () => {
  const memory = newRing();
  const writer = new RingWriter(memory);
  const reader = new RingReader(memory);
  const body = enc.encode("[[], {}, {}]");
  const refused = [
    runRequest(1, body, { headers: { x: 1 } }),
    runRequest(1, body, { timeLimits: { soft: 1, hard: null } }),
    runRequest(1, body, { info: runInfo({ rootId: "other" }) }),
    runRequest(1, body, { info: runInfo({ rootId: "id-1", parentId: "p" }) }),
    runRequest(1, body, { info: runInfo({ rootId: "id-1", group: "g" }) }),
    runRequest(1, body, { info: runInfo({ rootId: "id-1", eta: new Date() }) }),
    runRequest(1, body, { info: runInfo({ rootId: "id-1", expires: new Date() }) }),
    runRequest(1, body, { info: runInfo({ rootId: "id-1", groupIndex: 0 }) }),
    runRequest(1, body, { info: runInfo({ rootId: "id-1", replacedTaskNesting: 1 }) }),
    runRequest(1, body, { decoded: [[], {}, {}] as never }),
    runRequest(1, new Uint8Array(70_000)),
    { ...runRequest(1, body), later: "a field added to RunRequest" } as never,
    runRequest(1, body, { info: { ...runInfo({ rootId: "id-1" }), later: 1 } as never }),
    // UTF-8 has no lone surrogate: the ring would bring U+FFFD where a post keeps it.
    runRequest(1, body, { id: "id\ud800", info: runInfo({ rootId: "id\ud800" }) }),
    runRequest(1, body, { task: "t\udc00" }),
    runRequest(1, body, { contentType: "application/json\ud800" }),
    runRequest(1, body, { contentEncoding: "utf-8\ud800" }),
    runRequest(1, body, { info: runInfo({ rootId: "id-1", queue: "q\ud800" }) }),
    runRequest(1, body, { info: runInfo({ rootId: "id-1", hostname: "w@h\udfff" }) }),
  ];
  for (const r of refused) assert.equal(writeRuns(writer, [r], 0), false);
  assert.equal(writeRuns(writer, [runRequest(0, body), runRequest(1, body)], 0), false, "a batch");
  assert.deepEqual(readRuns(reader, 5), []);
  assert.ok(writeRuns(writer, [runRequest(1, body)], 1));
  assert.ok(writeRuns(writer, [runRequest(2, body)], 3));
  assert.deepEqual(readRuns(reader, 0).map((r) => r.seq), []);
  assert.deepEqual(readRuns(reader, 2).map((r) => r.seq), [1]);
  assert.deepEqual(readRuns(reader, 3).map((r) => r.seq), [2]);
});

Deno.test("run ring: a task name or id that starts with U+FEFF keeps it", () => {
  const memory = newRing();
  const writer = new RingWriter(memory);
  const reader = new RingReader(memory);
  const one = runRequest(1, enc.encode("[[], {}, {}]"), {
    task: "\ufefftasks.add",
    id: "\ufeffid-1",
    info: runInfo({ rootId: "\ufeffid-1" }),
  });
  assert.ok(writeRuns(writer, [one], 0));
  assert.deepEqual(readRuns(reader, 0), [one]);
});
