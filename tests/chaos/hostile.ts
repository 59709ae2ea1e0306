/**
 * A seeded generator of hostile Redis list elements (kombu envelopes gone
 * wrong), each with what the worker must do with it:
 *
 * - `success`: odd but valid; the task runs (huge time limit, unsafe tag)
 * - `failure`: carries a task id; a FAILURE (or REVOKED) is stored for it
 *   and the message parked
 * - `parked`: no usable task id; the message is parked with a reason
 *
 * and, for some, the reason it must be parked with. Compressed bombs are
 * sized for a worker run with `--max-decompressed-size 1M`.
 */

import { Buffer } from "node:buffer";
import { encodeEnvelope } from "../../src/protocol/envelope.ts";
import { encodeTaskMessage } from "../../src/protocol/task_message.ts";
import type { Message } from "../../src/protocol/message.ts";
import { BOMBS } from "../helpers/bombs.ts";

/** One hostile element. */
export interface Hostile {
  kind: string;
  raw: Uint8Array;
  expect: "success" | "failure" | "parked";
  id: string | null;
  /** What the parked message's reason must say, when it is parked. */
  reason?: RegExp;
}

/** A regular expression that matches `text` literally. */
function literally(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** `raw` with its last `n` bytes cut. */
function cut(raw: Uint8Array, n: number): Uint8Array {
  return raw.subarray(0, raw.length - n);
}

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const utf8 = new TextEncoder();

function taskMessage(
  id: string,
  _queue: string,
  extra: Partial<Parameters<typeof encodeTaskMessage>[0]> = {},
): Message {
  return encodeTaskMessage({
    task: "chaos.echo",
    id,
    args: [id],
    kwargs: {},
    now: new Date(),
    origin: "chaos@test",
    replyTo: "",
    ...extra,
  });
}

function envelope(m: Message, queue: string, tag: string = crypto.randomUUID()): string {
  return encodeEnvelope(m, { exchange: "", routing_key: queue }, tag);
}

function withBody(m: Message, body: string): Message {
  return { ...m, body: utf8.encode(body) };
}

function nest(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

/**
 * Build `n` hostile elements for `queue` from `seed`.
 *
 * @returns the elements, in push order
 */
export function hostileMessages(seed: number, n: number, queue: string): Hostile[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const bytes = (len: number) => Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
  const out: Hostile[] = [];
  let sharedTag = crypto.randomUUID();
  let bigHeaders = 0;
  const makers: (() => Hostile)[] = [
    () => ({
      kind: "random bytes",
      raw: bytes(1 + Math.floor(rnd() * 300)),
      expect: "parked",
      id: null,
    }),
    () => {
      const text = envelope(taskMessage(crypto.randomUUID(), queue), queue);
      return {
        kind: "truncated JSON",
        raw: utf8.encode(text.slice(0, Math.floor(rnd() * (text.length - 1)))),
        expect: "parked",
        id: null,
      };
    },
    () => {
      const id = crypto.randomUUID();
      const text = envelope(taskMessage(id, queue), queue).replace(
        /"body": "[^"]*"/,
        '"body": "%%%not base64"',
      );
      return { kind: "bad base64 body", raw: utf8.encode(text), expect: "failure", id };
    },
    () => {
      const text = envelope(taskMessage(crypto.randomUUID(), queue), queue);
      const variants = [
        text.replace(/"headers": \{/, '"headers": [1, {').replace(
          /, "properties"/,
          '], "properties"',
        ),
        '{"body": "", "headers": "h", "properties": {"delivery_tag": "' + crypto.randomUUID() +
        '"}}',
        "[1, 2, 3]",
        "null",
      ];
      return { kind: "wrong types", raw: utf8.encode(pick(variants)), expect: "parked", id: null };
    },
    () => {
      const id = crypto.randomUUID();
      const m = {
        ...taskMessage(id, queue),
        headers: {
          ...taskMessage(id, queue).headers,
          // Names that must not reach a prototype, a module or a file.
          task: pick([
            "chaos.nope",
            "__proto__",
            "constructor",
            "toString",
            "../../etc/passwd",
            "file:///etc/passwd",
            "https://example.com/evil.ts",
          ]),
        },
      };
      return { kind: "unknown task", raw: utf8.encode(envelope(m, queue)), expect: "failure", id };
    },
    () => {
      const id = crypto.randomUUID();
      const m = {
        ...taskMessage(id, queue),
        contentType: pick(["application/x-python-serialize", "application/x-yaml", "text/x-weird"]),
        contentEncoding: "binary",
        body: bytes(40),
      };
      return { kind: "pickle/yaml", raw: utf8.encode(envelope(m, queue)), expect: "failure", id };
    },
    () => {
      const id = crypto.randomUUID();
      // A few of these go a long way: each is 1 MB in Redis.
      const big = bigHeaders++ < 5 ? 1_100_000 : 2000;
      const m = taskMessage(id, queue, { headers: { x_big: "y".repeat(big) } });
      const expect = big > 1_048_576 ? "failure" : "success";
      return { kind: "1 MB headers", raw: utf8.encode(envelope(m, queue)), expect, id };
    },
    () => {
      const id = crypto.randomUUID();
      const text = envelope(taskMessage(id, queue), queue).replace(
        /"body": "[^"]*"/,
        '"body": 12345',
      );
      return { kind: "body not a string", raw: utf8.encode(text), expect: "failure", id };
    },
    () => {
      const id = crypto.randomUUID();
      const text = envelope(taskMessage(id, queue), queue).replace(
        '"lang": "py"',
        `"lang": ${nest(10_000)}`,
      );
      return { kind: "headers nested 10,000 deep", raw: utf8.encode(text), expect: "failure", id };
    },
    () => {
      const id = crypto.randomUUID();
      const m = withBody(taskMessage(id, queue), `[[${nest(10_000)}], {}, {}]`);
      return {
        kind: "body nested 10,000 deep",
        raw: utf8.encode(envelope(m, queue)),
        expect: "failure",
        id,
      };
    },
    () => {
      const id = crypto.randomUUID();
      const m = taskMessage(id, queue, { args: ["a\u0000b"], headers: { "x\u0000": "\u0000" } });
      return { kind: "null bytes", raw: utf8.encode(envelope(m, queue)), expect: "success", id };
    },
    () => {
      const id = crypto.randomUUID();
      const m = taskMessage(id, queue, { eta: pick(["yesterday", "2024-13-45T99:99:99", ""]) });
      return { kind: "bad ETA", raw: utf8.encode(envelope(m, queue)), expect: "failure", id };
    },
    () => {
      const id = crypto.randomUUID();
      const m = taskMessage(id, queue, { expires: pick(["soon", "2024-02-30T00:00:00"]) });
      return { kind: "bad expires", raw: utf8.encode(envelope(m, queue)), expect: "failure", id };
    },
    () => {
      const id = crypto.randomUUID();
      const m = taskMessage(id, queue, {
        timeLimit: pick([1e12, 3e6, 2 ** 40]),
        softTimeLimit: 3e9,
      });
      return {
        kind: "timelimit beyond setTimeout",
        raw: utf8.encode(envelope(m, queue)),
        expect: "success",
        id,
      };
    },
    () => {
      const id = crypto.randomUUID();
      if (rnd() < 0.3) sharedTag = crypto.randomUUID();
      return {
        kind: "reused delivery tag",
        raw: utf8.encode(envelope(taskMessage(id, queue), queue, sharedTag)),
        expect: "success",
        id,
      };
    },
    () => {
      const id = crypto.randomUUID();
      const [head, tail] = envelope(taskMessage(id, queue), queue, "TAG").split('"TAG"');
      const raw = Buffer.concat([
        Buffer.from(head + '"'),
        Buffer.from([0xc3, 0x28, 0xff]),
        Buffer.from('"' + tail),
      ]);
      return { kind: "non-UTF-8 delivery tag", raw: new Uint8Array(raw), expect: "success", id };
    },
    () => {
      const id = crypto.randomUUID();
      const embed = pick([
        '{"callbacks": [{"task": null}]}',
        '{"chain": [5]}',
        '{"errbacks": "x"}',
        '{"chord": {"task": "t", "args": 1}}',
      ]);
      const m = withBody(taskMessage(id, queue), `[["x"], {}, ${embed}]`);
      return {
        kind: "malformed link/chain",
        raw: utf8.encode(envelope(m, queue)),
        expect: "failure",
        id,
      };
    },
    () => {
      const id = crypto.randomUUID();
      const m = withBody(
        taskMessage(id, queue),
        pick(["{", "[1, 2", "[[], []]", '"text"', "[[], {}, {}, 4]"]),
      );
      return { kind: "bad JSON body", raw: utf8.encode(envelope(m, queue)), expect: "failure", id };
    },
    () => {
      const id = crypto.randomUUID();
      const name = pick(["application/x-nope", "lz4", "snappy", "application/x-gzip; q=1"]);
      const m = taskMessage(id, queue, { headers: { compression: name } });
      return {
        kind: "unknown compression",
        raw: utf8.encode(envelope(m, queue)),
        expect: "failure",
        id,
        reason: new RegExp(`Unsupported compression ${literally(name)}: `),
      };
    },
    () => {
      // What Python's kombu writes (headers of a Celery 5 message, a codec's MIME type),
      // a few KB that inflate to 32 or 64 MiB.
      const id = crypto.randomUUID();
      const bomb = BOMBS[pick(["zlib", "bzip2", "brotli", "zstd", "xz"] as const)];
      const m = { ...taskMessage(id, queue), body: bomb.over() };
      m.headers = { ...m.headers, compression: bomb.mime };
      return {
        kind: "compressed bomb",
        raw: utf8.encode(envelope(m, queue)),
        expect: "failure",
        id,
        reason: new RegExp(
          `Decompressed ${literally(bomb.mime)} body is over the 1 MiB limit: refused`,
        ),
      };
    },
    () => {
      // The same codecs, a body of just under the limit (args [1, 2]): it runs.
      const id = crypto.randomUUID();
      const bomb = BOMBS[pick(["zlib", "bzip2", "brotli", "zstd", "xz"] as const)];
      const m = { ...taskMessage(id, queue, { task: "chaos.work" }), body: bomb.under() };
      m.headers = { ...m.headers, compression: bomb.mime };
      return {
        kind: "compressed, under the limit",
        raw: utf8.encode(envelope(m, queue)),
        expect: "success",
        id,
      };
    },
    () => {
      // A compression header whose body is not that codec, or a stream cut short.
      const id = crypto.randomUUID();
      const plain = utf8.encode('[["x"], {}, {}]');
      const [mime, body] = pick(
        [
          ["application/x-gzip", plain],
          ["application/x-bz2", plain],
          ["application/zstd", plain],
          ["application/x-lzma", plain],
          ["application/x-bz2", BOMBS.zlib.under()],
          ["application/x-gzip", BOMBS.bzip2.under()],
          ["application/x-gzip", cut(BOMBS.zlib.under(), 4)],
          ["application/x-bz2", cut(BOMBS.bzip2.under(), 3)],
          ["application/x-lzma", cut(BOMBS.xz.under(), 3)],
        ] as const,
      );
      const m = { ...taskMessage(id, queue), body };
      m.headers = { ...m.headers, compression: mime };
      return {
        kind: "compressed garbage",
        raw: utf8.encode(envelope(m, queue)),
        expect: "failure",
        id,
        reason: new RegExp(`Corrupt ${literally(mime)} body: `),
      };
    },
    () => {
      const m = taskMessage(crypto.randomUUID(), queue);
      const headers = { ...m.headers, id: pick([null, 5, "", ["a"]]) };
      return {
        kind: "missing or bad id",
        raw: utf8.encode(envelope({ ...m, headers }, queue)),
        expect: "parked",
        id: null,
      };
    },
  ];
  for (let i = 0; i < n; i++) out.push(pick(makers)());
  return out;
}
