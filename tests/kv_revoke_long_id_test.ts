/**
 * KV revokes naming an id too long for a Deno KV key (review 1, MEDIUM 3):
 * `control.revoke([ok1, ok2, "L".repeat(3000)])` rejected with a raw
 * "Key too large for write" before the broadcast, so no id was revoked;
 * and a worker told the same stored none of the valid ids (200 are written
 * per atomic commit, and the bad one failed its batch and every batch after
 * it). The long id is now skipped with a warning naming the limit.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { Celery } from "../mod.ts";
import { openBroker } from "../protocol.ts";
import { Worker } from "../src/worker/worker.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";

const LONG = "L".repeat(3000);
const inAnHour = () => new Date(Date.now() + 3_600_000);

Deno.test("kv revoke: a too-long id is skipped with a warning; every valid id of every batch is stored", async () => {
  const records = await captureLogs("warning");
  const broker = await openBroker("kv://:memory:");
  try {
    const ids: string[] = Array.from({ length: 450 }, () => crypto.randomUUID());
    const entries = ids.map((id) => ({ id, expiresAt: inAnHour() }));
    entries.splice(0, 0, { id: LONG, expiresAt: inAnHour() });
    entries.splice(300, 0, { id: "M".repeat(2100), expiresAt: inAnHour() });
    await broker.addRevoked(entries);
    const stored = new Set((await broker.listRevoked()).map((e) => e.id));
    assert.equal(stored.size, ids.length);
    assert.ok(ids.every((id) => stored.has(id)));
    const warned = records.map(logLine).filter((l) => l.startsWith("warning Not remembering"));
    assert.equal(warned.length, 2, warned.join("\n"));
    assert.match(warned[0], /"L{40}"….*3021 bytes, over Deno KV's limit of 2048/);
  } finally {
    await broker.close();
    await reset();
  }
});

Deno.test("kv revoke: an id of exactly the largest key is stored", async () => {
  const broker = await openBroker("kv://:memory:");
  try {
    // ["celeriac", "revoked", id]: 10 + 9 + (2 + 2027) = 2048 bytes.
    const id = "x".repeat(2027);
    await broker.addRevoked([{ id, expiresAt: inAnHour() }]);
    assert.deepEqual((await broker.listRevoked()).map((e) => e.id), [id]);
  } finally {
    await broker.close();
  }
});

Deno.test("kv revoke: control.revoke with a too-long id still tells the worker and stores the valid ids", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-revoke-long-" });
  const url = `kv://${dir}/b.sqlite`;
  const app = new Celery({ broker: url, backend: url });
  app.task("t.add", (a: number, b: number) => a + b);
  const client = new Celery({ broker: url, backend: url });
  const worker = new Worker({ app, pool: "inline" });
  await worker.start();
  try {
    const ids: string[] = Array.from({ length: 4 }, () => crypto.randomUUID());
    const replies = await client.control.revoke([ids[0], ids[1], LONG, ids[2], ids[3]], {
      reply: true,
      timeout: 2,
    });
    assert.equal(replies.length, 1, JSON.stringify(replies));
    assert.match(Object.values(replies[0])[0].ok ?? "", /flagged as revoked/);
    const stored = new Set((await (await client.broker()).listRevoked()).map((e) => e.id));
    assert.ok(ids.every((id) => stored.has(id)), `${stored.size} stored`);
    assert.ok(!stored.has(LONG));
    const r = await client.sendTask("t.add", [1, 2], { taskId: ids[0] });
    assert.equal(
      await r.get({ timeout: 5000 }).then(() => null, (e) => e.excType),
      "TaskRevokedError",
    );
  } finally {
    await worker.stop();
    await Promise.all([app.close(), client.close()]);
    await Deno.remove(dir, { recursive: true });
  }
});
