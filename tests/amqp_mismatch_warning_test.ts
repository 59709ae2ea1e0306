/**
 * A task queue that exists with other arguments than Celeriac would
 * declare (RabbitMQ's 406 inequivalent arg) is used as it is, and the
 * warning says what to change: match the setting or delete the queue.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { uniqueQueue } from "./broker_conformance.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("mismatch");

Deno.test({ name: "queue mismatch: the warning says what to change", ignore }, async () => {
  const queue = uniqueQueue("mismatch");
  const first = await openAmqpBroker(vhost!.url("max_priority=10"));
  await first.declareQueue(queue);
  await first.close();
  const records = await captureLogs("warning");
  const second = await openAmqpBroker(vhost!.url("max_priority=5"));
  try {
    await second.declareQueue(queue);
    const warned = records.map(logLine).filter((l) => l.includes("exists with other settings"));
    assert.equal(warned.length, 1, warned.join("\n"));
    // Before: "…; using it as it is", nothing more.
    assert.match(warned[0], /x-max-priority is 10 there/);
    assert.match(warned[0], /make the setting match the queue .* or delete the queue/);
    assert.match(warned[0], new RegExp(`rabbitmqctl delete_queue -p ${vhost!.name} ${queue};`));
  } finally {
    await second.close();
    await reset();
  }
});

Deno.test({ name: "queue mismatch: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
