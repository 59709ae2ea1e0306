/**
 * Chaos: the TCP path between a worker process and RabbitMQ is cut (every
 * connection closed, new ones refused for 2 s) five times mid-drain, by a
 * proxy the test owns (the shared RabbitMQ is never restarted). Invariants:
 * every task SUCCESS, no task runs again after its SUCCESS was stored, the
 * worker (never restarted) is alive. Resume times are printed.
 */

import assert from "node:assert/strict";
import { Celery } from "../../mod.ts";
import { LossyProxy } from "../helpers/lossy_proxy.ts";
import { createVhost } from "../helpers/rabbitmq.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "../helpers/redis.ts";
import { report } from "../helpers/report.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "../helpers/services.ts";
import { countRuns } from "./app.ts";
import { alive, notDone, startWorker, statesOf, waitUntil } from "./helpers.ts";

Deno.test({
  name: "chaos: five cuts of the path to RabbitMQ lose nothing",
  ignore: WITHOUT_RABBITMQ || WITHOUT_REDIS,
}, async () => {
  const vhost = await createVhost("chaos-cut");
  const { proxy, url: viaProxy } = LossyProxy.before(vhost.url());
  const prefix = uniquePrefix("chaos-cut");
  const backend = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const runs = await Deno.makeTempFile({ prefix: "celeriac-chaos-runs-" });
  const redis = await rawRedis();
  const client = new Celery({ broker: vhost.url(), backend, defaultQueue: "cut" });
  const n = 2000;
  let worker: ReturnType<typeof startWorker> | null = null;
  try {
    const work = client.remoteTask("chaos.work");
    const ids: string[] = [];
    for (let i = 0; i < n; i += 500) {
      const batch = Array.from({ length: 500 }, (_, j) => work.delay(`c${i + j}`, 50));
      for (const r of await Promise.all(batch)) ids.push(r.id);
    }
    worker = startWorker("amqp worker", [
      "-b",
      viaProxy,
      "--backend",
      backend,
      "-Q",
      "cut",
      "-c",
      "2",
      "--prefetch",
      "8",
      "--loglevel",
      "WARNING",
    ], { CHAOS_RUNS: runs });
    const executed = async () => (await countRuns(runs)).runs;
    const resumes: number[] = [];
    for (let cut = 1; cut <= 5; cut++) {
      await waitUntil("the drain goes on", async () => (await executed()) >= (n * cut) / 7, 60_000);
      proxy.refuse(true);
      proxy.cut();
      await new Promise((r) => setTimeout(r, 2000));
      const before = await executed();
      proxy.refuse(false);
      const back = Date.now();
      await waitUntil(
        "work resumes",
        async () => (await executed()) > before,
        30_000,
        () => worker!.output.slice(-3000),
      );
      resumes.push(Date.now() - back);
    }
    await waitUntil(
      "every task has a state",
      async () => notDone(await statesOf(redis, prefix, ids)).length === 0,
      120_000,
    );
    assert.ok(await alive(worker), "the worker is alive");
    const states = await statesOf(redis, prefix, ids);
    assert.deepEqual(ids.filter((id) => states.get(id) !== "SUCCESS"), [], "lost tasks");
    const { runs: total, ids: ran } = await countRuns(runs);
    const metas = await redis.mget(...ids.map((id) => `${prefix}celery-task-meta-${id}`));
    let afterSuccess = 0;
    ids.forEach((id, i) => {
      const done = Date.parse(/"date_done": "([^"]+)"/.exec(metas[i] ?? "")?.[1] + "Z");
      assert.ok(Number.isFinite(done), `SUCCESS of ${id} has its date_done`);
      afterSuccess += (ran.get(id) ?? []).filter((t) => t > done + 50).length;
    });
    const suppressed = worker.output.match(/duplicate suppressed/g)?.length ?? 0;
    report(
      `amqp cut: ${n} tasks, 5 cuts: 0 lost, ${total - n} re-executions, ${suppressed} ` +
        `suppressed, ${afterSuccess} runs after SUCCESS; work resumed ${resumes.join(", ")} ms ` +
        `after the path was back`,
    );
    assert.equal(afterSuccess, 0);
    assert.equal((await worker.stop("SIGTERM")).code, 0);
  } finally {
    await worker?.stop("SIGKILL");
    await client.close();
    proxy.close();
    redis.disconnect();
    await deleteKeys(prefix);
    await vhost.remove();
    await Deno.remove(runs);
  }
});
