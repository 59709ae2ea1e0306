import assert from "node:assert/strict";
import { encodeEnvelope, hasPrewrittenHead } from "../src/protocol/envelope.ts";
import { EncodeError } from "../src/protocol/errors.ts";
import { encodeTaskMessage, type TaskMessageInput } from "../src/protocol/task_message.ts";
import { TaskMessageTemplate, type TaskTemplateInput } from "../src/protocol/task_template.ts";

const decoder = new TextDecoder();
const info = { exchange: "", routing_key: "celery" };

/**
 * What the template writes for one call against what encodeTaskMessage
 * writes: the same bytes, direct (envelope prewritten, body packed) or not.
 */
function assertSame(shared: TaskTemplateInput, args: readonly unknown[]): void {
  for (const [direct, envelope] of [[false, true], [true, true], [true, false]]) {
    const template = TaskMessageTemplate.of(shared, { direct, envelope });
    assert.ok(template, "a template");
    const id = crypto.randomUUID();
    const got = template.encode(id, args);
    const want = encodeTaskMessage({ ...shared, id, args, now: new Date() } as TaskMessageInput);
    assert.equal(decoder.decode(got.body), decoder.decode(want.body));
    assert.deepEqual(got.headers, want.headers);
    assert.deepEqual(Object.keys(got.headers), Object.keys(want.headers));
    assert.deepEqual(got.properties, want.properties);
    assert.deepEqual(Object.keys(got.properties), Object.keys(want.properties));
    assert.equal(got.contentType, want.contentType);
    assert.equal(got.contentEncoding, want.contentEncoding);
    assert.equal(hasPrewrittenHead(got), direct && envelope);
    // The envelope (from the prewritten text when direct) is byte for byte the general encoder's.
    assert.equal(encodeEnvelope(got, info, "tag-1"), encodeEnvelope(want, info, "tag-1"));
    // A redelivered envelope does not use the prewritten text (its headers gain `redelivered`).
    assert.equal(
      encodeEnvelope(got, info, "tag-2", true),
      encodeEnvelope(want, info, "tag-2", true),
    );
  }
}

const base = { task: "tasks.add", kwargs: {}, origin: "gen1@host", replyTo: "reply-1" };

Deno.test("task template: a plain call is written as encodeTaskMessage writes it", () => {
  assertSame(base, []);
  assertSame(base, [2, 3]);
  assertSame(base, [{ a: [1, "x"] }, null, 1.5, true]);
});

Deno.test("task template: arguments that are escaped or non-ASCII, in body and argsrepr", () => {
  assertSame(base, ['say "hi"', "café", "back\\slash", "\u007f", "日本"]);
  assertSame(base, [[["nested", { 'quote"key': "it's" }]]]);
});

Deno.test("task template: shared kwargs, options, parent and custom headers", () => {
  assertSame({ ...base, kwargs: { round: true, name: "é" } }, [1]);
  assertSame({
    ...base,
    priority: 7,
    timeLimit: 30,
    softTimeLimit: 20,
    shadow: "add-shadow",
    ignoreResult: true,
    rootId: "root-1",
    parentId: "parent-1",
    headers: { tenant: "acme", retries: 4, id: "custom-id" },
  }, [5, 6]);
});

Deno.test("task template: arguments that look like the template's own text or need care", () => {
  // Strings equal to what the template writes around its cuts, to its shared values, or to the
  // sample's empty arguments; escapes, lone surrogates, long reprs (cut at 1,024 characters).
  const tricky = [
    "",
    "()",
    "[]",
    "[[], ",
    '"',
    "\\",
    "tasks.add",
    "reply-1",
    "gen1@host",
    "\u2028",
    "\ud800",
    "\udfff\ud800",
    "\u{1f600}",
    "\u0000",
    "x".repeat(2000),
    "'".repeat(1030),
    "__proto__",
  ];
  for (const s of tricky) {
    assertSame(base, [s]);
    assertSame({ ...base, kwargs: { [s]: s }, shadow: s, headers: { [s || "k"]: s } }, [s, [s]]);
  }
  assertSame(base, [2n ** 70n, -1n, NaN, Infinity, -0, 1e-7, 1e21, 0.1]);
  assertSame(base, [new Date(0), { d: new Date("2020-01-01T00:00:00.123Z") }]);
  assertSame(base, [{ __type__: "datetime", __value__: "2020-01-01T00:00:00" }]);
  assertSame(base, [{ toJSON: () => ({ x: 1 }) }, { a: undefined, b: 1 }]);
  assertSame(base, Array.from({ length: 500 }, (_, i) => i));
  assertSame({ ...base, kwargs: { a: "x".repeat(3000), b: [1, { c: "\u00e9" }], d: 5n } }, [1]);
  assertSame({ ...base, group: "g1", groupIndex: 2, retries: 3, deliveryMode: 1 }, [1]);
});

Deno.test("task template: times, msgpack, compression and argsrepr headers get none", () => {
  assert.equal(TaskMessageTemplate.of({ ...base, countdown: 10 }), null);
  assert.equal(TaskMessageTemplate.of({ ...base, eta: new Date() }), null);
  assert.equal(TaskMessageTemplate.of({ ...base, expires: 60 }), null);
  assert.equal(TaskMessageTemplate.of({ ...base, serializer: "msgpack" }), null);
  assert.equal(TaskMessageTemplate.of({ ...base, compression: "zlib" }), null);
  assert.equal(TaskMessageTemplate.of({ ...base, headers: { argsrepr: "(...)" } }), null);
});

Deno.test("task template: arguments that cannot be encoded are refused as encodeTaskMessage refuses them", () => {
  const template = TaskMessageTemplate.of(base)!;
  assert.throws(
    () => template.encode(crypto.randomUUID(), [1, new Map()]),
    (err) => err instanceof EncodeError && err.path === "args[1]",
  );
  assert.throws(() => template.encode(crypto.randomUUID(), "x" as never), TypeError);
});

Deno.test("task template: a task id that JSON escapes is written as encodeTaskMessage writes it", () => {
  const template = TaskMessageTemplate.of(base, { direct: true })!;
  const got = template.encode('id "quoted"', [1]);
  const want = encodeTaskMessage({ ...base, id: 'id "quoted"', args: [1], now: new Date() });
  assert.equal(encodeEnvelope(got, info, "t"), encodeEnvelope(want, info, "t"));
});

Deno.test("task template: packed bodies are each their own bytes, across the shared buffers", () => {
  const template = TaskMessageTemplate.of(base, { direct: true })!;
  // Bodies of ~3 KB (é is written as \\u00e9): several share a buffer, and they fill more than one.
  const args = Array.from({ length: 40 }, (_, i) => [i, "é".repeat(500 + i)]);
  const messages = args.map((a) => template.encode(crypto.randomUUID(), a));
  for (const [i, m] of messages.entries()) {
    assert.deepEqual(JSON.parse(decoder.decode(m.body))[0], args[i]);
    const want = encodeTaskMessage({
      ...base,
      id: String(m.headers.id),
      args: args[i],
      now: new Date(),
    });
    assert.deepEqual(m.body, want.body);
  }
  const buffers = new Set(messages.map((m) => m.body.buffer)).size;
  assert.ok(
    buffers > 1 && buffers < messages.length,
    `${buffers} buffers for ${messages.length} bodies`,
  );
});

Deno.test("task template: a frozen delivery info is written as an unfrozen one", () => {
  const m = TaskMessageTemplate.of(base)!.encode(crypto.randomUUID(), [1]);
  const frozen = Object.freeze({ exchange: "ex", routing_key: "key" });
  const first = encodeEnvelope(m, frozen, "t");
  assert.equal(first, encodeEnvelope(m, { exchange: "ex", routing_key: "key" }, "t"));
  assert.equal(encodeEnvelope(m, frozen, "t"), first);
  assert.match(first, /"delivery_info": \{"exchange": "ex", "routing_key": "key"\}/);
});

Deno.test("task template: all templates pack their bodies into one buffer at a time", () => {
  // A buffer per template kept 64 KiB alive for each task delay() was called twice with.
  const bodies = Array.from({ length: 50 }, (_, i) => {
    const template = TaskMessageTemplate.of({ ...base, task: `tasks.t${i}` }, { direct: true })!;
    return [template.encode(crypto.randomUUID(), [i]), template.encode(crypto.randomUUID(), [i])];
  }).flat().map((m) => m.body);
  const buffers = new Set(bodies.map((b) => b.buffer));
  assert.ok(buffers.size <= 2, `${buffers.size} buffers for ${bodies.length} small bodies`);
  for (const b of buffers) assert.equal(b.byteLength, 64 * 1024);
});

Deno.test("task template: a long body has a buffer of its own, the shared one stays small", () => {
  const template = TaskMessageTemplate.of(base, { direct: true })!;
  const long = template.encode(crypto.randomUUID(), ["x".repeat(30_000)]).body;
  const next = template.encode(crypto.randomUUID(), [1]).body;
  assert.equal(long.buffer.byteLength, long.byteLength);
  assert.equal(next.buffer.byteLength, 64 * 1024);
  assert.equal(
    decoder.decode(next),
    '[[1], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
  );
});

Deno.test("task template: a message's headers share no array with the next message's", () => {
  for (const direct of [false, true]) {
    const template = TaskMessageTemplate.of({ ...base, timeLimit: 30 }, { direct })!;
    const first = template.encode(crypto.randomUUID(), [1]);
    // A publisher hook may change the message it is given.
    (first.headers.timelimit as unknown[])[0] = 99;
    const second = template.encode(crypto.randomUUID(), [2]);
    assert.deepEqual(second.headers.timelimit, [30, null]);
  }
});

Deno.test("task template: a copy of a direct message with other headers is encoded afresh", () => {
  const template = TaskMessageTemplate.of(base, { direct: true });
  assert.ok(template);
  const message = template.encode(crypto.randomUUID(), [2, 3]);
  assert.ok(hasPrewrittenHead(message));
  // A plain copy has the same headers and properties: the text is still its own.
  assert.ok(hasPrewrittenHead({ ...message }));
  assert.equal(hasPrewrittenHead({ ...message, properties: { ...message.properties } }), false);
  assert.equal(hasPrewrittenHead({ ...message, contentType: "application/x-other" }), false);
  const copy = { ...message, headers: { ...message.headers, argsrepr: "(changed)" } };
  assert.equal(hasPrewrittenHead(copy), false);
  const text = encodeEnvelope(copy, info, "tag-3");
  assert.match(text, /"argsrepr": "\(changed\)"/);
  assert.equal(text, encodeEnvelope(structuredClone(copy), info, "tag-3"));
});
