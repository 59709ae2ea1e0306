/**
 * A control request whose reply exchange does not exist (a stale client, or
 * a hostile one) costs nothing to the requests around it on RabbitMQ. Before,
 * the worker checked the reply exchange on its one admin channel: the 404
 * closed that channel, and every declaration queued on it failed with
 * amqplib's "Channel ended, no reply will be forthcoming" — the next ping's
 * reply was lost, and so were add_consumer calls during a flood of such
 * requests (review 44, finding 2).
 */

import assert from "node:assert/strict";
import amqp from "amqplib";
import { reset } from "@logtape/logtape";
import { Celery } from "../mod.ts";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { AdminChannels } from "../src/broker/amqp_admin.ts";
import { AmqpConnection } from "../src/broker/amqp_connection.ts";
import { encodeControlRequest, PIDBOX_EXCHANGE } from "../protocol.ts";
import { Worker } from "../src/worker/worker.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { until } from "./helpers/waits.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("adminch");
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `amqp admin channel: ${name}`, ignore }, fn);

/**
 * A worker on a fresh queue, a publisher of control requests, and a reply
 * exchange of the test's own with a queue bound to it; `fn` runs with them.
 */
async function withPidbox(
  label: string,
  fn: (p: {
    send(method: string, args: Record<string, unknown>, replyExchange: string): Promise<string>;
    replies(): Promise<Map<string, unknown>>;
    failures(): string[];
    replyExchange: string;
  }) => Promise<void>,
): Promise<void> {
  const id = crypto.randomUUID().slice(0, 8);
  const app = new Celery({ broker: vhost!.url(), backend: "kv://:memory:" });
  const worker = new Worker({ app, pool: "inline", hostname: `${label}-${id}@x`, queues: [id] });
  const records = await captureLogs("error");
  await worker.start();
  const broker = await openAmqpBroker(vhost!.url());
  const conn = await amqp.connect(vhost!.url());
  const ch = await conn.createChannel();
  const replyExchange = `adminch-replies-${id}`;
  await ch.assertExchange(replyExchange, "direct", { durable: false, autoDelete: false });
  await ch.assertQueue(replyExchange, { durable: false, exclusive: true });
  await ch.bindQueue(replyExchange, replyExchange, "r");
  const got = new Map<string, unknown>();
  try {
    await fn({
      send: async (method, args, exchange) => {
        const ticket = crypto.randomUUID();
        await broker.broadcast(
          PIDBOX_EXCHANGE,
          encodeControlRequest(
            {
              method,
              arguments: args,
              destination: [worker.hostname],
              ticket,
              replyTo: { exchange, routingKey: "r" },
            },
            { clock: 1, expires: Date.now() / 1000 + 60 },
          ),
        );
        return ticket;
      },
      replies: async () => {
        for (let m = await ch.get(replyExchange); m; m = await ch.get(replyExchange)) {
          ch.ack(m);
          got.set(
            String(m.properties.correlationId ?? m.properties.headers?.ticket),
            JSON.parse(m.content.toString())[worker.hostname],
          );
        }
        return got;
      },
      failures: () => records.map(logLine).filter((l) => l.includes("Cannot reply to")),
      replyExchange,
    });
  } finally {
    await conn.close();
    await broker.close();
    await worker.stop();
    await app.close();
    await reset();
  }
}

test("a ping whose reply exchange is missing does not lose the next ping's reply", async () => {
  await withPidbox("one", async (p) => {
    await p.send("ping", {}, `no.such.exchange.${crypto.randomUUID()}`);
    const good = await p.send("ping", {}, p.replyExchange);
    let replies = new Map<string, unknown>();
    await until("both pings handled", async () => {
      replies = await p.replies();
      return replies.size + p.failures().length >= 2;
    });
    // Before: the second failure was "Cannot reply to ping: Channel ended, no reply will be forthcoming".
    assert.deepEqual(replies.get(good), { ok: "pong" }, p.failures().join("\n"));
    assert.equal(p.failures().length, 1);
    assert.match(p.failures()[0], /no.such.exchange.*does not exist/);
  });
});

test("add_consumer calls among a flood of such pings are all answered", async () => {
  await withPidbox("flood", async (p) => {
    const bad = 60;
    const tickets: string[] = [];
    for (let i = 0; i < bad; i++) {
      await p.send("ping", {}, `no.such.exchange.${crypto.randomUUID()}`);
      if (i % 6 === 3) {
        const queue = `adminch-q-${crypto.randomUUID().slice(0, 8)}`;
        tickets.push(
          await p.send(
            "add_consumer",
            { queue, exchange: `${queue}-x`, routing_key: "k" },
            p.replyExchange,
          ),
        );
      }
    }
    let replies = new Map<string, unknown>();
    await until("every request handled", async () => {
      replies = await p.replies();
      return replies.size + p.failures().length >= bad + tickets.length;
    });
    // Before: 10 of 10 got {error: "Error('Channel ended, no reply will be forthcoming')"}.
    const answers = tickets.map((t) => replies.get(t));
    assert.ok(
      answers.every((a) => typeof (a as { ok?: unknown })?.ok === "string"),
      JSON.stringify(answers),
    );
    assert.equal(p.failures().length, bad);
  });
});

test("an operation queued behind a refused one runs again on a fresh channel", async () => {
  const connection = new AmqpConnection(vhost!.url());
  try {
    await connection.start();
    const session = await connection.session();
    const admin = new AdminChannels();
    const queue = `adminch-run-${crypto.randomUUID().slice(0, 8)}`;
    const [missing, declared] = await Promise.allSettled([
      admin.run(session, (ch) => ch.checkExchange(`no.such.exchange.${queue}`)),
      admin.run(session, (ch) => ch.assertQueue(queue, { exclusive: true })),
    ]);
    assert.equal(missing.status, "rejected");
    assert.equal((missing as PromiseRejectedResult).reason.code, 404);
    // Before: rejected with "Channel ended, no reply will be forthcoming".
    assert.equal(declared.status, "fulfilled", String((declared as PromiseRejectedResult).reason));
  } finally {
    await connection.close();
  }
});

test("checks on channels of their own: at most four at once", async () => {
  const connection = new AmqpConnection(vhost!.url());
  try {
    await connection.start();
    const session = await connection.session();
    const admin = new AdminChannels();
    let open = 0;
    let most = 0;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        admin.probe(session, async (ch) => {
          most = Math.max(most, ++open);
          try {
            await ch.checkExchange(i % 2 ? "amq.direct" : `no.such.exchange.${i}`);
          } finally {
            open--;
          }
        })),
    );
    assert.deepEqual(
      outcomes.map((o) => o.status === "fulfilled" || o.reason.code),
      Array.from({ length: 40 }, (_, i) => i % 2 ? true : 404),
    );
    assert.ok(most <= 4, `${most} checks at once`);
  } finally {
    await connection.close();
  }
});

test("clean up the test vhost", async () => {
  await vhost!.remove();
});
