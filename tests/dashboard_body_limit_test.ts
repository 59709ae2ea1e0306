/**
 * An action's body is read only up to 64 KiB, even with a valid CSRF token:
 * a larger Content-Length gets 413 before anything is read, and a body sent
 * in chunks (no length) gets 413 once past the limit, the rest not read.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard } from "../dashboard.ts";
import { feed } from "./helpers/event_feed.ts";

const LIMIT = 64 * 1024;

Deno.test("dashboard: an action's body over 64 KiB gets 413 and is not read whole", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const f = feed();
  const d = new Dashboard({ app, port: 0, events: f.source, enableEvents: false, inspector: null });
  try {
    const base = "http://127.0.0.1:5555";
    const session = await (await d.handle(new Request(`${base}/api/session`))).json();
    const headers = {
      "content-type": "application/json",
      "x-csrf-token": session.csrfToken as string,
    };
    d.model.apply({
      type: "task-received",
      hostname: "w@h",
      timestamp: Date.now() / 1000,
      uuid: "t1",
    });

    // A body sent in chunks, without a length: counted as it is read
    let pulled = 0;
    const chunk = new TextEncoder().encode(" ".repeat(16 * 1024));
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled += chunk.byteLength;
        if (pulled > 64 * 1024 * 1024) c.close();
        else c.enqueue(chunk);
      },
    }, { highWaterMark: 0 });
    const chunked = await d.handle(
      new Request(`${base}/api/tasks/t1/revoke`, { method: "POST", headers, body: stream }),
    );
    assert.equal(chunked.status, 413);
    assert.equal((await chunked.json()).error.code, "body_too_large");
    assert.ok(pulled <= LIMIT + 2 * chunk.byteLength, `${pulled} bytes read of the body`);

    // A declared length over the limit: refused before reading
    let read = false;
    const big = new ReadableStream<Uint8Array>({
      pull(c) {
        read = true;
        c.close();
      },
    }, { highWaterMark: 0 });
    const declared = await d.handle(
      new Request(`${base}/api/tasks/t1/revoke`, {
        method: "POST",
        headers: { ...headers, "content-length": String(200 << 20) },
        body: big,
      }),
    );
    assert.equal(declared.status, 413);
    assert.equal(read, false);

    // A small body is still read
    const ok = await d.handle(
      new Request(`${base}/api/tasks/t1/revoke`, { method: "POST", headers, body: "{}" }),
    );
    assert.equal(ok.status, 200, await ok.clone().text());
  } finally {
    await d.stop();
    await app.close();
  }
});
