/**
 * Chaos: a late-ack worker process (visibility timeout 3 s) is SIGKILLed
 * again and again while draining, at seeded random moments — some of them
 * during the restore sweep of the worker that replaced it — and restarted
 * each time. Then one last worker finishes the queue. Invariants: every
 * task ends SUCCESS (0 lost), nothing stays unacknowledged, a restore lock
 * left by a killed worker expires within seconds, and no task runs again
 * after its SUCCESS was stored (redeliveries of finished tasks are
 * suppressed). Re-executions of unfinished tasks are reported.
 */

import assert from "node:assert/strict";
import { Celery } from "../../mod.ts";
import { RESTORE_LOCK_MS } from "../../src/broker/redis_restore.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "../helpers/redis.ts";
import { report } from "../helpers/report.ts";
import { WITHOUT_REDIS } from "../helpers/services.ts";
import { countRuns } from "./app.ts";
import { alive, chaosSeed, notDone, startWorker, statesOf, waitUntil } from "./helpers.ts";
import { prng } from "./hostile.ts";

Deno.test({
  name: "chaos: SIGKILL loop of a late-ack worker loses nothing and never re-runs a finished task",
  ignore: WITHOUT_REDIS,
}, async () => {
  const seed = chaosSeed("sigkill");
  const rnd = prng(seed);
  const kills = Number(Deno.env.get("CHAOS_KILLS") ?? 10);
  const n = 3000;
  const prefix = uniquePrefix("chaos-kill");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}&visibility_timeout=3`;
  const queue = "kill";
  const runs = await Deno.makeTempFile({ prefix: "celeriac-chaos-runs-" });
  const redis = await rawRedis();
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  // A message held by `kills` killed workers must still run: above that, the poison limit
  // (5 deaths by default) would park it with a FAILURE, which is the hostile suite's business.
  // --prefetch 32: 64 task slots, whatever the default (the drain's pace below).
  const args = ["-b", url, "--backend", url, "-Q", queue, "-c", "2", "--loglevel", "WARNING"]
    .concat(["--max-deliveries", String(kills + 1), "--prefetch", "32"]);
  const outputs: string[] = [];
  let worker: ReturnType<typeof startWorker> | null = null;
  try {
    const work = client.remoteTask("chaos.work");
    const ids: string[] = [];
    for (let i = 0; i < n; i += 500) {
      // 200 ms each: 64 task slots drain ~300 a second, so the kills fall mid-drain.
      const batch = Array.from({ length: 500 }, (_, j) => work.delay(`k${i + j}`, 200));
      for (const r of await Promise.all(batch)) ids.push(r.id);
    }
    let longestLock = 0;
    let midDrain = 0;
    for (let k = 0; k < kills; k++) {
      const before = (await countRuns(runs)).runs;
      worker = startWorker(`worker ${k}`, args, { CHAOS_RUNS: runs });
      // Kill once it works: at once (often during its first restore sweep) or mid-drain. A
      // fast drain can finish before the last kills: then there is nothing left to run.
      await waitUntil(
        "the worker runs tasks",
        async () =>
          (await countRuns(runs)).runs > before || !(await alive(worker!)) ||
          notDone(await statesOf(redis, prefix, ids)).length === 0,
        // Start-up takes a second alone; next to three other test files on 2 CPUs, far longer.
        90_000,
        () => worker!.output.slice(-3000),
      );
      const wait = k % 2 === 0 ? rnd() * 300 : 500 + rnd() * 1500;
      await new Promise((r) => setTimeout(r, wait));
      worker.signal("SIGKILL");
      if (notDone(await statesOf(redis, prefix, ids)).length > 0) midDrain++;
      outputs.push((await worker.stop("SIGKILL"), worker.output));
      longestLock = Math.max(longestLock, await redis.pttl(prefix + "unacked_mutex"));
    }
    assert.ok(
      midDrain >= Math.ceil(kills / 2),
      `only ${midDrain} of ${kills} kills came mid-drain`,
    );
    assert.ok(
      longestLock <= RESTORE_LOCK_MS,
      `a killed worker left the lock for ${longestLock} ms`,
    );
    worker = startWorker("last worker", args, { CHAOS_RUNS: runs });
    const t0 = Date.now();
    await waitUntil(
      "every task has a state",
      async () => {
        return notDone(await statesOf(redis, prefix, ids)).length === 0;
      },
      120_000,
      () => worker!.output.slice(-3000),
    );
    const drain = (Date.now() - t0) / 1000;
    const states = await statesOf(redis, prefix, ids);
    assert.deepEqual(
      ids.filter((id) => states.get(id) !== "SUCCESS").map((id) => `${id}: ${states.get(id)}`),
      [],
      "lost tasks (id: state)",
    );
    await waitUntil(
      "nothing unacknowledged",
      async () => (await redis.hlen(prefix + "unacked")) === 0,
      20_000,
    );
    const { runs: total, ids: ran } = await countRuns(runs);
    const metas = await redis.mget(...ids.map((id) => `${prefix}celery-task-meta-${id}`));
    let afterSuccess = 0;
    ids.forEach((id, i) => {
      const done = Date.parse(/"date_done": "([^"]+)"/.exec(metas[i] ?? "")?.[1] + "Z");
      assert.ok(Number.isFinite(done), `SUCCESS of ${id} has its date_done`);
      const starts = ran.get(id) ?? [];
      afterSuccess += starts.filter((t) => t > done + 50).length;
    });
    outputs.push(worker.output);
    const suppressed = outputs.join("").match(/duplicate suppressed/g)?.length ?? 0;
    report(
      `sigkill: ${kills} kills (${midDrain} mid-drain), ${n} tasks, 0 lost, ${
        total - n
      } re-executions of unfinished ` +
        `tasks, ${suppressed} redeliveries of finished tasks suppressed, ${afterSuccess} runs ` +
        `after SUCCESS was stored; last worker drained the rest in ${drain.toFixed(1)} s; ` +
        `longest lock left by a kill ${longestLock} ms`,
    );
    assert.equal(afterSuccess, 0, "no task ran again after its SUCCESS was stored");
    // When the kills already drained the queue the last worker may still be starting: a task
    // round trip shows it consumes (and handles SIGTERM) before it is asked to stop.
    const echo = client.remoteTask<[string], string>("chaos.echo");
    assert.equal(await (await echo.delay("alive")).get({ timeout: 60_000 }), "alive");
    assert.equal((await worker.stop("SIGTERM")).code, 0);
  } finally {
    await worker?.stop("SIGKILL");
    await client.close();
    redis.disconnect();
    await deleteKeys(prefix);
    await Deno.remove(runs);
  }
});
