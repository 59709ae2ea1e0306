/**
 * A worker with `maxDecompressedSize: 1 MiB` given a decompression bomb per
 * codec (a few KB that inflate to 64 MiB, tests/helpers/bombs.ts) among
 * plain tasks: each bomb is parked unrun with a ProtocolError FAILURE naming
 * the limit and how to raise it, a body of just under the limit runs, and
 * the plain tasks all run. Also a protocol-1 bomb (its body is decoded on
 * the main thread, where the headers are) and an ETA-held bomb that
 * `inspect scheduled` describes (from its argsrepr, not its 64 MiB). On
 * Redis and the KV broker; the inline pool too.
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { requestInfo } from "../worker.ts";
import { loadCodecs } from "../protocol.ts";
import { BOMBS, MiB } from "./helpers/bombs.ts";
import { compressedAddMessage } from "./helpers/compressed.ts";
import { heldTaskOf } from "./helpers/run_info.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

const { transports, cleanup } = await redisAndKv("bomb");

const LIMIT_TEXT =
  /Decompressed \S+ body is over the 1 MiB limit: refused \(a decompression bomb, or a larger body than this worker accepts: raise its maxDecompressedSize option, --max-decompressed-size on the command line\)/;

const cases = [
  ...transports.map((t) => ({
    t,
    pool: "threads" as const,
    ignore: t.name === "redis" && WITHOUT_REDIS,
  })),
  { t: transports[1], pool: "inline" as const, ignore: false },
];

for (const { t, pool, ignore } of cases) {
  Deno.test({
    name: `worker on ${t.name} (${pool} pool): a bomb per codec is parked, the rest runs`,
    ignore,
  }, async () => {
    await withWorker(t, { maxDecompressedSize: MiB, pool }, async (client, _worker, queue) => {
      const broker = await client.broker();
      const bombs: Record<string, string> = {};
      const unders: Record<string, string> = {};
      const plain: string[] = [];
      for (const [name, bomb] of Object.entries(BOMBS)) {
        bombs[name] = crypto.randomUUID();
        unders[name] = crypto.randomUUID();
        const id = crypto.randomUUID();
        plain.push(id);
        await broker.publish(compressedAddMessage(client, bombs[name], bomb.mime, bomb.over()), {
          routingKey: queue,
        });
        await client.sendTask("t.add", [20, 22], { taskId: id });
        await broker.publish(compressedAddMessage(client, unders[name], bomb.mime, bomb.under()), {
          routingKey: queue,
        });
      }
      for (const id of plain) {
        assert.equal(await client.asyncResult(id).get({ timeout: 20_000 }), 42);
      }
      for (const [name, id] of Object.entries(unders)) {
        assert.equal(
          await client.asyncResult(id).get({ timeout: 20_000 }),
          3,
          `${name} just under`,
        );
      }
      for (const [name, id] of Object.entries(bombs)) {
        await assert.rejects(client.asyncResult(id).get({ timeout: 20_000 }), (err: unknown) => {
          assert.ok(err instanceof TaskError, `${name}: ${err}`);
          assert.equal(err.excType, "ProtocolError");
          assert.match(String(err.excMessage[0]), LIMIT_TEXT);
          assert.match(
            String(err.excMessage[0]),
            new RegExp(BOMBS[name as keyof typeof BOMBS].mime),
          );
          return true;
        });
      }
      // What `worker.ts parked` and the dashboard's Queues page list: each bomb, with the reason.
      const parked = await broker.listParked({ limit: 1000 });
      for (const [name, id] of Object.entries(bombs)) {
        const mine = parked.filter((p) => p.taskId === id);
        assert.equal(mine.length, 1, `${name} parked once`);
        assert.match(mine[0].reason, LIMIT_TEXT);
        assert.equal(mine[0].queue, queue);
      }
      for (const id of [...plain, ...Object.values(unders)]) {
        assert.ok(!parked.some((p) => p.taskId === id));
      }
    });
  });
}

Deno.test("worker: a protocol-1 bomb (body decoded with the headers) is parked too", async () => {
  const kv = transports[1];
  await withWorker(kv, { maxDecompressedSize: MiB }, async (client, _worker, queue) => {
    const broker = await client.broker();
    const message = compressedAddMessage(client, "unused", "application/x-gzip", BOMBS.zlib.over());
    message.headers = { compression: "application/x-gzip" }; // protocol 1: all in the body
    await broker.publish(message, { routingKey: queue });
    const after = await client.sendTask<number>("t.add", [1, 1]);
    assert.equal(await after.get({ timeout: 10_000 }), 2, "the worker goes on");
    const parked = await broker.listParked({ limit: 1000 });
    const mine = parked.filter((p) => p.queue === queue);
    assert.equal(mine.length, 1);
    assert.match(
      mine[0].reason,
      /^malformed task message: Decompressed application\/x-gzip body is over the 1 MiB limit/,
    );
  });
});

Deno.test("inspect: a held bomb is described from its argsrepr, not decoded past the limit", async () => {
  await loadCodecs({ compression: true });
  const m = encodeTaskMessage({
    task: "t.add",
    id: "held-bomb",
    args: [],
    kwargs: {},
    now: new Date(),
    origin: "test",
    replyTo: "r",
  });
  m.headers.compression = BOMBS.zlib.mime;
  m.body = BOMBS.zlib.over();
  const t = heldTaskOf(m);
  const options = { hostname: "n@h", safe: false, started: false };
  assert.equal(requestInfo(t, { ...options, maxDecompressed: MiB }).args, "()");
  // Under a limit it fits in, the body is decoded.
  assert.deepEqual(requestInfo(t, { ...options, maxDecompressed: 64 * MiB }).args, [1, 2]);
});

Deno.test("worker: heartbeatInterval past what a timer holds is refused, not a heartbeat every 1 ms", async () => {
  // Before: taken, and setInterval repeated 3,000,000 s every 1 ms (TimeoutOverflowWarning).
  for (const bad of [3_000_000, -1, NaN]) {
    await assert.rejects(
      withWorker(transports[1], { heartbeatInterval: bad }, () => Promise.resolve()),
      new RangeError(
        "heartbeatInterval needs 0 to 2147483.647 seconds (24.8 days, what a timer holds), " +
          `got ${bad}`,
      ),
    );
  }
});

Deno.test("worker: maxDecompressedSize must be a whole number of bytes >= 1", async () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    await assert.rejects(
      withWorker(transports[1], { maxDecompressedSize: bad }, () => Promise.resolve()),
      new TypeError(`maxDecompressedSize needs a whole number of bytes >= 1, got ${bad}`),
    );
  }
});

Deno.test({ name: "worker bomb: cleanup", sanitizeResources: false }, async () => {
  await cleanup();
});
