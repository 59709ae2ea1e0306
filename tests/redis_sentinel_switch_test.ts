/**
 * A manual failover (`SENTINEL FAILOVER`) leaves the old master up, still
 * accepting writes until the Sentinels demote it seconds later, which then
 * discards them. A process follows the Sentinels' `+switch-master` and
 * moves its connections to the new master at once: the first write after
 * the switch reaches the new master while the old one is still a master
 * (before, the connections stayed until the demoted master answered
 * READONLY, and what was written meanwhile was lost). Private servers
 * (failoverSet).
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { reset } from "@logtape/logtape";
import { openRedisBroker } from "../src/broker/redis.ts";
import { message } from "./broker_conformance.ts";
import { command, failoverSet, failoverUrl, waitUntil } from "./helpers/redis_servers.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { report } from "./helpers/report.ts";

Deno.test({
  name: "redis sentinel: after +switch-master the next write goes to the new master",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, () => switchOver("sentinel-switch", false));

Deno.test({
  name:
    "redis sentinel: +switch-master is followed on the next Sentinel when the one followed dies",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, () => switchOver("sentinel-switch-next", true));

/**
 * SENTINEL FAILOVER with a broker connected; `killFollowed`: the Sentinel
 * it follows (the URL's first) is SIGKILLed first.
 */
async function switchOver(label: string, killFollowed: boolean): Promise<void> {
  const servers = await failoverSet(label);
  const base = servers.base;
  const url = failoverUrl(base);
  const records = await captureLogs("info");
  const broker = await openRedisBroker(url);
  const announcements = new Redis({ port: base + 4, host: "127.0.0.1", lazyConnect: true });
  announcements.on("error", () => {});
  try {
    const queue = `sentinel-switch-${crypto.randomUUID().slice(0, 8)}`;
    await broker.publish(message("before"), { routingKey: queue });
    await waitUntil(
      "the replica to have the first message",
      async () => Number(await command(base + 1, "LLEN", queue)) === 1,
      10_000,
    );
    if (killFollowed) {
      const followed = async (port: number) =>
        String(await command(port, "CLIENT", "LIST")).includes("cmd=subscribe");
      assert.ok(await followed(base + 2), "the URL's first Sentinel is not followed");
      await servers.processes.find((p) => p.port === base + 2)!.kill();
      await waitUntil("the next Sentinel to be followed", () => followed(base + 3), 10_000);
    }
    await announcements.connect();
    const switched = new Promise<number>((resolve) =>
      announcements.on("message", (_c: string, text: string) => {
        if (text.startsWith("m1 ")) resolve(Date.now());
      })
    );
    await announcements.subscribe("+switch-master");
    assert.equal(await command(base + 3, "SENTINEL", "FAILOVER", "m1"), "OK");
    const at = await switched;

    // Publish until a message reaches the new master: each one sent to the old master is lost.
    let sent = 0;
    let onNew = 1;
    while (onNew === 1) {
      await broker.publish(message(`after ${sent++}`), { routingKey: queue });
      onNew = Number(await command(base + 1, "LLEN", queue));
      assert.ok(Date.now() - at < 60_000, "no write reached the new master within 60 s");
    }
    const moved = Date.now() - at;
    const oldRole = String(await command(base, "INFO", "replication"));
    report(`first write on the new master ${moved} ms after +switch-master (${sent} sent)`);
    // Moved at the announcement, not when the old master was demoted and refused a write.
    assert.match(
      oldRole,
      /role:master/,
      "the connections moved only once the old master was demoted",
    );

    // A task sent right after the switch is on the new master.
    await broker.publish(message("right after"), { routingKey: queue });
    assert.equal(Number(await command(base + 1, "LLEN", queue)), onNew + 1);

    // ... and stays there once the old master is demoted and resynced.
    await waitUntil(
      "the old master to be demoted and synced",
      async () => /master_link_status:up/.test(String(await command(base, "INFO", "replication"))),
      60_000,
    );
    assert.equal(Number(await command(base + 1, "LLEN", queue)), onNew + 1);
    const said = records.map(logLine).filter((l) => / is now /.test(l));
    assert.equal(said.length, 1, said.join("\n"));
    assert.match(
      said[0]!,
      new RegExp(
        `Redis master m1 is now 127\\.0\\.0\\.1:${base + 1} \\(was 127\\.0\\.0\\.1:${base}\\)`,
      ),
    );
    assert.match(said[0]!, /discarded.*min-replicas-to-write/);
  } finally {
    await reset();
    announcements.disconnect();
    await broker.close().catch(() => {});
    await servers.stop();
  }
}
