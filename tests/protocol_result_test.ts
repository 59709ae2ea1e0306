/**
 * Result metas (celery-task-meta-<id>) and exception dicts against the
 * values a real Celery 5.2.6 worker stored in Redis
 * (tests/fixtures/celery-5.2/redis/worker/result_*.json).
 */

import assert from "node:assert/strict";
import { EncodeError, ProtocolError } from "../src/protocol/errors.ts";
import { exceptionInfo, JS_EXC_MODULE, tracebackText } from "../src/protocol/exceptions.ts";
import {
  decodeResultMeta,
  encodeResultMeta,
  encodeResultMetaWithJson,
  EXCEPTION_STATES,
  READY_STATES,
  resultJson,
  type ResultMeta,
  type ResultMetaInput,
} from "../src/protocol/result_meta.ts";
import { parsePyDate } from "../src/protocol/time.ts";
import { loadCodecs } from "../src/protocol/codecs.ts";

await loadCodecs({ msgpack: true, compression: true });

const WORKER_DIR = new URL("./fixtures/celery-5.2/redis/worker/", import.meta.url);

interface StoredValue {
  key: string;
  raw: string | null;
}

interface WorkerFixture {
  scenario: string;
  task_ids: string[];
  final_meta_values: Record<string, StoredValue>;
  published_on_result_channels_in_order: { channel: string; raw: string }[];
  group_meta?: StoredValue;
}

const RESULT_FILES = [...Deno.readDirSync(WORKER_DIR)]
  .filter((e) => e.isFile && /^result_.*\.json$/.test(e.name))
  .map((e) => e.name)
  .sort();

function readWorker(name: string): WorkerFixture {
  return JSON.parse(Deno.readTextFileSync(new URL(name, WORKER_DIR))) as WorkerFixture;
}

/** The only meta a fixture stored for its (single) task. */
function onlyMeta(name: string): { id: string; raw: string } {
  const fx = readWorker(name);
  const entries = Object.entries(fx.final_meta_values);
  assert.equal(entries.length, 1);
  const [id, v] = entries[0];
  assert.ok(v.raw !== null);
  return { id, raw: v.raw };
}

/**
 * Our `date_done` for a captured one: JS dates have millisecond precision, so
 * the microseconds end in 000 (and vanish when they are all zero, as in
 * Python's isoformat).
 */
function ourDateDone(captured: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)\.(\d{3})\d{3}$/.exec(captured);
  if (!m) return captured;
  return m[2] === "000" ? m[1] : `${m[1]}.${m[2]}000`;
}

/** Re-encode a decoded meta with our encoder. */
function reencode(meta: ResultMeta): string {
  const input: ResultMetaInput = {
    taskId: meta.task_id,
    status: meta.status,
    result: meta.result,
    traceback: meta.traceback,
    children: meta.children,
    dateDone: meta.date_done === null ? null : parsePyDate(meta.date_done),
    groupId: meta.group_id,
    parentId: meta.parent_id,
  };
  return encodeResultMeta(input);
}

/** Captured bytes with date_done changed to what we can write. */
function capturedWithOurDate(raw: string, meta: ResultMeta): string {
  if (meta.date_done === null) return raw;
  const field = `"date_done": "${meta.date_done}"`;
  assert.ok(raw.includes(field));
  return raw.replace(field, `"date_done": "${ourDateDone(meta.date_done)}"`);
}

// ---------------------------------------------------------------------------
// encoding against result_success.json

Deno.test("encodeResultMeta reproduces result_success.json byte for byte (date_done at ms precision)", () => {
  const { id, raw } = onlyMeta("result_success.json");
  assert.equal(id, "1e85b1f9-f1fb-4599-9e52-f8d7026bb6dc");
  const captured = "2026-11-24T03:17:41.984439";
  assert.ok(raw.includes(captured));
  const ours = encodeResultMeta({
    taskId: id,
    status: "SUCCESS",
    result: 5,
    dateDone: parsePyDate(captured),
  });
  assert.equal(
    ours,
    '{"status": "SUCCESS", "result": 5, "traceback": null, "children": [], ' +
      '"date_done": "2026-11-24T03:17:41.984000", "task_id": "1e85b1f9-f1fb-4599-9e52-f8d7026bb6dc"}',
  );
  assert.equal(ours, raw.replace(captured, "2026-11-24T03:17:41.984000"));
  // The same meta written from pre-encoded result JSON (the worker path).
  assert.equal(
    encodeResultMetaWithJson(
      { taskId: id, status: "SUCCESS", result: "ignored", dateDone: parsePyDate(captured) },
      "5",
    ),
    ours,
  );
});

Deno.test("encodeResultMeta: a whole-second date_done has no fraction, like Python isoformat", () => {
  assert.equal(
    encodeResultMeta({ taskId: "t", status: "SUCCESS", result: null, dateDone: new Date(0) }),
    '{"status": "SUCCESS", "result": null, "traceback": null, "children": [], ' +
      '"date_done": "1970-01-01T00:00:00", "task_id": "t"}',
  );
  // Non-ready states carry date_done null.
  assert.match(
    encodeResultMeta({ taskId: "t", status: "STARTED", result: { pid: 1, hostname: "h" } }),
    /"date_done": null, "task_id": "t"\}$/,
  );
});

Deno.test("encodeResultMeta: group_id and parent_id only when set, in Celery's order before task_id", () => {
  const text = encodeResultMeta({
    taskId: "t",
    status: "SUCCESS",
    result: 1,
    dateDone: new Date("2026-01-01T00:00:00.5Z"),
    groupId: "g",
    parentId: "p",
  });
  assert.equal(
    text,
    '{"status": "SUCCESS", "result": 1, "traceback": null, "children": [], ' +
      '"date_done": "2026-01-01T00:00:00.500000", "group_id": "g", "parent_id": "p", "task_id": "t"}',
  );
  assert.ok(
    !encodeResultMeta({ taskId: "t", status: "SUCCESS", result: 1, groupId: null }).includes(
      "group_id",
    ),
  );
});

Deno.test("encodeResultMeta: result_extended fields as a Celery 5.2.6 worker writes them", () => {
  // Python: app.backend._get_result_meta(..., request) with result_extended = True, then encode.
  const text = encodeResultMeta({
    taskId: "t1",
    status: "SUCCESS",
    result: 5,
    dateDone: new Date("2026-12-05T04:10:36.054Z"),
    groupId: "g1",
    parentId: "p1",
    extended: {
      name: "tasks.add",
      args: [2, 3],
      kwargs: { k: "\u00e9" },
      worker: "celery@vm",
      retries: 1,
      queue: "celery",
    },
  });
  assert.equal(
    text,
    '{"status": "SUCCESS", "result": 5, "traceback": null, "children": [], "date_done": ' +
      '"2026-12-05T04:10:36.054000", "group_id": "g1", "parent_id": "p1", "name": "tasks.add", ' +
      '"args": [2, 3], "kwargs": {"k": "\\u00e9"}, "worker": "celery@vm", "retries": 1, ' +
      '"queue": "celery", "task_id": "t1"}',
  );
});

Deno.test("encodeResultMeta: bytes in result_extended args are stored in kombu's form, never refused", () => {
  // A msgpack task with bytes args and result_extended: the SUCCESS and FAILURE metas both threw
  // (raw bytes refused as JSON), so the task never settled. Now the args keep kombu 5.3's form
  // (read back as bytes) and whatever else JSON cannot carry is stored as its repr.
  const cyclic: unknown[] = [1];
  cyclic.push(cyclic);
  const text = encodeResultMeta({
    taskId: "t1",
    status: "SUCCESS",
    result: 5,
    dateDone: new Date("2026-12-05T04:10:36.054Z"),
    extended: {
      name: "tasks.echo",
      args: [new TextEncoder().encode("hi"), new Uint8Array([0xff, 0])],
      kwargs: { raw: new Uint8Array([1]), loop: cyclic },
      worker: "celery@vm",
      retries: 0,
      queue: "celery",
    },
  });
  assert.ok(
    text.includes(
      '"args": [{"__type__": "bytes", "__value__": "hi"}, {"__type__": "base64", "__value__": "/wA="}]',
    ),
    text,
  );
  assert.ok(
    text.includes("\"kwargs\": \"{'raw': <Uint8Array of 1 bytes>, 'loop': [1, [...]]}\""),
    text,
  );
  const meta = decodeResultMeta(text);
  assert.deepEqual(meta.args, [new TextEncoder().encode("hi"), new Uint8Array([0xff, 0])]);
  assert.equal(meta.status, "SUCCESS");
});

// ---------------------------------------------------------------------------
// every stored and published meta decodes, and re-encodes to the same bytes

Deno.test("fixture inventory: 24 redis/worker/result_*.json captures", () => {
  assert.equal(RESULT_FILES.length, 24);
});

for (const name of RESULT_FILES) {
  Deno.test(`decode + re-encode every meta of redis/worker/${name}`, () => {
    const fx = readWorker(name);
    const values = Object.entries(fx.final_meta_values);
    assert.ok(values.length > 0);
    const metas: { raw: string; key: string; id?: string }[] = [];
    for (const [id, v] of values) {
      assert.equal(v.key, `celery-task-meta-${id}`);
      // null = nothing stored (ignore_result, Ignore, Reject, the group id itself).
      if (v.raw !== null) metas.push({ raw: v.raw, key: v.key, id });
    }
    for (const p of fx.published_on_result_channels_in_order) {
      if (p.channel.startsWith("celery-task-meta-")) metas.push({ raw: p.raw, key: p.channel });
    }
    for (const { raw, key, id } of metas) {
      const meta = decodeResultMeta(raw);
      const plain = JSON.parse(raw);
      assert.equal(`celery-task-meta-${meta.task_id}`, key);
      if (id) assert.equal(meta.task_id, id);
      assert.deepEqual(meta, plain, "decoded meta equals the JSON");
      assert.ok(
        ["SUCCESS", "FAILURE", "REVOKED", "RETRY", "STARTED"].includes(meta.status),
        meta.status,
      );
      if (READY_STATES.has(meta.status)) {
        assert.ok(meta.date_done !== null, "ready metas have date_done");
        assert.ok(Number.isFinite(parsePyDate(meta.date_done).getTime()));
      } else {
        assert.equal(meta.date_done, null);
      }
      if (EXCEPTION_STATES.has(meta.status) && meta.result !== null) {
        const exc = meta.result as Record<string, unknown>;
        assert.deepEqual(Object.keys(exc), ["exc_type", "exc_message", "exc_module"]);
        assert.ok(Array.isArray(exc.exc_message));
      }
      assert.equal(reencode(meta), capturedWithOurDate(raw, meta), `${name} ${meta.status}`);
    }
  });
}

Deno.test("result_failure_custom_exc.json: custom exception decodes with type, args, module, traceback", () => {
  const { id, raw } = onlyMeta("result_failure_custom_exc.json");
  const meta = decodeResultMeta(raw);
  assert.equal(meta.task_id, id);
  assert.equal(meta.status, "FAILURE");
  assert.deepEqual(meta.result, {
    exc_type: "CustomError",
    exc_message: ["custom", 42],
    exc_module: "capapp",
  });
  assert.ok(meta.traceback?.startsWith("Traceback (most recent call last):\n"));
  assert.ok(meta.traceback?.endsWith("capapp.CustomError: ('custom', 42)\n"));
  assert.deepEqual(meta.children, []);
});

Deno.test("an error thrown in JS can be stored exactly as Python stored CustomError", () => {
  const { id, raw } = onlyMeta("result_failure_custom_exc.json");
  const captured = decodeResultMeta(raw);
  class CustomError extends Error {
    override name = "CustomError";
    excModule = "capapp";
    args = ["custom", 42];
  }
  const ours = encodeResultMeta({
    taskId: id,
    status: "FAILURE",
    result: exceptionInfo(new CustomError("custom")),
    traceback: captured.traceback,
    dateDone: parsePyDate(captured.date_done!),
  });
  assert.equal(ours, capturedWithOurDate(raw, captured));
});

Deno.test("result_unknown_task.json: NotRegistered FAILURE with exc_message [name] and no traceback", () => {
  const { id, raw } = onlyMeta("result_unknown_task.json");
  const meta = decodeResultMeta(raw);
  assert.equal(meta.status, "FAILURE");
  assert.deepEqual(meta.result, {
    exc_type: "NotRegistered",
    exc_message: ["no.such.task"],
    exc_module: "celery.exceptions",
  });
  assert.equal(meta.traceback, null);
  // What a Celeriac worker writes for an unknown task name matches it.
  const err = Object.assign(new Error("no.such.task"), {
    excType: "NotRegistered",
    excModule: "celery.exceptions",
  });
  const ours = encodeResultMeta({
    taskId: id,
    status: "FAILURE",
    result: exceptionInfo(err),
    dateDone: parsePyDate(meta.date_done!),
  });
  assert.equal(ours, capturedWithOurDate(raw, meta));
});

Deno.test("result_track_started.json: STARTED meta carries pid/hostname and date_done null", () => {
  const fx = readWorker("result_track_started.json");
  const [started, success] = fx.published_on_result_channels_in_order.map((p) =>
    decodeResultMeta(p.raw)
  );
  assert.equal(started.status, "STARTED");
  assert.deepEqual(started.result, { pid: 18264, hostname: "celery@fixture-host" });
  assert.equal(started.date_done, null);
  assert.equal(success.status, "SUCCESS");
  assert.equal(success.result, "done");
});

Deno.test("result_group_saved.json: the group meta is not a task meta and is refused", () => {
  const fx = readWorker("result_group_saved.json");
  assert.ok(fx.group_meta?.raw);
  assert.throws(() => decodeResultMeta(fx.group_meta!.raw!), ProtocolError);
});

Deno.test("decodeResultMeta: defaults for missing fields; non-metas are ProtocolErrors", () => {
  assert.deepEqual(decodeResultMeta('{"status": "SUCCESS", "result": 5, "task_id": "1"}'), {
    status: "SUCCESS",
    result: 5,
    traceback: null,
    children: [],
    date_done: null,
    task_id: "1",
  });
  // result_extended fields are kept.
  const ext = decodeResultMeta('{"status": "SUCCESS", "name": "t", "args": [1], "task_id": "1"}');
  assert.equal(ext.name, "t");
  assert.deepEqual(ext.args, [1]);
  assert.equal(ext.result, null);
  for (const bad of ["null", "[]", '"SUCCESS"', '{"result": 1}', '{"status": 1}']) {
    assert.throws(() => decodeResultMeta(bad), ProtocolError, bad);
  }
  assert.throws(() => decodeResultMeta("{"), ProtocolError);
});

Deno.test("READY_STATES and EXCEPTION_STATES are Celery's sets", () => {
  assert.deepEqual([...READY_STATES].sort(), ["FAILURE", "REVOKED", "SUCCESS"]);
  assert.deepEqual([...EXCEPTION_STATES].sort(), ["FAILURE", "RETRY", "REVOKED"]);
});

// ---------------------------------------------------------------------------
// exceptionInfo

Deno.test("exceptionInfo: a plain Error is Python's builtins.Exception", () => {
  assert.deepEqual(exceptionInfo(new Error("boom")), {
    exc_type: "Exception",
    exc_message: ["boom"],
    exc_module: "builtins",
  });
});

Deno.test("exceptionInfo: JS errors named like Python builtins keep their name in builtins", () => {
  assert.deepEqual(exceptionInfo(new TypeError("bad")), {
    exc_type: "TypeError",
    exc_message: ["bad"],
    exc_module: "builtins",
  });
  class ValueError extends Error {
    override name = "ValueError";
  }
  assert.deepEqual(exceptionInfo(new ValueError("v")), {
    exc_type: "ValueError",
    exc_message: ["v"],
    exc_module: "builtins",
  });
});

Deno.test("exceptionInfo: other names go to the celeriac module", () => {
  class InsufficientFunds extends Error {
    override name = "InsufficientFunds";
  }
  assert.equal(JS_EXC_MODULE, "celeriac");
  assert.deepEqual(exceptionInfo(new InsufficientFunds("low")), {
    exc_type: "InsufficientFunds",
    exc_message: ["low"],
    exc_module: "celeriac",
  });
  // RangeError has no Python builtin of that name.
  assert.equal(exceptionInfo(new RangeError("r")).exc_module, "celeriac");
  assert.equal(exceptionInfo(new RangeError("r")).exc_type, "RangeError");
});

Deno.test("exceptionInfo: excType, excModule and args fields override the defaults", () => {
  const err = Object.assign(new Error("ignored message"), {
    excType: "Overdrawn",
    excModule: "billing.errors",
    args: ["acct-1", 12.5, null],
  });
  assert.deepEqual(exceptionInfo(err), {
    exc_type: "Overdrawn",
    exc_message: ["acct-1", 12.5, null],
    exc_module: "billing.errors",
  });
  // A builtin name with an explicit module keeps the module.
  const k = Object.assign(new TypeError("x"), { excModule: "myapp" });
  assert.equal(exceptionInfo(k).exc_module, "myapp");
  // A non-array args field is ignored.
  const odd = Object.assign(new Error("m"), { args: "not a list" });
  assert.deepEqual(exceptionInfo(odd).exc_message, ["m"]);
});

Deno.test('exceptionInfo: a subclass that leaves name as "Error" is named by its class', () => {
  // The usual JavaScript error class: Python saw a plain Exception, Celeriac excType "Exception".
  class InsufficientFunds extends Error {}
  class Overdrawn extends InsufficientFunds {}
  assert.deepEqual(exceptionInfo(new InsufficientFunds("low")), {
    exc_type: "InsufficientFunds",
    exc_message: ["low"],
    exc_module: JS_EXC_MODULE,
  });
  assert.equal(exceptionInfo(new Overdrawn("x")).exc_type, "Overdrawn");
  // A class named like a Python builtin goes to builtins; `name` and excType still win.
  class KeyError extends Error {}
  assert.equal(exceptionInfo(new KeyError("k")).exc_module, "builtins");
  class Named extends Error {
    override name = "Other";
  }
  assert.equal(exceptionInfo(new Named("n")).exc_type, "Other");
  assert.equal(exceptionInfo(Object.assign(new Overdrawn("o"), { excType: "X" })).exc_type, "X");
  assert.equal(exceptionInfo(new Error("plain")).exc_type, "Exception");
  assert.equal(exceptionInfo(Object.create(null, {})).exc_type, "Exception");
});

Deno.test("exceptionInfo: a thrown non-Error becomes Exception with its text", () => {
  assert.deepEqual(exceptionInfo("plain string"), {
    exc_type: "Exception",
    exc_message: ["plain string"],
    exc_module: "builtins",
  });
  assert.deepEqual(exceptionInfo(42).exc_message, ["42"]);
  assert.deepEqual(exceptionInfo(undefined).exc_message, ["undefined"]);
  assert.equal(exceptionInfo(null).exc_type, "Exception");
});

Deno.test("tracebackText: the stack for errors, the text for anything else", () => {
  const err = new Error("boom");
  assert.equal(tracebackText(err), err.stack);
  assert.ok(tracebackText(err).startsWith("Error: boom"));
  const noStack = new Error("nostack");
  noStack.stack = undefined;
  assert.equal(tracebackText(noStack), "Error: nostack");
  assert.equal(tracebackText("oops"), "oops");
});

Deno.test("resultJson: raw bytes in a result are refused with a hint that fits results", () => {
  // A Python client sends msgpack, the task returns the bytes it got: storing the result said
  // 'or use serializer "msgpack"', which results cannot (they are JSON).
  assert.throws(
    () => resultJson({ data: [new Uint8Array([1, 2])] }),
    (e: unknown) =>
      e instanceof EncodeError && e.path === "result.data[0]" &&
      /results are JSON/.test(e.message) && !/msgpack"/.test(e.message),
  );
});
