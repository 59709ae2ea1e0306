import assert from "node:assert/strict";
import {
  checkShape,
  decodeEnvelope,
  decodeTaskBody,
  decodeTaskHeaders,
  deserialize,
  encodeEnvelope,
  encodeTaskMessage,
  loadCodecs,
  MAX_HEADERS_SIZE,
  MAX_NESTING_DEPTH,
  ProtocolError,
  pyJsonLoads,
} from "../protocol.ts";
import { type JsonShape, pyJsonLoadsShaped } from "../src/protocol/json_decode.ts";

const utf8 = new TextEncoder();

function nested(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

function message(headers: Record<string, unknown>, body: string) {
  return {
    body: utf8.encode(body),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers,
    properties: {},
  };
}

Deno.test("checkShape refuses nesting past the limit without recursing", () => {
  const deep = JSON.parse(nested(200_000));
  assert.throws(() => checkShape(deep, "body"), (err: unknown) => {
    assert.ok(err instanceof ProtocolError);
    assert.match(err.message, /nests deeper than 128 levels/);
    return true;
  });
  checkShape(JSON.parse(nested(MAX_NESTING_DEPTH)), "body");
  assert.throws(() => checkShape(JSON.parse(nested(MAX_NESTING_DEPTH + 1)), "body"), ProtocolError);
});

Deno.test("checkShape refuses headers larger than maxSize", () => {
  const big = { argsrepr: "x".repeat(2000) };
  assert.throws(() => checkShape(big, "headers", { maxSize: 1000 }, "id-1"), (err: unknown) => {
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.taskId, "id-1");
    assert.match(err.message, /larger than 1000 bytes/);
    return true;
  });
});

Deno.test("a body nested 10,000 deep is a ProtocolError naming the task, for JSON and for the tolerant parser", () => {
  for (const text of [nested(10_000), "[NaN, " + nested(10_000) + "]"]) {
    assert.throws(
      () => deserialize(utf8.encode(text), "application/json", "utf-8", "t-1"),
      (err: unknown) => err instanceof ProtocolError && err.taskId === "t-1",
    );
  }
  // The reviver path (long integers) walks recursively: refused, not a stack overflow.
  assert.throws(() => pyJsonLoads("[12345678901234567, " + nested(100_000) + "]"), ProtocolError);
});

Deno.test("headers nested deep are refused by decodeTaskHeaders with the task id", () => {
  let deep: unknown = 1;
  for (let i = 0; i < 5000; i++) deep = { a: deep };
  const msg = message({ task: "tasks.add", id: "id-deep", x: deep }, "[[], {}, {}]");
  assert.throws(() => decodeTaskHeaders(msg), (err: unknown) => {
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.taskId, "id-deep");
    return true;
  });
});

Deno.test("an envelope with deep headers and a task id comes back undecodable, with id and task only", () => {
  const raw = '{"body": "W10=", "content-encoding": "utf-8", "content-type": "application/json", ' +
    '"headers": {"id": "id-9", "task": "tasks.add", "x": ' + nested(5000) + "}, " +
    '"properties": {"body_encoding": "base64", "delivery_tag": "t9", ' +
    '"delivery_info": {"exchange": "", "routing_key": "q"}}}';
  const env = decodeEnvelope(raw);
  assert.match(env.undecodable ?? "", /nests deeper/);
  assert.deepEqual(env.headers, { id: "id-9", task: "tasks.add" });
  assert.equal(env.deliveryTag, "t9");
  assert.throws(() => decodeTaskHeaders(env), (err: unknown) => {
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.taskId, "id-9");
    return true;
  });
});

Deno.test("an envelope whose body is not base64 keeps its task id so a FAILURE can be stored", () => {
  const raw = '{"body": "***", "content-encoding": "utf-8", "content-type": "application/json", ' +
    '"headers": {"id": "id-b64", "task": "tasks.add"}, ' +
    '"properties": {"body_encoding": "base64", "delivery_tag": "t1"}}';
  const env = decodeEnvelope(raw);
  assert.equal(env.undecodable, "Envelope body is not valid base64");
  assert.throws(() => decodeTaskHeaders(env), /not valid base64/);
  // Without an id nobody waits for it: the envelope is refused whole.
  assert.throws(() => decodeEnvelope(raw.replace('"id": "id-b64", ', "")), ProtocolError);
});

Deno.test("envelope delivery_info fields of the wrong type read as empty strings", () => {
  const raw = encodeEnvelope(
    message({ id: "1", task: "t" }, "[]"),
    { exchange: "", routing_key: "q" },
    "tag",
  ).replace('"exchange": ""', '"exchange": 5');
  assert.equal(decodeEnvelope(raw).deliveryInfo.exchange, "");
  assert.throws(
    () => decodeEnvelope('{"body": "", "headers": [], "properties": {}}'),
    ProtocolError,
  );
});

Deno.test("malformed link, errback, chain and chord entries are refused when the body is decoded", () => {
  const cases: [string, RegExp][] = [
    ['{"callbacks": [{"task": null}]}', /callbacks\[0\].*no task name/],
    ['{"chain": [5]}', /chain\[0\].*expected an object/],
    ['{"errbacks": {"task": "x"}}', /errbacks.*list of signatures/],
    ['{"chord": {"task": "x", "args": 3}}', /chord.*args is not an array/],
    ['{"callbacks": [{"task": "x", "kwargs": []}]}', /kwargs is not an object/],
    ['{"callbacks": [{"task": "x", "options": {"link": [{"task": 1}]}}]}', /options\.link\[0\]/],
    ['{"chain": [{"task": "x", "options": {"countdown": 1e300}}]}', /countdown .* out of range/],
    ['{"chain": [{"task": "x", "options": {"headers": "h"}}]}', /options\.headers/],
    ["5", /embed.*must be an object/],
  ];
  for (const [embed, pattern] of cases) {
    const msg = message({}, `[[], {}, ${embed}]`);
    assert.throws(() => decodeTaskBody(msg, "id-e"), (err: unknown) => {
      assert.ok(err instanceof ProtocolError, embed);
      assert.equal(err.taskId, "id-e");
      assert.match(err.message, pattern, embed);
      return true;
    });
  }
  // Protocol 1 bodies are decoded on the main thread: refused there, with the id.
  const v1 = message({}, '{"task": "t", "id": "v1", "args": [], "kwargs": {}, "callbacks": [7]}');
  assert.throws(() => decodeTaskHeaders(v1), /callbacks\[0\]/);
});

Deno.test("well-formed embeds still decode (chain, link with nested link, chord)", () => {
  const sig = { task: "tasks.b", args: [1], kwargs: {}, options: {}, subtask_type: null };
  const msg = encodeTaskMessage({
    task: "tasks.a",
    id: "1",
    args: [],
    kwargs: {},
    now: new Date(),
    origin: "o",
    replyTo: "r",
    embed: {
      callbacks: [{ ...sig, immutable: false, options: { link: sig } }],
      chain: [{ ...sig, immutable: false }],
      chord: { ...sig, immutable: false },
    },
  });
  const body = decodeTaskBody(msg, "1");
  assert.equal(body.embed.callbacks?.length, 1);
  assert.equal(body.embed.chain?.[0].task, "tasks.b");
  assert.equal(body.embed.chord?.task, "tasks.b");
});

Deno.test("pyJsonLoadsShaped measures the depth and size that checkShape checks, or says it did not", () => {
  const texts = [
    '{"a": [1, "xy"]}',
    "[[[]]]",
    '"abc"',
    "7",
    '{"k": {"l": [true, null, 1.5, "q"]}, "m": {}}',
    '{"body": "W10=", "headers": {"id": "i", "argsrepr": "()"}, ' +
    '"properties": {"delivery_info": {"exchange": "", "routing_key": "celery"}}}',
  ];
  for (const text of texts) {
    const shape: JsonShape = { depth: -1, size: 0 };
    const value = pyJsonLoadsShaped(text, shape);
    assert.ok(shape.depth >= 0, text);
    checkShape(value, "body", { maxDepth: Math.max(shape.depth, 1), maxSize: shape.size });
    if (shape.depth > 1) {
      assert.throws(() => checkShape(value, "body", { maxDepth: shape.depth - 1 }), /deeper/);
    }
    if (shape.size > 0) {
      assert.throws(() => checkShape(value, "body", { maxSize: shape.size - 1 }), /larger/);
    }
  }
  // Values decoded with the reviver or the tolerant parser are not measured.
  for (
    const text of ['{"n": 18446744073709551616}', "[NaN]", '{"__type__": "uuid", "__value__": "0"}']
  ) {
    const shape: JsonShape = { depth: 5, size: 5 };
    pyJsonLoadsShaped(text, shape);
    assert.equal(shape.depth, -1, text);
  }
});

Deno.test("envelopes and bodies are refused exactly past the limits, measured or walked", () => {
  const envelope = (headers: string, properties = '"body_encoding": "base64"') =>
    '{"body": "W10=", "content-encoding": "utf-8", "content-type": "application/json", ' +
    `"headers": {"id": "id-1", "task": "t", ${headers}}, "properties": {${properties}}}`;
  // Headers are depth 1: an array nested 127 deep inside them is at depth 128.
  assert.equal(
    decodeEnvelope(envelope(`"x": ${nested(MAX_NESTING_DEPTH - 1)}`)).undecodable,
    undefined,
  );
  assert.match(
    decodeEnvelope(envelope(`"x": ${nested(MAX_NESTING_DEPTH)}`)).undecodable ?? "",
    /nests deeper/,
  );
  const big = "y".repeat(MAX_HEADERS_SIZE);
  assert.match(decodeEnvelope(envelope(`"x": "${big}"`)).undecodable ?? "", /larger than/);
  assert.throws(() => decodeEnvelope(envelope('"x": 1', `"p": "${big}"`)), /properties are larger/);
  // A large body alone (over the headers' limit, so the envelope is walked part by part) is fine.
  const env = decodeEnvelope(envelope('"x": 1').replace('"W10="', `"${"AAAA".repeat(300_000)}"`));
  assert.equal(env.undecodable, undefined);
  assert.equal(env.body.length, 900_000);
  const json = (text: string) => deserialize(utf8.encode(text), "application/json", "utf-8");
  assert.deepEqual(json("[1]"), [1]);
  json(nested(MAX_NESTING_DEPTH));
  assert.throws(() => json(nested(MAX_NESTING_DEPTH + 1)), /nests deeper than 128/);
  assert.throws(
    () => json(`[12345678901234567890, ${nested(MAX_NESTING_DEPTH)}]`),
    /nests deeper than 128/,
  );
});

Deno.test("a msgpack body nested 100,000 deep is refused at the depth limit, not a stack overflow", async () => {
  await loadCodecs({ msgpack: true });
  // 0x91: an array of one element; 0xc0: nil. Before: "Body is not valid msgpack: Maximum call
  // stack size exceeded" (a RangeError from the integer conversion's recursion).
  const deep = (n: number) => {
    const bytes = new Uint8Array(n + 1).fill(0x91);
    bytes[n] = 0xc0;
    return bytes;
  };
  for (const n of [MAX_NESTING_DEPTH + 1, 100_000]) {
    assert.throws(
      () => deserialize(deep(n), "application/x-msgpack", "binary", "t-1"),
      (err: unknown) =>
        err instanceof ProtocolError && err.taskId === "t-1" &&
        /^Message body nests deeper than 128 levels: refused/.test(err.message),
    );
  }
  // Integers beyond 2^53 are still bigints, at every depth the limit allows.
  const big = new Uint8Array([...deep(MAX_NESTING_DEPTH - 1).subarray(0, -1), 0xcf, ...[
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
  ]]);
  let v = deserialize(big, "application/x-msgpack", "binary");
  for (let i = 0; i < MAX_NESTING_DEPTH - 1; i++) v = (v as unknown[])[0];
  assert.equal(v, 2n ** 64n - 1n);
  assert.deepEqual(
    deserialize(
      new Uint8Array([0x92, 0xcd, 0x01, 0x00, 0x81, 0xa1, 0x61, 0x07]),
      "application/x-msgpack",
      "binary",
    ),
    [256, { a: 7 }],
  );
});

Deno.test("JSON too deep for the reviver: a body gets the depth-limit wording, other JSON a clear refusal", () => {
  const text = "[12345678901234567, " + nested(100_000) + "]";
  assert.throws(
    () => pyJsonLoads(text),
    /Message JSON value nests too deep to decode \(.*\): refused/,
  );
  assert.throws(
    () => deserialize(utf8.encode(text), "application/json", "utf-8", "t-2"),
    (err: unknown) =>
      err instanceof ProtocolError && err.taskId === "t-2" &&
      err.message === "Message body nests deeper than 128 levels: refused (flatten the data, " +
          "or send it as a string)",
  );
});
