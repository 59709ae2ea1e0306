import assert from "node:assert/strict";
import type { RunOutcome, RunRequest } from "../src/worker/executor.ts";
import { packOutcomes, packRun, unpackOutcomes, unpackRun } from "../src/worker/run_batch.ts";
import { runInfo, runRequest } from "./helpers/run_info.ts";

const enc = new TextEncoder();

/**
 * Every field a request can carry set, each to a value other than the usual
 * one (`Required`: a field added to RunRequest must be added here, and so to
 * the packing, or this does not compile).
 */
function unusual(seq: number, body: Uint8Array): Required<RunRequest> {
  return {
    seq,
    task: "tasks.other",
    id: `other-${seq}`,
    body,
    contentType: "application/x-msgpack",
    contentEncoding: "binary",
    headers: { compression: "application/x-gzip", task: "tasks.other", big: 10n ** 20n },
    decoded: { args: [1, "two"], kwargs: { k: null }, embed: { chain: null } } as never,
    storeResult: false,
    describe: true,
    extended: true,
    timeLimits: { soft: 1.5, hard: null },
    info: runInfo({
      retries: 3,
      rootId: "root-1",
      parentId: "parent-1",
      group: "group-1",
      groupIndex: 2,
      eta: new Date("2026-01-02T03:04:05.678Z"),
      expires: new Date("2026-02-03T04:05:06.789Z"),
      queue: "other-queue",
      redelivered: true,
      hostname: "other@host",
    }),
  };
}

function roundTrip(batch: RunRequest[]): RunRequest[] {
  return unpackRun(structuredClone(packRun(batch)));
}

Deno.test("run batch: requests come back field for field through a post's clone", () => {
  const one = enc.encode("[[1], {}, {}][[2], {}, {}][[3], {}, {}]");
  const batch = [
    runRequest(1, one.subarray(0, 13)),
    unusual(2, one.subarray(13, 26)),
    runRequest(3, one.subarray(26, 39)),
    { ...runRequest(4, one.subarray(0, 0)), info: runInfo({ rootId: null }) },
  ];
  const back = roundTrip(batch);
  assert.deepEqual(back, batch);
  assert.ok(back.every((r) => r.body.buffer === back[0].body.buffer), "one buffer cloned once");
});

Deno.test("run batch: bodies of buffers of their own come back as they were", () => {
  const batch = [
    runRequest(1, enc.encode("[[1], {}, {}]")),
    unusual(2, enc.encode("\x92\x90\x80")),
  ];
  assert.deepEqual(roundTrip(batch), batch);
});

Deno.test("run batch: a batch of many task names and queues keeps each one's", () => {
  const body = enc.encode("[[], {}, {}]");
  const batch = Array.from({ length: 40 }, (_, i) => ({
    ...runRequest(i, body),
    task: `tasks.t${i % 23}`,
    info: runInfo({ rootId: `id-${i}`, queue: `q${i % 7}`, hostname: `w${i % 3}@h` }),
  }));
  assert.deepEqual(roundTrip(batch), batch);
  assert.deepEqual(roundTrip([]), []);
});

/** An outcome with every field named, unset ones undefined, as unpackOutcomes gives them. */
function full(o: RunOutcome): RunOutcome {
  return { ...FULL_OUTCOME_UNSET, ...o };
}

/**
 * An outcome with every field set (`Required`: a field added to RunOutcome
 * must be added here, and so to the packing, or this does not compile).
 */
const EVERY_OUTCOME_FIELD: Required<RunOutcome> = {
  seq: 3,
  ok: false,
  meta: '{"status": "FAILURE"}',
  stored: true,
  exc: { exc_type: "ValueError", exc_message: ["bad"], exc_module: "builtins" },
  refused: "DecodeError: not JSON",
  followUp: {
    embed: { callbacks: null, errbacks: null, chain: null, chord: null },
    value: 10n,
  },
  retry: {
    retries: 1,
    eta: new Date("2026-12-05T05:00:00Z"),
    when: "in 1s",
    args: [1, "a"],
    kwargs: { k: 2 },
    embed: { callbacks: null, errbacks: null, chain: null, chord: null },
  },
  runtime: 2,
  blocked: 0,
  revoked: true,
  repr: "None",
  traceback: "Traceback (most recent call last): ...",
  replacedBy: "celery.chain",
};

/** Every field of {@link EVERY_OUTCOME_FIELD}, undefined. */
const FULL_OUTCOME_UNSET = Object.fromEntries(
  Object.keys(EVERY_OUTCOME_FIELD).map((k) => [k, undefined]),
) as unknown as RunOutcome;

Deno.test("outcome batch: outcomes come back field for field through a post's clone", () => {
  const outcomes: RunOutcome[] = [
    { seq: 1, ok: true, meta: '{"status": "SUCCESS"}', runtime: 0.25, blocked: 0.125 },
    { seq: 2, ok: true, runtime: 1.5 },
    EVERY_OUTCOME_FIELD,
    { seq: 4, ok: false, refused: "DecodeError: not JSON", runtime: 0 },
    { seq: 5, ok: false, revoked: true, runtime: 0 },
    { seq: 6, ok: true, runtime: 0.5, repr: "[1, 'a']" },
  ];
  const back = unpackOutcomes(structuredClone(packOutcomes(outcomes)));
  assert.deepEqual(back, outcomes.map(full));
  assert.deepEqual(unpackOutcomes(structuredClone(packOutcomes([]))), []);
});
