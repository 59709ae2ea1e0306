/**
 * Remote-control replies that reach the transport before the deadline
 * while this process's event loop is stalled are kept on KV (whose reply
 * loop sees another process's write only at its next check) and on
 * RabbitMQ (whose deliveries can take more than one turn to be read): at
 * the deadline the call flushes its subscription (KV: one more read;
 * RabbitMQ: a round trip on the consuming channel). The node answers from
 * another process while this one is blocked past the 1 s timeout. KV in a
 * temp file; RabbitMQ on a vhost of this file's own.
 */

import assert from "node:assert/strict";
import { Celery, Control } from "../mod.ts";
import { stallAfterBroadcast } from "./helpers/broker_wraps.ts";
import { celeriacWorker } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const kvDir = await Deno.makeTempDir({ prefix: "celeriac-replies-flush-test-" });
const vhost = WITHOUT_RABBITMQ ? null : await createVhost("replies-flush");

/** How long the event loop is blocked, past the call's 1 s timeout. */
const STALL_MS = 1500;

const TRANSPORTS = [
  {
    name: "kv",
    urls: () => {
      const url = `kv://${kvDir}/${crypto.randomUUID().slice(0, 8)}.sqlite`;
      return { broker: url, backend: url };
    },
    ignore: false,
  },
  {
    name: "rabbitmq",
    urls: () => ({ broker: vhost!.url(), backend: "rpc://" }),
    ignore: WITHOUT_RABBITMQ,
  },
];

for (const t of TRANSPORTS) {
  Deno.test({
    name:
      `replies on ${t.name}: a reply that reached the transport in time while the event loop stalled is kept`,
    ignore: t.ignore,
  }, async () => {
    const { broker, backend } = t.urls();
    const worker = await celeriacWorker([
      ...["--app", "./tests/interop/tasks.ts", "-b", broker, "--backend", backend],
      ...["-Q", `flush-${crypto.randomUUID().slice(0, 8)}`, "-c", "1", "-n", "flush@%h"],
    ]);
    const node = worker.output.match(/(flush@\S+) ready/)![1];
    const app = new Celery({ broker, backend });
    try {
      const control = new Control(async () => stallAfterBroadcast(await app.broker(), STALL_MS));
      for (let round = 0; round < 2; round++) {
        assert.deepEqual(
          await control.ping({ timeout: 1, destination: [node] }),
          [{ [node]: { ok: "pong" } }],
          `round ${round}`,
        );
      }
    } finally {
      await app.close();
      await worker.stop();
    }
  });
}

Deno.test("replies flush: clean up", async () => {
  await Deno.remove(kvDir, { recursive: true });
  await vhost?.remove();
});
