/**
 * What a RabbitMQ channel close makes of the sends in flight on it
 * (src/broker/amqp_send_ledger.ts): a write refused on the default exchange
 * (403, named `amq.default` in RabbitMQ's reply) fails alone; of two bodies
 * over `max_message_size`, the first is refused, the second refused too and
 * the sends between them published again, once.
 */

import assert from "node:assert/strict";
import amqp from "amqplib";
import { BatchPublishError, MessageRefusedError } from "../mod.ts";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { SendLedger } from "../src/broker/amqp_send_ledger.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { createVhost, setPermissions } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("ledger");
/** Just over RabbitMQ's default max_message_size (134,217,728 bytes). */
const TOO_BIG = 134_217_728 + 1024;

/** An amqplib channel-close error as RabbitMQ's reply makes it. */
function closeError(code: number, text: string): Error {
  return Object.assign(
    new Error(`Channel closed by server: ${code} (X) with message "${text}"`),
    { code },
  );
}

Deno.test("send ledger: one exchange match splits the sends; several leave their range unknown", () => {
  const ledger = new SendLedger();
  const seqs = ["", "", "billing", "", "billing", ""].map((x) => ledger.written(x, 10));
  const close = closeError(404, "NOT_FOUND - no exchange 'billing' in vhost '/'");
  assert.deepEqual(seqs.map((s) => ledger.fate(close, s)), [
    "sent",
    "sent",
    "unknown",
    "unknown",
    "unknown",
    "discarded",
  ]);
  const none = new SendLedger();
  const other = none.written("", 10);
  assert.equal(none.fate(close, other), null);
});

Deno.test("send ledger: a size refusal refuses the first of that size and each later one over the limit", () => {
  const big = closeError(
    406,
    "PRECONDITION_FAILED - message size 20 is larger than configured max size 15",
  );
  const ledger = new SendLedger();
  const seqs = [10, 20, 5, 20, 30, 15, 16].map((n) => ledger.written("", n));
  // Before: the two sends of size 20 and everything between them were "unknown", the 30 and 16
  // "discarded" (published again, to be refused alone).
  assert.deepEqual(seqs.map((s) => ledger.fate(big, s)), [
    "sent",
    "refused",
    "discarded",
    "refused",
    "refused",
    "discarded",
    "refused",
  ]);
  // Without the limit in the reply: N or more is over it.
  const bare = closeError(406, "PRECONDITION_FAILED - message size 20 is larger than allowed");
  const other = new SendLedger();
  const sizes = [10, 20, 19, 21].map((n) => other.written("", n));
  assert.deepEqual(sizes.map((s) => other.fate(bare, s)), [
    "sent",
    "refused",
    "discarded",
    "refused",
  ]);
  const none = new SendLedger();
  assert.equal(none.fate(big, none.written("", 10)), null);
});

Deno.test("send ledger: amq.default in a 403 names the default exchange", () => {
  const ledger = new SendLedger();
  const seqs = ["ok", "", "ok"].map((x) => ledger.written(x, 10));
  const close = closeError(
    403,
    "ACCESS_REFUSED - access to exchange 'amq.default' in vhost 'v' refused for user 'guest'",
  );
  assert.deepEqual(seqs.map((s) => ledger.fate(close, s)), ["sent", "refused", "discarded"]);
});

Deno.test(
  { name: "send ledger: a write refused on the default exchange fails alone", ignore },
  async () => {
    const queue = uniqueQueue("ledger403");
    const exchange = `${queue}.x`;
    // Set up with every permission, then let guest write to `exchange` (not amq.default) and to
    // the queue (bound to Celery's exchange of its name when declared).
    const broker = await openAmqpBroker(vhost!.url());
    await broker.declareQueue(queue);
    const setup = await amqp.connect(vhost!.url());
    try {
      const ch = await setup.createChannel();
      await ch.assertExchange(exchange, "direct", { durable: true });
      await ch.bindQueue(queue, exchange, queue);
    } finally {
      await setup.close();
    }
    const escaped = queue.replaceAll(".", "\\.");
    await setPermissions(vhost!.name, "guest", ".*", `^${escaped}(\\.x)?$`, ".*");
    try {
      const viaExchange = { exchange, routingKey: queue };
      const batch = [
        ...Array.from(
          { length: 3 },
          (_, i) => ({ message: message(`a${i}`), target: viaExchange }),
        ),
        { message: message("default"), target: { routingKey: queue } },
        ...Array.from(
          { length: 3 },
          (_, i) => ({ message: message(`b${i}`), target: viaExchange }),
        ),
      ];
      const err = await broker.publishMany(batch).then(() => null, (e: unknown) => e);
      // Before: RabbitMQ's reply named 'amq.default', no send matched "" and all the
      // unconfirmed ones failed "unknown" with a bare channel close.
      assert.ok(err instanceof BatchPublishError, String(err));
      assert.deepEqual(err.outcomes, ["sent", "sent", "sent", "unsent", "sent", "sent", "sent"]);
      assert.ok(err.cause instanceof MessageRefusedError, String(err.cause));
      assert.equal(err.cause.replyCode, 403);
      assert.equal(await broker.queueDepth(queue), 6);
    } finally {
      await broker.close();
      await setPermissions(vhost!.name, "guest", ".*", ".*", ".*");
    }
  },
);

Deno.test({
  name: "send ledger: of two oversized sends of one size both are refused, the rest sent once",
  ignore,
}, async () => {
  const broker = await openAmqpBroker(vhost!.url());
  try {
    const queue = uniqueQueue("ledgerpair");
    await broker.declareQueue(queue);
    const big = () => ({ ...message("big"), body: new Uint8Array(TOO_BIG) });
    const batch = [message("c0"), big(), message("c1"), big(), message("c2")].map((m) => ({
      message: m,
      target: { routingKey: queue },
    }));
    const err = await broker.publishMany(batch).then(() => null, (e: unknown) => e);
    // Before: every send from the first big one to the second was "unknown" and c1 never sent
    // (RabbitMQ refused the first big one and discarded everything after it).
    assert.ok(err instanceof BatchPublishError, String(err));
    assert.deepEqual(err.outcomes, ["sent", "unsent", "sent", "unsent", "sent"]);
    assert.ok(err.cause instanceof MessageRefusedError, String(err.cause));
    assert.equal(err.cause.code, "MESSAGE_REFUSED");
    assert.equal(err.cause.replyCode, 406);
    assert.equal(await broker.queueDepth(queue), 3);
  } finally {
    await broker.close();
  }
});

Deno.test({ name: "send ledger: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
