import assert from "node:assert/strict";
import {
  RedisReplyError,
  RespProtocolError,
  RespReader,
  type RespValue,
} from "../src/broker/resp_reader.ts";
import { RespWriter } from "../src/broker/resp_writer.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Feed `chunks` to a reader as separate reads; the replies, bulk strings as text. */
function readAll(chunks: Uint8Array[], reader = new RespReader(64)): unknown[] {
  const out: unknown[] = [];
  const plain = (v: RespValue): unknown =>
    v instanceof Uint8Array ? dec.decode(v) : Array.isArray(v) ? v.map(plain) : v;
  for (const c of chunks) {
    let off = 0;
    while (off < c.length) {
      const room = reader.space(1);
      const n = Math.min(room.length, c.length - off);
      room.set(c.subarray(off, off + n));
      reader.commit(n);
      off += n;
      reader.drain((v) => out.push(plain(v)));
    }
  }
  return out;
}

Deno.test("RESP writer: commands are arrays of bulk strings, UTF-8 measured in bytes", () => {
  const w = new RespWriter(8);
  w.command(["SET", "clé", enc.encode("v")]);
  w.publish(enc.encode("ch"), new Uint8Array(0));
  assert.equal(
    dec.decode(w.take()),
    "*3\r\n$3\r\nSET\r\n$4\r\nclé\r\n$1\r\nv\r\n" +
      "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$0\r\n\r\n",
  );
  assert.equal(w.length, 0);
});

Deno.test("RESP writer: a big payload grows the buffer; take() hands it over whole", () => {
  const w = new RespWriter(16);
  const payload = new Uint8Array(200_000).fill(0x61);
  w.publish(enc.encode("c"), payload);
  const out = w.take();
  const head = "*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$200000\r\n";
  assert.equal(out.length, head.length + 200_000 + 2);
  assert.equal(dec.decode(out.subarray(0, head.length)), head);
  assert.deepEqual(out.subarray(head.length, head.length + 200_000), payload);
  assert.equal(dec.decode(out.subarray(out.length - 2)), "\r\n");
});

Deno.test("RESP writer: a recycled buffer is reused, the other one is not overwritten", () => {
  const w = new RespWriter(64);
  w.command(["PING"]);
  const first = w.take();
  const firstText = dec.decode(first);
  w.command(["ECHO", "x"]);
  const second = w.take();
  assert.equal(dec.decode(first), firstText);
  w.recycle(first);
  w.command(["ECHO", "y"]);
  assert.equal(dec.decode(second), "*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n");
  assert.equal(dec.decode(w.take()), "*2\r\n$4\r\nECHO\r\n$1\r\ny\r\n");
});

Deno.test("RESP writer: PUBLISH of ASCII text pieces; a piece that is not ASCII writes nothing", () => {
  const w = new RespWriter(8);
  const big = "b".repeat(70_000);
  w.publish(enc.encode("ch"), ['{"body": "', big, '"}']);
  assert.equal(
    dec.decode(w.take()),
    `*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$70012\r\n{"body": "${big}"}\r\n`,
  );
  w.command(["PING"]);
  assert.throws(() => w.publish(enc.encode("ch"), ["ok", "caf\u00e9"]), TypeError);
  assert.throws(() => w.asciiBulk(["\u2603"]), /ASCII/);
  assert.equal(dec.decode(w.take()), "*1\r\n$4\r\nPING\r\n", "the refused PUBLISH left nothing");
});

Deno.test("RESP writer: a long string argument and a large count", () => {
  const w = new RespWriter(4);
  const long = "é".repeat(1000);
  w.command([long]);
  assert.equal(dec.decode(w.take()), `*1\r\n$2000\r\n${long}\r\n`);
});

Deno.test("RESP writer: a string argument's length prefix counts its UTF-8 bytes at every size", () => {
  const w = new RespWriter(4);
  const cases = [
    "",
    "a",
    "é".repeat(9),
    "€".repeat(4),
    "😀x",
    "\ud800",
    "x".repeat(9) + "é",
    "\x7f\x80",
    "z".repeat(128),
    "z".repeat(129),
    "z".repeat(127) + "é",
    "ü".repeat(70_000),
    "y".repeat(70_000),
  ];
  for (const s of cases) w.command([s, "end"]);
  const expected = cases.map((s) => {
    const bytes = enc.encode(s);
    return `*2\r\n$${bytes.length}\r\n${dec.decode(bytes)}\r\n$3\r\nend\r\n`;
  }).join("");
  assert.equal(dec.decode(w.take()), expected);
});

Deno.test("RESP reader: every reply type, in one read", () => {
  const got = readAll([
    enc.encode("+OK\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n$0\r\n\r\n*0\r\n"),
    enc.encode("*2\r\n*1\r\n:1\r\n$1\r\nx\r\n-ERR unknown command\r\n"),
  ], new RespReader(1024));
  const err = got.pop() as RedisReplyError;
  assert.deepEqual(got, ["OK", 42, -7, "hello", null, null, "", [], [[1], "x"]]);
  assert.ok(err instanceof RedisReplyError);
  assert.equal(err.name, "RedisReplyError");
  assert.equal(err.code, "ERR");
  assert.equal(err.message, "ERR unknown command");
});

Deno.test("RESP reader: RESP3 pushes and maps read as arrays, its null as null", () => {
  const got = readAll([
    enc.encode(">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n_\r\n$2\r\nhi\r\n"),
    enc.encode("%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n"),
    enc.encode(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n"),
  ], new RespReader(1024));
  assert.deepEqual(got, [
    ["subscribe", "ch", 1],
    null,
    "hi",
    ["proto", 3, "modules", []],
    ["message", "ch", "x"],
  ]);
});

Deno.test("RESP reader: a reply split at every byte comes out once, whole", () => {
  const bytes = enc.encode(
    "*4\r\n$8\r\npmessage\r\n$3\r\np/*\r\n$3\r\np/a\r\n$12\r\nhello\r\nworld\r\n:5\r\n",
  );
  const chunks = [...bytes].map((b) => new Uint8Array([b]));
  assert.deepEqual(readAll(chunks), [["pmessage", "p/*", "p/a", "hello\r\nworld"], 5]);
});

Deno.test("RESP reader: a bulk string far larger than the buffer, read in pieces", () => {
  const size = 1_000_000;
  const body = "b".repeat(size);
  const bytes = enc.encode(`*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$${size}\r\n${body}\r\n+PONG\r\n`);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += 4093) chunks.push(bytes.subarray(i, i + 4093));
  const got = readAll(chunks);
  assert.equal(got.length, 2);
  assert.equal((got[0] as string[])[2].length, size);
  assert.equal((got[0] as string[])[2], body);
  assert.equal(got[1], "PONG");
});

Deno.test("RESP reader: bulk strings are views of the read buffer, not copies", () => {
  const r = new RespReader(256);
  const bytes = enc.encode("$3\r\nabc\r\n");
  const room = r.space();
  room.set(bytes);
  r.commit(bytes.length);
  let view: Uint8Array | undefined;
  r.drain((v) => view = v as Uint8Array);
  assert.ok(view);
  assert.equal(view.buffer, room.buffer);
  assert.equal(dec.decode(view), "abc");
});

Deno.test("RESP reader: bytes that are not RESP are a RespProtocolError", () => {
  for (const bad of ["?x\r\n", ":1x\r\n", "$3\r\nabcde\r\n", "+a\rb\r\n", ":\r\n"]) {
    assert.throws(
      () => readAll([enc.encode(bad)], new RespReader(1024)),
      (err: unknown) =>
        err instanceof RespProtocolError && err.name === "RespProtocolError" &&
        err.code === "RESP_PROTOCOL",
      bad,
    );
  }
});

Deno.test("RESP reader: a partial reply is kept while the buffer compacts", () => {
  const r = new RespReader(32);
  const out: unknown[] = [];
  const feed = (s: string) => {
    const b = enc.encode(s);
    r.space(b.length).set(b);
    r.commit(b.length);
    r.drain((v) => out.push(v instanceof Uint8Array ? dec.decode(v) : v));
  };
  feed(":1\r\n:2\r\n:3\r\n:4\r\n:5\r\n$20\r\n0123");
  feed("456789");
  feed("0123456789\r\n:6\r\n");
  assert.deepEqual(out, [1, 2, 3, 4, 5, "01234567890123456789", 6]);
});

Deno.test("RESP reader: an array asked for whole comes as its bytes, across split reads", () => {
  const reply = enc.encode("*4\r\n:-2\r\n$4\r\nab\u00e9\r\n$-1\r\n*1\r\n+x\r\n");
  const bytes = enc.encode("+OK\r\n").length;
  const input = new Uint8Array([...enc.encode("+OK\r\n"), ...reply, ...enc.encode(":5\r\n")]);
  for (let cut = 1; cut < input.length; cut++) {
    const r = new RespReader(8);
    const got: unknown[] = [];
    for (const part of [input.subarray(0, cut), input.subarray(cut)]) {
      r.space(part.length).set(part);
      r.commit(part.length);
      r.drain((v) => got.push(v instanceof Uint8Array ? dec.decode(v) : v), () => true);
    }
    assert.deepEqual(got, ["OK", dec.decode(reply), 5], `cut at ${cut} (after ${bytes})`);
  }
});
