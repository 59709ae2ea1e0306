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
import { celeriacWorker } from "./helpers/procs.ts";

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

Deno.test("kv file deleted under a running worker: it says so once and stops, exit status 1", async () => {
  // It logged "Cannot take messages ... retrying" every 2 s for ever.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-gone-worker-" });
  const url = `kv://${dir}/db/broker.sqlite?visibility_timeout=1`;
  const worker = await celeriacWorker([
    "--app",
    "tests/apps/worker_app.ts",
    "-b",
    url,
    "-P",
    "inline",
  ]);
  try {
    await Deno.remove(`${dir}/db`, { recursive: true });
    // A hang fails the test: stopped by SIGKILL, its status is not 1.
    const killer = setTimeout(() => worker.signal("SIGKILL"), 30_000);
    const status = await worker.finished();
    clearTimeout(killer);
    const out = worker.output;
    assert.equal(status.code, 1, out);
    assert.equal(out.match(/Cannot take messages/g)?.length, 1, out);
    assert.match(out, /deleted or replaced while this process had it open.*Trying again cannot/);
    assert.match(out, /warm shutdown/);
  } finally {
    await worker.stop("SIGKILL", 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv file deleted under a producer: its publishes fail instead of going nowhere", async () => {
  // A client that only publishes never takes, so nothing checked the file: its messages went
  // into the deleted database, where no worker (a new one opens a new file) reads.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-gone-producer-" });
  const broker = await openKvBroker(`kv://${dir}/db/broker.sqlite`);
  const q = uniqueQueue("gone-producer");
  try {
    await broker.publish(message("before"), { routingKey: q });
    await Deno.remove(`${dir}/db`, { recursive: true });
    // Publishes check the file at most once a second: within a few, one must fail.
    let failure: unknown = null;
    for (let i = 0; i < 50 && failure === null; i++) {
      failure = await broker.publish(message(`after ${i}`), { routingKey: q }).then(
        () => new Promise((r) => setTimeout(() => r(null), 100)),
        (err) => err,
      );
    }
    assert.ok(failure instanceof BrokerConnectionError, String(failure));
    assert.equal(failure.transient, false);
    assert.match(failure.message, /deleted or replaced while this process had it open/);
    // And every publish after it.
    await assert.rejects(
      broker.publish(message("later"), { routingKey: q }),
      BrokerConnectionError,
    );
  } finally {
    await broker.close();
    await Deno.remove(dir, { recursive: true });
  }
});
