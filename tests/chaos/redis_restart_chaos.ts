/**
 * Chaos: a private redis-server (AOF on, its own port) is killed mid-drain
 * and started again, once for 1 s and once for 5 s, while a late-ack worker
 * process drains 3,000 tasks. Nothing may be lost: every task ends SUCCESS,
 * nothing stays unacknowledged, the worker is never restarted and stays
 * alive. Re-executions and resume times are printed.
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Celery } from "../../mod.ts";
import { PrivateRedis } from "../helpers/private_redis.ts";
import { report } from "../helpers/report.ts";
import { countRuns } from "./app.ts";
import { alive, notDone, startWorker, statesOf, waitUntil } from "./helpers.ts";

Deno.test("chaos: redis-server killed for 1 s and 5 s mid-drain loses nothing", async () => {
  const server = await PrivateRedis.start();
  const runs = await Deno.makeTempFile({ prefix: "celeriac-chaos-runs-" });
  const url = server.url;
  const queue = "restart";
  const n = 3000;
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  let worker: ReturnType<typeof startWorker> | null = null;
  const executed = async () => (await countRuns(runs)).runs;
  try {
    const work = client.remoteTask("chaos.work");
    const ids: string[] = [];
    for (let i = 0; i < n; i += 500) {
      const batch = Array.from({ length: 500 }, (_, j) => work.delay(`w${i + j}`, 200));
      for (const r of await Promise.all(batch)) ids.push(r.id);
    }
    worker = startWorker("restart worker", [
      "-b",
      url,
      "--backend",
      url,
      "-Q",
      queue,
      "-c",
      "2",
      "--loglevel",
      "WARNING",
    ], { CHAOS_RUNS: runs });
    const resumes: number[] = [];
    for (const [downMs, at] of [[1000, 0.2], [5000, 0.5]] as const) {
      await waitUntil(`${at * 100} % executed`, async () => (await executed()) >= n * at, 60_000);
      await server.down();
      await new Promise((r) => setTimeout(r, downMs));
      const before = await executed();
      await server.up();
      const back = Date.now();
      await waitUntil(
        "work resumes",
        async () => (await executed()) > before,
        30_000,
        () => worker!.output.slice(-8000),
      );
      resumes.push(Date.now() - back);
      assert.ok(await alive(worker!), "the worker survived the outage");
    }
    await waitUntil("every task has a state", async () => {
      const states = await statesOf(redis, "", ids).catch(() => null);
      return states !== null && notDone(states).length === 0;
    }, 120_000);
    const states = await statesOf(redis, "", ids);
    const notOk = ids.filter((id) => states.get(id) !== "SUCCESS");
    assert.deepEqual(notOk, [], "lost or failed tasks");
    await waitUntil(
      "nothing unacknowledged",
      async () => (await redis.hlen("unacked")) === 0,
      20_000,
    );
    assert.ok(await alive(worker!), "the worker is alive");
    const { runs: total, ids: ran } = await countRuns(runs);
    assert.equal(ran.size, n, "every task ran");
    report(
      `redis restart: ${n} tasks, 0 lost, ${total - n} re-executions; work resumed ` +
        `${resumes.join(" ms and ")} ms after Redis was back (1 s and 5 s down)`,
    );
    assert.equal((await worker!.stop("SIGTERM")).code, 0);
  } finally {
    await worker?.stop("SIGKILL");
    await client.close();
    redis.disconnect();
    await server.close();
    await Deno.remove(runs);
  }
});
