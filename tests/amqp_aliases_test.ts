/**
 * kombu's aliases of `amqp://` as broker URLs: Celery's tutorial writes
 * `pyamqp://`, and `Celery(broker='pyamqp://guest@host//').connection().as_uri()`
 * gives `amqp://guest:**@host:5672//` in Celery 5.2.6 (`librabbitmq://` too, with
 * its C client installed; `pyamqps://` is no transport there). A result backend
 * has no such alias.
 */

import assert from "node:assert/strict";
import { openBackend, openBroker, resolveConfig } from "../protocol.ts";
import { urlSchemeProblem } from "../src/client/transports.ts";
import { appUrlFlags, checkUrlFlag } from "../src/cli/url_flags.ts";
import { runEnvCase } from "./helpers/env_cases.ts";
import { runCli } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { withWorker } from "./helpers/worker.ts";

Deno.test("amqp aliases: pyamqp:// and librabbitmq:// brokers are amqp://, before connecting", () => {
  assert.equal(urlSchemeProblem("broker", "pyamqp://guest@127.0.0.1//"), null);
  assert.equal(urlSchemeProblem("broker", "librabbitmq://guest@127.0.0.1//"), null);
  assert.equal(
    resolveConfig({ broker: "pyamqp://guest:guest@mq:5672//" }).broker,
    "amqp://guest:guest@mq:5672//",
  );
  assert.equal(resolveConfig({ broker: "PyAMQP://mq/prod" }).broker, "amqp://mq/prod");
  assert.equal(resolveConfig({ broker: "librabbitmq://mq//" }).broker, "amqp://mq//");
  const rpc = resolveConfig({ broker: "pyamqp://guest@mq//", backend: "rpc://" });
  assert.equal(rpc.backend, "rpc://guest@mq//", "rpc:// goes through the aliased broker");
  assert.equal(rpc.beatStore, null, "a RabbitMQ broker keeps no beat store");
  checkUrlFlag("--broker", "pyamqp://guest@127.0.0.1:5672//");
  assert.deepEqual(appUrlFlags({ broker: "pyamqp://mq//", backend: "rpc://" }), {
    broker: "pyamqp://mq//",
    backend: "rpc://",
  });
  assert.throws(
    () => checkUrlFlag("--broker", "pyamqp://mq//?heartbeat=abc"),
    /--broker: .*heartbeat/,
    "the AMQP parser checks an aliased URL too",
  );
});

Deno.test("amqp aliases: what Celery refuses stays refused, and results have no alias", async () => {
  assert.match(urlSchemeProblem("broker", "pyamqps://mq//") ?? "", /Unsupported broker URL/);
  assert.match(
    urlSchemeProblem("result backend", "pyamqp://mq//") ?? "",
    /Unsupported result backend URL "pyamqp:\/\/…"/,
  );
  assert.throws(() => checkUrlFlag("--backend", "pyamqp://mq//"), /Unsupported result backend/);
  await assert.rejects(openBackend("pyamqp://mq//"), /Unsupported result backend URL/);
  await assert.rejects(
    openBroker("ftp://host/x"),
    new TypeError(
      'Unsupported broker URL "ftp://…": use redis://, rediss://, sentinel://, ' +
        "redis+cluster://, rediss+cluster://, amqp://, amqps:// or kv://",
    ),
    "the aliases are not offered",
  );
});

Deno.test("amqp aliases: CELERY_BROKER_URL=pyamqp://… is the amqp:// broker", async () => {
  await runEnvCase("pyamqp broker variable");
});

Deno.test({
  name: "amqp aliases: a pyamqp:// broker runs a task with rpc:// results, and call -b sends",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("pyamqp");
  const broker = vhost.url().replace(/^amqp:/, "pyamqp:");
  try {
    await withWorker({ broker, backend: "rpc://" }, {}, async (client) => {
      assert.equal(client.config.broker, vhost.url());
      assert.equal(await (await client.sendTask("t.add", [2, 3])).get({ timeout: 30_000 }), 5);
    });
    const out = await runCli(
      ["call", "t.add", "-a", "[4, 5]", "-b", broker, "--queue", "aliased"],
      {
        env: { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" },
      },
    );
    assert.equal(out.code, 0, out.stderr);
    const reader = await openBroker(broker);
    try {
      assert.equal(await reader.queueDepth("aliased"), 1, "call's message waits in its queue");
    } finally {
      await reader.close();
    }
  } finally {
    await vhost.remove();
  }
});
