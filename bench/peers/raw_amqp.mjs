// deno-lint-ignore-file no-console
// Raw amqplib ceiling: the worker consumes the durable `bench` queue with
// prefetch 64 (Celeriac's default at -c 2), publishes each result
// (transient JSON, as Celery's rpc:// backend) to the message's reply_to,
// then acks it. No task protocol beyond reading the task id, no threads.
// Clients publish Celery protocol 2 messages (persistent, publisher
// confirms): `enqueue N` all at once then waits for the confirms;
// `enqueue-single N` waits for each confirm; `roundtrip` uses RabbitMQ's
// direct reply-to.
// Its drain rate is RabbitMQ's more than its own: on a 2-CPU host the server
// uses 0.9-1.2 CPU (75-185 us per task, depending on what the vhost did
// just before) against ~30-45 us in this loop, so one bench run's figure
// moved 2x between runs. Compare Celeriac with it alternated, many rounds,
// median: bench/amqp_pair.ts (bench/README.md, Profile).
import amqp from "amqplib";
import {
  BROKER_URL,
  celeryMessage,
  command,
  QUEUE,
  REPLY_QUEUE,
  roundTrips,
  spin,
  timed,
} from "./common.mjs";

const PREFETCH = 64;
const { cmd, n, m } = command();
const conn = await amqp.connect(BROKER_URL, { noDelay: true });

if (cmd === "worker") {
  const ch = await conn.createChannel();
  await ch.assertQueue(QUEUE, { durable: true });
  await ch.prefetch(PREFETCH);
  await ch.consume(QUEUE, (msg) => {
    const { id, task } = msg.properties.headers;
    const result = task === "bench.spin" ? spin(JSON.parse(msg.content.toString())[0][0]) : 1;
    const out = Buffer.from(
      JSON.stringify({
        task_id: id,
        status: "SUCCESS",
        result,
        traceback: null,
        children: [],
      }),
    );
    ch.sendToQueue(msg.properties.replyTo, out, {
      contentType: "application/json",
      correlationId: id,
    });
    ch.ack(msg);
  });
  process.on("SIGTERM", async () => {
    try {
      await conn.close();
    } finally {
      process.exit(0);
    }
  });
} else {
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(QUEUE, { durable: true });
  const send = (task, args, replyTo, done) => {
    const msg = celeryMessage(crypto.randomUUID(), task, args, replyTo);
    return ch.sendToQueue(QUEUE, msg.body, {
      persistent: true,
      contentType: "application/json",
      contentEncoding: "utf-8",
      headers: msg.headers,
      correlationId: msg.properties.correlation_id,
      replyTo,
    }, done);
  };
  const all = async (task, args) => {
    for (let i = 0; i < n; i++) {
      if (!send(task, args, REPLY_QUEUE)) {
        await new Promise((r) => ch.once("drain", r));
      }
    }
    await ch.waitForConfirms();
  };
  if (cmd === "enqueue") await timed(() => all("bench.noop", []));
  else if (cmd === "spin") await timed(() => all("bench.spin", [m]));
  else if (cmd === "enqueue-single") {
    await timed(async () => {
      for (let i = 0; i < n; i++) {
        await new Promise((ok, fail) =>
          send("bench.noop", [], REPLY_QUEUE, (e) => e ? fail(e) : ok())
        );
      }
    });
  } else if (cmd === "roundtrip") {
    let waiter = null;
    await ch.consume("amq.rabbitmq.reply-to", () => waiter?.(), {
      noAck: true,
    });
    await roundTrips(n, m, () =>
      new Promise((resolve) => {
        waiter = resolve;
        send("bench.noop", [], "amq.rabbitmq.reply-to");
      }));
  } else throw new Error(`unknown command ${cmd}`);
  await conn.close();
  process.exit(0);
}
