/**
 * A remote-control reply too large for the KV broker (over its 60 KB per
 * message, e.g. `inspect scheduled` with a few hundred ETA tasks held)
 * reaches the caller as an error reply naming the limit, instead of no
 * reply at all (the caller saw "No nodes replied" and only the worker's log
 * said why).
 */

import assert from "node:assert/strict";
import { withWorker } from "./helpers/worker.ts";

Deno.test("kv: an inspect reply over the message limit comes back as an error reply", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kvlargereply-test-" });
  const kv = `kv://${dir}/broker.sqlite`;
  try {
    await withWorker({ broker: kv, backend: kv }, { hostname: "kvlarge@%h" }, async (client, w) => {
      const sent = [];
      for (let i = 0; i < 300; i++) sent.push(client.sendTask("t.add", [i, 1], { countdown: 300 }));
      await Promise.all(sent);
      const inspect = client.control.inspect({ timeout: 5, destination: [w.hostname] });
      let reply: Record<string, unknown> = {};
      for (let i = 0; i < 50; i++) {
        reply = await inspect.scheduled();
        const mine = reply[w.hostname];
        if (mine && !Array.isArray(mine)) break;
        if (Array.isArray(mine) && mine.length < 300) {
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        break;
      }
      const mine = reply[w.hostname] as { error?: string } | undefined;
      assert.ok(mine, `no reply from ${w.hostname}: ${JSON.stringify(Object.keys(reply))}`);
      assert.match(String(mine.error), /60000 bytes/);
      assert.deepEqual(Object.keys(await inspect.ping()), [w.hostname]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
