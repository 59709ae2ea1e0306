/**
 * `result` with the rpc:// backend says why it cannot work instead of
 * waiting for a reply that only the sending client could receive.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { runResult } from "../src/cli/call.ts";

Deno.test("cli result: an rpc:// backend is refused with what to change, without connecting", async () => {
  // Port 1: nothing listens, so a connection attempt would fail differently.
  const app = new Celery({ broker: "amqp://guest:guest@127.0.0.1:1//", backend: "rpc://" });
  try {
    await assert.rejects(
      runResult(app, crypto.randomUUID(), { timeout: "0.5" }),
      (err: Error) => {
        assert.ok(err instanceof TypeError, String(err));
        assert.match(err.message, /rpc:\/\/ backend: it sends each result only to the client/);
        assert.match(err.message, /--backend redis:\/\//);
        return true;
      },
    );
  } finally {
    await app.close();
  }
});

Deno.test("cli result: no result backend at all names --backend, not new Celery(...)", async () => {
  // A RabbitMQ or Redis broker has no result backend unless one is set.
  const app = new Celery({ broker: "amqp://guest:guest@127.0.0.1:1//", backend: null });
  try {
    await assert.rejects(
      runResult(app, crypto.randomUUID(), { timeout: "0.5" }),
      (err: Error) => {
        assert.ok(err instanceof TypeError, String(err));
        assert.match(err.message, /result needs the result backend the worker stores to/);
        assert.match(err.message, /--backend redis:\/\//);
        return true;
      },
    );
  } finally {
    await app.close();
  }
});
