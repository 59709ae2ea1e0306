/**
 * A KV file deleted (`rm -rf .celeriac` to start afresh) or replaced while a
 * worker has it open: the worker keeps the old, deleted database, where
 * nothing sent to the path arrives any more. Its takes must say so instead
 * of waiting in silence for ever.
 */

import assert from "node:assert/strict";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { openKvBroker } from "../src/broker/kv.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";

for (const how of ["deleted", "replaced"] as const) {
  Deno.test(`kv file ${how} under an open broker: its take fails, saying so`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-gone-" });
    const url = `kv://${dir}/db/broker.sqlite`;
    // A short visibility timeout sweeps, and so checks the file, every 500 ms.
    const broker = await openKvBroker(url, { visibilityTimeout: 1 });
    const q = uniqueQueue("gone");
    try {
      await broker.publish(message("before"), { routingKey: q });
      await broker.ack(await broker.take([q], { max: 1 }));
      const waiting = broker.take([q], { max: 1, signal: AbortSignal.timeout(10_000) });
      await Deno.remove(`${dir}/db`, { recursive: true });
      if (how === "replaced") {
        // A new file at the path, as another process's next open makes (this process's own
        // opens share its one handle per path).
        await Deno.mkdir(`${dir}/db`);
        (await Deno.openKv(`${dir}/db/broker.sqlite`)).close();
      }
      await assert.rejects(waiting.then((got) => `took ${got.length}`), (err: Error) => {
        assert.ok(err instanceof BrokerConnectionError, String(err));
        assert.match(err.message, /broker\.sqlite .*deleted or replaced while this process/);
        assert.match(err.message, /Restart/);
        return true;
      });
    } finally {
      await broker.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
