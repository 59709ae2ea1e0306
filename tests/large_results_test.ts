/**
 * Large results are stored, not lost: the KV backend splits a long meta
 * across entries; a result no backend can take ends as a stored FAILURE
 * (EncodeError naming the size and the limit) with its message settled —
 * never PENDING forever, never redelivered and re-run.
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import { openKvBackend } from "../src/backend/kv.ts";
import { KV_MAX_RESULT_BYTES, KV_VALUE_BYTES } from "../src/backend/kv_meta_store.ts";
import { EncodeError } from "../src/protocol/errors.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import type { TaskState } from "../src/protocol/result_meta.ts";
import { withFirstContactWorker } from "./helpers/first_contact.ts";
import { reservePorts } from "./helpers/ports.ts";
import { redisServerProc } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

function entry(taskId: string, status: TaskState, result: unknown) {
  return {
    taskId,
    status,
    meta: encodeResultMeta({ taskId, status, result, dateDone: new Date() }),
  };
}

async function kvEntries(path: string, prefix: string[]): Promise<number> {
  const kv = await Deno.openKv(path);
  let n = 0;
  for await (const _ of kv.list({ prefix })) n++;
  kv.close();
  return n;
}

Deno.test("large results: the KV backend stores results longer than one KV value", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-large-" });
  const path = `${dir}/kv.sqlite`;
  const backend = await openKvBackend(`kv://${path}`);
  try {
    const id = crypto.randomUUID();
    const waiting = backend.waitFor(id, AbortSignal.timeout(20_000));
    waiting.catch(() => {}); // awaited below; a failure before that must not go unhandled
    const big = "é😀x".repeat(2 * KV_VALUE_BYTES); // non-ASCII: escaped, and kept two-byte by V8
    await backend.store([entry(id, "RETRY", "r".repeat(5 * KV_VALUE_BYTES))]);
    const success = entry(id, "SUCCESS", big);
    await backend.store([success]);
    assert.equal((await waiting).result, big);
    assert.equal((await backend.get(id))?.result, big);
    // The RETRY's parts were replaced, not left behind: only the SUCCESS's parts remain.
    const parts = await kvEntries(path, ["celeriac", "celery-task-meta-part", id]);
    assert.equal(parts, Math.ceil(new TextEncoder().encode(success.meta).length / KV_VALUE_BYTES));
    // A stored SUCCESS is never replaced, however long the newcomer.
    await backend.store([entry(id, "FAILURE", "f".repeat(3 * KV_VALUE_BYTES))]);
    assert.equal((await backend.get(id))?.result, big);
    await backend.forget(id);
    assert.equal(await backend.get(id), null);
    assert.equal(await kvEntries(path, ["celeriac", "celery-task-meta-part", id]), 0);

    const tooBig = crypto.randomUUID();
    await assert.rejects(
      backend.store([entry(tooBig, "SUCCESS", "z".repeat(KV_MAX_RESULT_BYTES))]),
      (e: Error) => {
        assert.ok(e instanceof EncodeError);
        assert.match(
          e.message,
          new RegExp(`is \\d+ bytes, over the KV backend's limit of ${KV_MAX_RESULT_BYTES} bytes`),
        );
        return true;
      },
    );
  } finally {
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("large results: on kv:// a 100 KB result arrives; one over the limit is a stored FAILURE, run once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-large-" });
  const kv = `kv://${dir}/kv.sqlite`;
  try {
    await withFirstContactWorker(
      { broker: kv, backend: kv, visibilityTimeout: 1 },
      { acksLate: true },
      async (client, worker) => {
        const big = client.remoteTask<[number], string>("fc.big");
        const ok = await (await big.delay(100_000)).get({ timeout: 20_000 });
        assert.equal(ok.length, 100_000);
        const huge = await big.delay(KV_MAX_RESULT_BYTES + 1);
        await assert.rejects(huge.get({ timeout: 60_000 }), (e: TaskError) => {
          assert.ok(e instanceof TaskError);
          assert.equal(e.excType, "EncodeError");
          assert.equal(e.excModule, "kombu.exceptions");
          assert.match(String(e.excMessage), /over the KV backend's limit of 33554432 bytes/);
          return true;
        });
        // Past the 1 s visibility timeout: the message was settled, not redelivered and re-run.
        await new Promise((r) => setTimeout(r, 3000));
        assert.equal(worker.stats.received, 2);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "large results: a Redis write error (bulk over the server's limit) stores FAILURE, run once",
  ignore: WITHOUT_REDIS,
}, async () => {
  using ports = reservePorts();
  const port = ports.base;
  // proto-max-bulk-len 1mb: a 2 MB SET gets "ERR Protocol error: invalid bulk length", as a
  // result over 512 MB would on a default server.
  const server = redisServerProc(port, ["--proto-max-bulk-len", "1mb"]);
  try {
    await server.waitFor(/Ready to accept connections/);
    const url = `redis://127.0.0.1:${port}/0`;
    await withFirstContactWorker(
      { broker: url, backend: url, visibilityTimeout: 1 },
      { acksLate: true },
      async (client, worker) => {
        const big = client.remoteTask<[number], string>("fc.big");
        assert.equal((await (await big.delay(100_000)).get({ timeout: 20_000 })).length, 100_000);
        const huge = await big.delay(2_000_000);
        await assert.rejects(huge.get({ timeout: 30_000 }), (e: TaskError) => {
          assert.equal(e.excType, "EncodeError");
          assert.match(
            String(e.excMessage),
            /SUCCESS result of task .* \(\d+ bytes of JSON\) could not be stored: .*invalid bulk length/,
          );
          return true;
        });
        await new Promise((r) => setTimeout(r, 3000));
        assert.equal(worker.stats.received, 2);
      },
    );
  } finally {
    await server.stop();
  }
});

Deno.test({
  name: "large results: over rpc://, a result larger than RabbitMQ's frame_max arrives",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("large-rpc");
  try {
    await withFirstContactWorker(
      { broker: vhost.url(), backend: "rpc://" },
      {},
      async (client) => {
        const big = client.remoteTask<[number], string>("fc.big");
        // frame_max is 128 KiB by default: the body goes in several frames.
        const value = await (await big.delay(1_000_000)).get({ timeout: 30_000 });
        assert.equal(value.length, 1_000_000);
      },
    );
  } finally {
    await vhost.remove();
  }
});
