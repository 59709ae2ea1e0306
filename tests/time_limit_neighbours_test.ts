/**
 * The tasks a Web Worker held behind one that ran past its hard time limit,
 * never started, run once on another Web Worker: received, counted
 * (`inspect stats` total) and announced started once each, as Celery 5.2.6's
 * worker runs its reserved tasks once a process is free. Before, they were
 * put back in their queues and came back as new deliveries: received,
 * counted, announced started (and STARTED stored) a second time.
 */

import assert from "node:assert/strict";
import { app as exitApp } from "./apps/exit_app.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { withAppWorker } from "./helpers/worker.ts";
import { exists, until } from "./helpers/waits.ts";

const APP = new URL("./apps/exit_app.ts", import.meta.url).href;

Deno.test({
  name: "hard time limit: the tasks held behind it run once, received and started once",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("tl-neighbours");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const dir = await Deno.makeTempDir({ prefix: "celeriac-tl-neighbours-" });
  const file = `${dir}/go`;
  const queue = `tln-${crypto.randomUUID().slice(0, 8)}`;
  const config = { broker: url, backend: url };
  try {
    await withAppWorker(exitApp, APP, config, { prefetch: 4 }, async (client, worker) => {
      const blocker = await client.sendTask("x.until", [file, false], { timeLimit: 1 });
      await until("the blocking task to start", () => exists(`${file}.started`));
      const early = await client.sendTask<{ tag: number }>("x.wid", [1]);
      const late = await client.sendTask<{ tag: number }>("x.wid_late", [2]);
      await until("the two tasks handed to its Web Worker", () => worker.stats.received >= 3);
      await assert.rejects(blocker.get({ timeout: 15_000 }), /TimeLimitExceeded/);
      assert.equal((await early.get({ timeout: 15_000 })).tag, 1);
      assert.equal((await late.get({ timeout: 15_000 })).tag, 2);
      const inspect = client.control.inspect({ timeout: 3, destination: [worker.hostname] });
      const stats = (await inspect.stats())[worker.hostname];
      // Before: received 5, total 2 for x.wid and x.wid_late (each put back, taken, started again).
      assert.equal(worker.stats.received, 3);
      assert.deepEqual(stats.total, { "x.until": 1, "x.wid": 1, "x.wid_late": 1 });
      assert.equal(await client.queueDepth(queue), 0);
    }, queue);
  } finally {
    // Ends the thread Deno left running.
    await Deno.writeTextFile(file, "");
    await deleteKeys(prefix);
    await Deno.remove(dir, { recursive: true });
  }
});
