/**
 * A `?master_name=` the Sentinels do not monitor: a setting to change, said at
 * once, not a Sentinel outage retried for rounds (and, in a worker, for ever).
 */

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { reset } from "@logtape/logtape";
import type { Redis } from "ioredis";
import { openBroker } from "../protocol.ts";
import { watchSentinelMaster } from "../src/broker/redis_sentinel_watch.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { command, privateServers } from "./helpers/redis_servers.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/** How many connections the Sentinel on `port` has accepted (ioredis opens one per question). */
async function sentinelCalls(port: number): Promise<number> {
  const stats = String(await command(port, "INFO", "stats"));
  return Number(/total_connections_received:(\d+)/.exec(stats)?.[1]);
}

Deno.test({
  name:
    "sentinel master name: a name no Sentinel monitors fails the connect in one round, as a setting",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const servers = await privateServers("master-name", async (s) => {
    await s.redis(0);
    await s.sentinel(1, "m1", 0);
    await s.sentinel(2, "m1", 0);
  });
  const records = await captureLogs("info");
  try {
    const url =
      `sentinel://127.0.0.1:${servers.base + 1};sentinel://127.0.0.1:${servers.base + 2}` +
      "?master_name=nope";
    const before = await sentinelCalls(servers.base + 1);
    await assert.rejects(openBroker(url), (e: Error & { code?: string; transient?: boolean }) => {
      assert.equal(e.name, "BrokerConnectionError");
      assert.match(e.message, /the Sentinels monitor no master named "nope"/);
      assert.match(e.message, /Set \?master_name= to the name in the Sentinels' "sentinel monitor/);
      // Before: transient "no Sentinel answered", so a worker retried it for ever.
      assert.equal(e.transient, false, "a setting to change, not an outage");
      return true;
    });
    // Before: asked 4 rounds (about 1.5 s); Celery says "No master found for 'nope'" at once.
    // (the helper's INFO is one connection too)
    assert.equal(await sentinelCalls(servers.base + 1) - before, 2, "one round");
    const warned = records.map(logLine).filter((l) => l.startsWith("warning"));
    assert.deepEqual(warned, [], 'no outage warning (it said "at ?" and 60 s of resends)');
  } finally {
    await reset();
    await servers.stop();
  }
});

Deno.test({
  name: "sentinel master name: one Sentinel unaware of the name and the others down is an outage",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const servers = await privateServers("master-name-outage", async (s) => {
    await s.redis(0);
    await s.sentinel(1, "m1", 0);
  });
  try {
    // The Sentinel on base+1 monitors "m1", not "m2" (restarted without its config); base+2 is down.
    const url =
      `sentinel://127.0.0.1:${servers.base + 1};sentinel://127.0.0.1:${servers.base + 2}` +
      "?master_name=m2";
    await assert.rejects(openBroker(url), (e: Error & { code?: string; transient?: boolean }) => {
      assert.equal(e.name, "BrokerConnectionError");
      // Before: "the Sentinels monitor no master named" and transient false (a worker stopped retrying).
      assert.doesNotMatch(e.message, /monitor no master named/);
      assert.match(e.message, /no Sentinel answered/);
      assert.equal(e.transient, true, "an outage, retried");
      return true;
    });
  } finally {
    await servers.stop();
  }
});

Deno.test('sentinel master name: a master the Sentinels stop monitoring is named, never "at ?"', async () => {
  const records = await captureLogs("info");
  try {
    const c = new EventEmitter() as EventEmitter & { stream?: unknown };
    watchSentinelMaster(
      c as unknown as Redis,
      { name: "gone", sentinels: [{ host: "127.0.0.1", port: 26398 }] },
      60_000,
    );
    c.stream = { remoteAddress: "127.0.0.1", remotePort: 6390 };
    c.emit("ready");
    c.emit("close");
    c.emit(
      "sentinelError",
      new Error(
        "failed to connect to sentinel 127.0.0.1:26398 because ERR No such master with that name",
      ),
    );
    c.emit("error", new Error("All sentinels are unreachable. Retrying from scratch after 200ms."));
    const lines = records.map(logLine).filter((l) => l.startsWith("warning"));
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(
      lines[0],
      /Redis master gone at 127\.0\.0\.1:6390 is unreachable \(the Sentinels monitor no master named "gone" .*set \?master_name=/,
    );
    assert.doesNotMatch(lines[0], /at \?/);
  } finally {
    await reset();
  }
});
