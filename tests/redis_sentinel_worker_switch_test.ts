/**
 * A running worker on a `sentinel://` URL follows the Sentinels'
 * `+switch-master`: after SENTINEL FAILOVER its connections move to the new
 * master at the announcement (before, the worker's process had no
 * subscription at all — a short-lived start-up connection ending took it
 * down for good — and the worker stayed on the old master until it was
 * demoted and answered READONLY, ~10 s later). Private servers (failoverSet).
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { Celery } from "../mod.ts";
import { command, failoverSet, failoverUrl, waitUntil } from "./helpers/redis_servers.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name: "redis sentinel: a running worker follows +switch-master and runs the next task",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const servers = await failoverSet("sentinel-worker-switch");
  const base = servers.base;
  const url = failoverUrl(base);
  const records = await captureLogs("debug");
  const app = new Celery({ broker: url, backend: url });
  app.task("t.add", (a: number, b: number) => a + b);
  const { Worker } = await import("../worker.ts");
  const worker = new Worker({ app, pool: "inline", hostname: "sentinel-worker-switch@%h" });
  try {
    await worker.start();
    assert.equal(await (await app.sendTask<number>("t.add", [1, 1])).get({ timeout: 20_000 }), 2);
    const followers = async () => {
      let n = 0;
      for (let i = 2; i <= 4; i++) {
        n += String(await command(base + i, "CLIENT", "LIST")).split("\n")
          .filter((l) => l.includes("cmd=subscribe")).length;
      }
      return n;
    };
    // Well after start-up: its short-lived connections have ended by now.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await followers(), 1, "the worker's process follows no Sentinel");

    assert.equal(await command(base + 3, "SENTINEL", "FAILOVER", "m1"), "OK");
    const lines = () => records.map(logLine);
    await waitUntil(
      "the worker to say the master moved",
      () => Promise.resolve(lines().some((l) => / is now /.test(l))),
      60_000,
    );
    // Moved by the announcement, not by the READONLY of the demoted master.
    assert.ok(
      lines().some((l) => /the Sentinels switched it to 127\.0\.0\.1:\d+; reconnecting/.test(l)),
      lines().filter((l) => /m1/.test(l)).join("\n"),
    );
    const said = lines().filter((l) => / is now /.test(l));
    assert.match(
      said[0]!,
      new RegExp(
        `Redis master m1 is now 127\\.0\\.0\\.1:${base + 1} \\(was 127\\.0\\.0\\.1:${base}\\)`,
      ),
    );
    assert.equal(await (await app.sendTask<number>("t.add", [2, 3])).get({ timeout: 30_000 }), 5);
  } finally {
    await worker.stop().catch(() => {});
    await app.close();
    await reset();
    await servers.stop();
  }
});
