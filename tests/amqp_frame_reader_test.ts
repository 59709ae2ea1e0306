/**
 * The in-place frame reader (src/broker/amqp_frame_reader.ts) gives
 * amqplib's channels the frames amqplib's own reader (with Celeriac's
 * header decoding) gives, whatever the chunks the socket cuts the bytes
 * into; frames it does not read itself, or whose lengths do not add up,
 * still go to amqplib's reader.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import { readFramesInPlace } from "../src/broker/amqp_frame_reader.ts";
import { decodeHeadersOurselves, UndecodableHeaders } from "../src/broker/amqp_header_frames.ts";
import { RABBITMQ_URL } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const text = (s: string) => [...new TextEncoder().encode(s)];
const short = (s: string) => [text(s).length, ...text(s)];
const u16 = (n: number) => [n >> 8, n & 0xff];
const u32 = (n: number) => [n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const u64 = (n: number) => [...u32(Math.floor(n / 2 ** 32)), ...u32(n >>> 0)];
const frame = (type: number, channel: number, payload: number[]) => [
  type,
  ...u16(channel),
  ...u32(payload.length),
  ...payload,
  0xce,
];
const method = (channel: number, classId: number, methodId: number, args: number[]) =>
  frame(1, channel, [...u16(classId), ...u16(methodId), ...args]);
const header = (channel: number, size: number, flags: number, props: number[]) =>
  frame(2, channel, [...u16(60), 0, 0, ...u64(size), ...u16(flags), ...props]);

const table = [
  ...short("id"),
  "S".charCodeAt(0),
  ...u32(36),
  ...text("0b6f7a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
  ...short("task"),
  "S".charCodeAt(0),
  ...u32(7),
  ...text("añadir!"),
  ...short("retries"),
  "L".charCodeAt(0),
  ...u64(2 ** 40),
  ...short("nested"),
  "F".charCodeAt(0),
  ...u32(7),
  ...short("k"),
  "t".charCodeAt(0),
  1,
  "V".charCodeAt(0),
];
const body = text('[[], {}, {"callbacks": null}]');

/** A consumer's and a confirming publisher's traffic, and frames left to amqplib. */
const BYTES = [
  ...method(1, 60, 60, [...short("amq.ctag-x"), ...u64(7), 1, ...short(""), ...short("celery")]),
  ...header(1, body.length, 0xfe00, [
    ...short("application/json"),
    ...short("utf-8"),
    ...u32(table.length),
    ...table,
    2,
    0,
    ...short("corr-1"),
    ...short("réplies"),
  ]),
  ...frame(3, 1, body),
  ...method(2, 60, 80, [...u64(2 ** 33 + 5), 1]),
  ...header(1, 0, 0, []),
  // headers then every later property: expiration, message id, timestamp, type, user, app, cluster
  ...header(1, 2, 0x21fc, [
    ...u32(3),
    1,
    0x6b,
    0x3f,
    ...short("60000"),
    ...short("m1"),
    ...u64(1_733_486_400),
    ...short("t"),
    ...short("guest"),
    ...short("app"),
    ...short("c"),
  ]),
  ...frame(3, 1, [1, 2]),
  ...method(1, 60, 21, short("amq.ctag-y")), // basic.consume-ok: amqplib's
  ...frame(8, 0, []), // heartbeat: amqplib's
  ...header(1, 1, 0x0400, [200, 0x61]), // a short string past its frame: amqplib's ("a")
];

/** A connection as amqplib's reader sees it, reading `chunks` from its socket. */
function fakeConnection(recvFrame: () => unknown, chunks: Buffer[]) {
  return {
    rest: Buffer.alloc(0),
    maxFrameSize: 131072,
    recvSinceLastCheck: false,
    stream: { read: () => chunks.shift() ?? null },
    recvFrame,
  };
}

/** Every frame read, until the reader has nothing or throws (the throw ends the list). */
function readAll(connection: { recvFrame(): unknown }): unknown[] {
  const frames: unknown[] = [];
  try {
    for (let f = connection.recvFrame(); f; f = connection.recvFrame()) frames.push(f);
  } catch (err) {
    frames.push(`threw ${(err as Error).message}`);
  }
  return frames;
}

/** amqplib's own reader, taken from a real connection. */
async function amqplibReader(): Promise<() => unknown> {
  const model = await amqp.connect(RABBITMQ_URL);
  const proto = Object.getPrototypeOf((model as unknown as { connection: object }).connection);
  await model.close();
  return proto.recvFrame;
}

Deno.test({
  name: "amqp frame reader: the frames amqplib's reader gives, however the bytes are cut",
  ignore: WITHOUT_RABBITMQ,
  async fn() {
    const recvFrame = await amqplibReader();
    const reference = fakeConnection(recvFrame, [Buffer.from(BYTES)]);
    decodeHeadersOurselves({ connection: reference });
    const expected = readAll(reference);
    assert.equal(expected.length, 10);
    assert.ok(
      (expected[5] as { fields: { headers: unknown } }).fields.headers instanceof
        UndecodableHeaders,
    );
    for (const cuts of [[], [1], [7], [40, 41], [100, 200, 300], [BYTES.length - 1]]) {
      for (let step = 0; step < 3; step++) {
        const at = [0, ...cuts.map((c) => c + step), BYTES.length];
        const chunks = at.slice(1).map((end, i) => Buffer.from(BYTES.slice(at[i], end)));
        const ours = fakeConnection(recvFrame, chunks);
        decodeHeadersOurselves({ connection: ours });
        readFramesInPlace({ connection: ours });
        assert.deepEqual(readAll(ours), expected, `chunks cut at ${at.join(",")}`);
        assert.equal(chunks.length, 0);
      }
    }
  },
});

Deno.test({
  name: "amqp frame reader: a frame past maxFrameSize or without its end octet is amqplib's error",
  ignore: WITHOUT_RABBITMQ,
  async fn() {
    const recvFrame = await amqplibReader();
    const big = fakeConnection(recvFrame, [Buffer.from(frame(3, 1, body))]);
    big.maxFrameSize = 4;
    readFramesInPlace({ connection: big });
    assert.deepEqual(readAll(big), [`threw Frame size ${body.length} exceeds maxFrameSize 4`]);
    const bad = frame(3, 1, body);
    bad[bad.length - 1] = 0;
    const unended = fakeConnection(recvFrame, [Buffer.from(bad)]);
    readFramesInPlace({ connection: unended });
    assert.deepEqual(readAll(unended), ["threw Invalid frame"]);
  },
});
