/**
 * The live stream (`GET /api/stream`) on a real server: a client that stops
 * reading (a frozen tab, a stalled proxy) is closed once it falls behind,
 * instead of the dashboard keeping every later message for it; a client
 * that reads the same messages stays connected.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard } from "../dashboard.ts";
import { feed } from "./helpers/event_feed.ts";

/** A client reading the stream: the bytes and text it got, and a wait for a text. */
function reader(body: ReadableStream<Uint8Array>) {
  const decoder = new TextDecoder();
  const state = { bytes: 0, text: "", ended: false };
  let wake = () => {};
  const done = (async () => {
    for await (const chunk of body) {
      state.bytes += chunk.length;
      // keep the tail only: a marker is looked for in what arrived since the last wait
      state.text = (state.text + decoder.decode(chunk, { stream: true })).slice(-100_000);
      wake();
    }
    state.ended = true;
    wake();
  })();
  return {
    state,
    done,
    async waitFor(marker: string): Promise<void> {
      while (!state.text.includes(marker)) {
        assert.ok(!state.ended, `the reading client's stream ended before ${marker}`);
        await new Promise<void>((r) => wake = r);
      }
      state.text = "";
    },
  };
}

Deno.test("live stream: a client that stops reading is closed, one that reads stays", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const f = feed();
  const d = new Dashboard({
    app,
    port: 0,
    events: f.source,
    enableEvents: false,
    inspector: null,
    maxTasks: 1000,
  });
  const { url } = await d.start();
  const port = Number(new URL(url).port);
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await stalled.write(
      new TextEncoder().encode(`GET /api/stream HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`),
    );
    const ac = new AbortController();
    const res = await fetch(`${url}/api/stream`, { signal: ac.signal });
    const live = reader(res.body!);
    // 12 messages of 200 failed tasks whose args, kwargs, exception and traceback are as long as
    // the dashboard keeps (14 KiB a task): ~35 MB that the stalled client never takes
    const big = `('${"x".repeat(20_000)}',)`;
    const at = Date.now() / 1000;
    for (let s = 0; s < 12; s++) {
      f.push(
        ...Array.from({ length: 200 }, (_, i) => [{
          type: "task-received",
          hostname: "w@h",
          timestamp: at,
          uuid: `t${s}-${i}`,
          name: "n",
          args: big,
          kwargs: big,
        }, {
          type: "task-failed",
          hostname: "w@h",
          timestamp: at,
          uuid: `t${s}-${i}`,
          exception: big,
          traceback: big,
        }]).flat(),
      );
      await live.waitFor(`"t${s}-199"`);
    }
    const sent = live.state.bytes;
    // The stalled client now reads: what its socket buffers held, then the end, well before
    // everything the reading client got. Unbounded, it would get all of it and stay open.
    let got = 0;
    try {
      const buf = new Uint8Array(1 << 16);
      for (;;) {
        const n = await stalled.read(buf);
        if (n === null) break;
        got += n;
        if (got >= sent) break;
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.ConnectionReset)) throw err;
    }
    assert.ok(got < sent / 2, `the stalled client got ${got} of ${sent} bytes: not closed`);
    // The reading client is still served.
    f.push({ type: "task-started", hostname: "w@h", timestamp: at, uuid: "t0-0" });
    await live.waitFor('"STARTED"');
    ac.abort();
    await live.done.catch(() => {});
  } finally {
    stalled.close();
    await d.stop();
    await app.close();
  }
});
