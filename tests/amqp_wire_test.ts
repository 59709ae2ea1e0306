/** AMQP wire conversions, without a server: header types, properties, parking notes, rpc bodies. */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readRpcResult, rpcResultMessage, syncMarker } from "../src/backend/rpc_message.ts";
import {
  fromIncoming,
  parkedCopy,
  readParkingNote,
  toPublishOptions,
  unparkedMessage,
} from "../src/broker/amqp_message.ts";
import { decodeFieldTable } from "../src/broker/amqp_field_table.ts";
import { toAmqpTable } from "../src/broker/amqp_table.ts";
import {
  exchangeDeclaration,
  replyQueueDeclaration,
  subscriberQueueDeclaration,
  taskQueueDeclaration,
} from "../src/broker/amqp_topology.ts";
import { encodeControlRequest } from "../src/protocol/control.ts";
import { pyJsonDumps, pyJsonLoads } from "../src/protocol/json.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";

const fixture = (path: string) =>
  JSON.parse(
    Deno.readTextFileSync(new URL(`./fixtures/celery-5.2/amqp/${path}`, import.meta.url)),
  );

/** amqplib's typed form → the fixtures' `[tag, value]` form. */
function tagged(v: unknown): [string, unknown] {
  if (v === null) return ["V", null];
  if (typeof v === "string") return ["S", v];
  if (typeof v === "boolean") return ["t", v];
  if (Array.isArray(v)) return ["A", v.map(tagged)];
  const t = v as { "!"?: string; value?: unknown };
  const tags: Record<string, string> = { int: "I", long: "L", double: "d" };
  if (t["!"]) return [tags[t["!"]] ?? t["!"], t.value];
  return ["F", Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, tagged(x)]))];
}

Deno.test("amqp wire: Celeriac's task headers get the types Celery's have on the wire", () => {
  for (const name of ["plain", "time_limits"]) {
    const p = fixture(`publish/${name}.json`).published[0];
    const m = encodeTaskMessage({
      task: p.headers.task,
      id: p.headers.id,
      args: [1, 2],
      kwargs: {},
      now: new Date(),
      origin: p.headers.origin,
      replyTo: p.properties.reply_to,
      timeLimit: p.headers.timelimit[0] ?? undefined,
      softTimeLimit: p.headers.timelimit[1] ?? undefined,
    });
    const typed = toAmqpTable(m.headers);
    for (const key of Object.keys(p.headers_amqp_typed)) {
      if (key === "argsrepr") continue; // differs with the arguments
      assert.deepEqual(
        [key, tagged(typed[key])[0]],
        [key, p.headers_amqp_typed[key][0]],
        `type of ${key}`,
      );
    }
    assert.deepEqual(tagged(typed.timelimit), p.headers_amqp_typed.timelimit);
  }
});

Deno.test("amqp wire: number, bigint, date and bytes typing", () => {
  const t = toAmqpTable({
    small: 0,
    negative: -2147483648,
    big: 2147483648,
    huge: 2n ** 62n,
    float: 0.5,
    whole_float_out_of_range: 2 ** 60,
    nan: NaN,
    when: new Date(1_700_000_000_000),
    raw: new Uint8Array([1, 2]),
    nested: { list: [1, null, "x"] },
    skipped: undefined,
  });
  assert.deepEqual(t.small, { "!": "int", value: 0 });
  assert.deepEqual(t.negative, { "!": "int", value: -2147483648 });
  assert.deepEqual(t.big, { "!": "long", value: 2147483648 });
  assert.deepEqual(t.huge, { "!": "long", value: 2n ** 62n });
  assert.deepEqual(t.float, { "!": "double", value: 0.5 });
  assert.deepEqual(t.whole_float_out_of_range, { "!": "double", value: 2 ** 60 });
  assert.ok(Number.isNaN((t.nan as { value: number }).value));
  assert.deepEqual(t.when, { "!": "timestamp", value: 1_700_000_000 });
  assert.ok(Buffer.isBuffer(t.raw));
  assert.deepEqual(t.nested, { list: [{ "!": "int", value: 1 }, null, "x"] });
  assert.ok(!("skipped" in t));
  assert.throws(() => toAmqpTable({ x: 2n ** 64n }), RangeError);
  assert.throws(() => toAmqpTable({ f: () => 1 }), TypeError);
});

Deno.test("amqp wire: a control request's headers have Celery's types: expires a double, a whole second too; no expiry the int 0", () => {
  const [ping] = fixture("worker/control_ping.json").messages as {
    headers: { clock: number; expires: number };
    headers_amqp_typed: Record<string, [string, unknown]>;
  }[];
  const req = { method: "ping", arguments: {}, destination: null };
  const typed = (expires: number) =>
    Object.fromEntries(
      Object.entries(
        toPublishOptions(encodeControlRequest(req, { clock: ping.headers.clock, expires }))
          .headers!,
      ).map(([k, v]) => [k, tagged(v)]),
    );
  assert.deepEqual(typed(ping.headers.expires), ping.headers_amqp_typed);
  assert.deepEqual(typed(1795490761), { clock: ["I", 8], expires: ["d", 1795490761] });
  assert.deepEqual(typed(0), { clock: ["I", 8], expires: ["I", 0] }, "kombu's 0 without timeout");
});

Deno.test("amqp wire: decoded tables come back as plain values", () => {
  const key = (k: string) => [k.length, ...new TextEncoder().encode(k)];
  // deno-fmt-ignore
  const bytes = new Uint8Array([
    ...key("ts"), 0x54, 0, 0, 0, 0, 0, 0, 0, 10,
    ...key("dec"), 0x44, 1, 0, 0, 0, 15,
    ...key("bytes"), 0x78, 0, 0, 0, 1, 7,
    ...key("list"), 0x41, 0, 0, 0, 13, 0x49, 0, 0, 0, 1, 0x46, 0, 0, 0, 3, ...key("a"), 0x56,
  ]);
  assert.deepEqual(
    decodeFieldTable(bytes),
    { ts: new Date(10_000), dec: 1.5, bytes: new Uint8Array([7]), list: [1, { a: null }] },
  );
  const { message } = fromIncoming({
    content: new Uint8Array(),
    fields: { deliveryTag: 1, redelivered: false, exchange: "", routingKey: "celery" },
    properties: {},
  });
  assert.deepEqual(message.headers, {});
});

Deno.test("amqp wire: properties are renamed both ways; non-AMQP ones are left out", () => {
  const o = toPublishOptions({
    body: new Uint8Array(),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    properties: {
      correlation_id: "c",
      reply_to: "r",
      delivery_mode: 2,
      priority: 3,
      expiration: 60000 as unknown as string,
      body_encoding: "base64",
      delivery_info: { exchange: "" },
    },
  });
  assert.deepEqual(o, {
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    correlationId: "c",
    replyTo: "r",
    deliveryMode: 2,
    priority: 3,
    expiration: "60000",
  });
  const { message, redelivered } = fromIncoming({
    content: Buffer.from("{}"),
    fields: { deliveryTag: 3, redelivered: false, exchange: "", routingKey: "q" },
    properties: {
      contentType: "application/json",
      contentEncoding: undefined,
      correlationId: "c",
      priority: 0,
      headers: { "x-celeriac-redelivered": true, retries: 1 },
    },
  });
  assert.equal(redelivered, true);
  assert.deepEqual(message.headers, { retries: 1 });
  assert.deepEqual(message.properties, { correlation_id: "c", priority: 0 });
  assert.equal(message.contentEncoding, "");
});

Deno.test("amqp wire: a parking note travels in a header and is removed on the way back", () => {
  const original = {
    body: new Uint8Array([1]),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { id: "t1", task: "x" },
    properties: { reply_to: "r" },
  };
  const note = {
    id: "p1",
    reason: "bad",
    queue: "celery",
    taskId: "t1",
    taskName: "x",
    parkedAt: new Date(1500),
    exchange: "",
    routingKey: "celery",
  };
  const copy = parkedCopy(original, note);
  assert.deepEqual(readParkingNote(copy.headers), note);
  assert.equal(readParkingNote(original.headers), null);
  const back = unparkedMessage(copy, "r1");
  assert.deepEqual(back.headers, {
    id: "t1",
    task: "x",
    "x-celeriac-redelivered": true,
    "x-celeriac-requeue": "r1",
  });
  assert.deepEqual(back.properties, original.properties);
});

Deno.test("amqp wire: a message RabbitMQ dead-lettered is noted as parked when its x-death says", () => {
  const tables = fixture("field_tables.json").tables as { name: string; hex: string }[];
  const { hex } = tables.find((t) => t.name === "dead_letter")!;
  const headers = decodeFieldTable(Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16)));
  const note = readParkingNote({ ...headers, id: "t1", task: "x" });
  assert.equal(note?.queue, "celery");
  assert.match(note!.reason, /x-delivery-limit/);
  assert.equal(note!.parkedAt.toISOString(), "2026-12-07T08:30:00.000Z");
});

Deno.test("amqp wire: declarations follow the fixture (pidbox, events, task, rpc reply queues)", () => {
  const decl = fixture("worker/declarations.json").declarations as {
    method: string;
    args: Record<string, unknown>;
  }[];
  const find = (method: string, test: (a: Record<string, unknown>) => boolean) =>
    decl.find((d) => d.method === method && test(d.args))!.args;
  const argsOf = (a: Record<string, unknown>) =>
    Object.fromEntries(
      Object.entries(a.arguments as Record<string, [string, unknown]>).map(([k, [, v]]) => [k, v]),
    );
  const node = find(
    "queue.declare",
    (a) => String(a.queue).endsWith("celery.pidbox") && String(a.queue).startsWith("celery@"),
  );
  const ours = subscriberQueueDeclaration("celery.pidbox", String(node.queue));
  assert.deepEqual(
    [ours.queue.durable, ours.queue.autoDelete, ours.queue.exclusive, ours.queue.arguments],
    [node.durable, node.auto_delete, node.exclusive, argsOf(node)],
  );
  const ev = find("queue.declare", (a) => String(a.queue).startsWith("celeryev."));
  const evOurs = subscriberQueueDeclaration("celeryev", String(ev.queue));
  assert.deepEqual(evOurs.queue.arguments, argsOf(ev));
  assert.equal(evOurs.bindingKey, "#");
  for (const name of ["celery.pidbox", "reply.celery.pidbox", "celeryev"]) {
    const x = find("exchange.declare", (a) => a.exchange === name);
    const e = exchangeDeclaration(name);
    assert.deepEqual([e.type, e.durable], [x.type, x.durable], name);
  }
  const task = find("queue.declare", (a) => a.queue === "celery");
  const t = taskQueueDeclaration("celery", {});
  assert.deepEqual([t.queue.durable, t.queue.autoDelete, t.queue.arguments], [
    task.durable,
    task.auto_delete,
    {},
  ]);
  const reply = find("queue.declare", (a) => /^[0-9a-f-]{36}$/.test(String(a.queue)));
  const r = replyQueueDeclaration(String(reply.queue), 86400);
  assert.deepEqual([r.durable, r.autoDelete, r.arguments], [
    reply.durable,
    reply.auto_delete,
    argsOf(reply),
  ]);
});

Deno.test("amqp wire: rpc result messages are Celery 5.2's", () => {
  const sent = fixture("worker/result_success.json").messages.find((
    m: { role: string; method: string; method_args: { exchange: string } },
  ) => m.role === "worker" && m.method === "basic.publish" && m.method_args.exchange === "");
  const taskId = sent.properties.correlation_id;
  const meta = encodeResultMeta({ taskId, status: "SUCCESS", result: 5, dateDone: new Date() });
  const m = rpcResultMessage(taskId, meta, { persistent: false });
  assert.equal(new TextDecoder().decode(m.body), sent.body_raw);
  const { content_type, content_encoding, ...props } = sent.properties;
  assert.deepEqual([m.contentType, m.contentEncoding], [content_type, content_encoding]);
  assert.deepEqual(m.properties, props);
  assert.deepEqual(m.headers, {});
  assert.equal(rpcResultMessage(taskId, meta, { persistent: true }).properties.delivery_mode, 2);
  const read = readRpcResult(m)!;
  assert.deepEqual([read.taskId, read.meta.status, read.meta.result], [taskId, "SUCCESS", 5]);
  // Without a correlation id, the body's task_id names the task (as Celery falls back).
  assert.equal(readRpcResult({ ...m, properties: {} })?.taskId, taskId);
  assert.equal(readRpcResult(syncMarker("x")), null);
});

Deno.test("amqp wire: rpc bodies copy the meta's fields as encoded, as decoding them would", () => {
  const results: unknown[] = [
    5,
    null,
    'a "quoted" } string',
    [1, [2, { x: "]" }]],
    { exc_type: "ValueError", exc_message: ["bad ✓"], exc_module: "builtins" },
    2n ** 70n,
    [NaN, Infinity, -Infinity, -0, 1e21, 5e-324],
    '\\"}{\\\\ \ud800 \u2028 \u{1F600}',
    { task_id: "nested", status: "SUCCESS", 'a"b': { result: [] } },
  ];
  for (const result of results) {
    for (const extra of [{}, { groupId: "g1", parentId: "p1", traceback: "Traceback\n  x" }]) {
      const meta = encodeResultMeta({
        taskId: "t1",
        status: "FAILURE",
        result,
        dateDone: new Date(),
        ...extra,
      });
      const m = pyJsonLoads(meta) as { traceback: string | null };
      const expected = pyJsonDumps({
        task_id: "t1",
        status: "FAILURE",
        result,
        traceback: m.traceback,
        children: [],
      });
      const body = new TextDecoder().decode(
        rpcResultMessage("c1", meta, { persistent: false }).body,
      );
      assert.equal(body, expected);
    }
  }
  // Missing fields read as a decoded meta's would (task_id falls back to the correlation id).
  const sparse = rpcResultMessage("c1", '{"status": "STARTED", "result": null}', {
    persistent: false,
  });
  assert.equal(
    new TextDecoder().decode(sparse.body),
    '{"task_id": "c1", "status": "STARTED", "result": null, "traceback": null, "children": []}',
  );
  // A float keeps the meta's spelling (Python's), which a decode would lose.
  const float = rpcResultMessage("c1", '{"status": "SUCCESS", "result": 1.0, "task_id": "t"}', {
    persistent: false,
  });
  assert.match(new TextDecoder().decode(float.body), /"result": 1\.0,/);
});
