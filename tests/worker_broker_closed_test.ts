/**
 * A broker closed under a running worker (its app closed while the worker
 * waits for messages): the take loop ends, saying the broker was closed, and
 * the worker stops by itself. Before, every take on the closed broker
 * resolved `[]` at once and the loop took again without end, at 100 % CPU
 * (KV, Redis); `stop()` never settled. A take on a closed broker now rejects
 * with a `BrokerConnectionError` that is not transient, on every transport.
 */

import assert from "node:assert/strict";
import { BrokerConnectionError } from "../mod.ts";
import { openAmqpBroker, openKvBroker, openRedisBroker } from "../transports.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SCRIPT = new URL("./apps/broker_closed_under_worker.ts", import.meta.url).pathname;

/** Run the fixture; a process still running after `ms` is killed and the test fails. */
async function runClosedUnderWorker(url: string, ms: number): Promise<{
  stopped: boolean;
  failure: { name: string; message: string; transient: boolean | null } | null;
  errors: string[];
}> {
  const queue = `closed-${crypto.randomUUID().slice(0, 8)}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, SCRIPT, url, queue],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(
    out.success,
    `the worker did not end within ${ms} ms (exit ${out.code}, signal ${out.signal}):\n${stderr}`,
  );
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

function assertClosedFailure(result: Awaited<ReturnType<typeof runClosedUnderWorker>>): void {
  assert.equal(result.stopped, true);
  assert.equal(result.failure?.name, "BrokerConnectionError");
  assert.equal(result.failure?.transient, false);
  assert.match(result.failure!.message, /this broker was closed/);
  const taking = result.errors.filter((line) => line.startsWith("Cannot take messages"));
  assert.equal(taking.length, 1, `one error from the take loop, got: ${result.errors.join("\n")}`);
  assert.match(taking[0], /this broker was closed.*Trying again cannot help: stopping/);
}

Deno.test("kv broker closed under a running worker: the take loop ends and the worker stops", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-closed-test-" });
  try {
    assertClosedFailure(await runClosedUnderWorker(`kv://${dir}/broker.sqlite`, 30_000));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "redis broker closed under a running worker: the take loop ends and the worker stops",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("closed");
  try {
    const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
    assertClosedFailure(await runClosedUnderWorker(url, 30_000));
  } finally {
    await deleteKeys(prefix);
  }
});

/** A take on each transport's closed broker. */
async function assertTakeRefused(
  broker: { take(q: string[], o: { max: number }): Promise<unknown>; close(): Promise<void> },
): Promise<void> {
  await broker.close();
  await assert.rejects(broker.take(["never-declared"], { max: 1 }), (err) => {
    assert.ok(err instanceof BrokerConnectionError);
    assert.equal(err.transient, false);
    assert.match(err.message, /this broker was closed\. Open a new one with open\w+Broker\(\)/);
    return true;
  });
}

Deno.test("kv: a take on a closed broker rejects, not transient", async () => {
  await assertTakeRefused(await openKvBroker("kv://:memory:"));
});

Deno.test({
  name: "redis: a take on a closed broker rejects, not transient",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("closed-take");
  await assertTakeRefused(
    await openRedisBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`),
  );
  await deleteKeys(prefix);
});

Deno.test({
  name: "amqp: a take on a closed broker rejects, not transient",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("closed-take");
  try {
    await assertTakeRefused(await openAmqpBroker(vhost.url()));
  } finally {
    await vhost.remove();
  }
});
