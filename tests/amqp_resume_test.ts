/**
 * RabbitMQ: consumption resumes soon after the broker is reachable again.
 * A test-owned proxy cuts every connection and refuses new ones for 2 s
 * (the shared RabbitMQ is never restarted).
 */

import assert from "node:assert/strict";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { backoffDelay } from "../src/broker/amqp_state.ts";
import type { Delivery } from "../src/broker/port.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { report } from "./helpers/report.ts";

Deno.test("the default reconnect backoff never waits more than 300 ms, however long the outage", () => {
  for (const attempt of [1, 5, 10, 100]) {
    assert.ok(backoffDelay(attempt, {}, () => 0.999) <= 300, `attempt ${attempt}`);
  }
});

Deno.test({
  name: "amqp resume: takes resume after a 2 s refusal (the time is printed, not asserted)",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("resume");
  const { proxy, url: viaProxy } = LossyProxy.before(vhost.url());
  const consumer = await openAmqpBroker(viaProxy);
  const publisher = await openAmqpBroker(vhost.url());
  const q = uniqueQueue("resume");
  try {
    await consumer.declareQueue(q);
    await publisher.publish(message("before"), { routingKey: q });
    const first: Delivery[] = await consumer.take([q], {
      max: 1,
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(first.length, 1);
    await consumer.ack(first);
    proxy.refuse(true);
    proxy.cut();
    await new Promise((r) => setTimeout(r, 2000));
    await publisher.publish(message("after"), { routingKey: q });
    proxy.refuse(false);
    const back = Date.now();
    let got: Delivery[] = [];
    while (got.length === 0) {
      got = await consumer.take([q], { max: 1, signal: AbortSignal.timeout(10_000) }).catch(
        () => [],
      );
      if (Date.now() - back > 15_000) break;
    }
    assert.equal(got.length, 1, "consumption resumed");
    report(`amqp resume: first delivery ${Date.now() - back} ms after the path was back`);
    await consumer.ack(got);
  } finally {
    await consumer.close();
    await publisher.close();
    proxy.close();
    await vhost.remove();
  }
});
