/**
 * A master with `min-replicas-to-write 1` (Redis' guard against writes lost
 * in a failover) answers NOREPLICAS while its replica lags: a publish and a
 * result store through Sentinel wait (sent again for `?failover_wait=`)
 * and complete once the replica is back, instead of failing at once, and
 * the SUCCESS is stored as it is (not replaced by a FAILURE). Private
 * servers (failoverSet); the replica is paused with SIGSTOP.
 */

import assert from "node:assert/strict";
import { openRedisBackend } from "../src/backend/redis.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { isConnectionFailure, refusedForReplicas } from "../src/broker/redis_failures.ts";
import { respFailure } from "../src/broker/resp_scripts.ts";
import { RedisReplyError } from "../src/broker/resp_reader.ts";
import { storeResults } from "../src/worker/store_results.ts";
import { message } from "./broker_conformance.ts";
import { command, failoverSet, failoverUrl, waitUntil } from "./helpers/redis_servers.ts";
import { success } from "./helpers/rpc_entries.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test("noreplicas: NOREPLICAS and MASTERDOWN are outages, not command errors", () => {
  const refused = new Error("NOREPLICAS Not enough good replicas to write.");
  assert.ok(isConnectionFailure(refused));
  assert.ok(isConnectionFailure(new Error("MASTERDOWN Link with MASTER is down")));
  assert.ok(
    refusedForReplicas(
      new Error("NOREPLICAS Not enough good replicas to write. script: 67ed, on @user_script:1."),
    ),
  );
  const aborted = Object.assign(
    new Error("EXECABORT Transaction discarded because of previous errors."),
    {
      previousErrors: [refused],
    },
  );
  assert.ok(isConnectionFailure(aborted));
  assert.ok(!isConnectionFailure(new Error("WRONGTYPE Operation against a key")));
  const own = respFailure(
    new RedisReplyError("NOREPLICAS Not enough good replicas to write."),
    "redis://127.0.0.1:1/0",
  );
  assert.ok(own instanceof BrokerConnectionError && own.transient, String(own));
  assert.match(own.message, /min-replicas-to-write/);
});

Deno.test({
  name: "noreplicas: a publish and a store while the replica is paused complete once it is back",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const servers = await failoverSet("noreplicas");
  const base = servers.base;
  const url = failoverUrl(base);
  const broker = await openRedisBroker(url);
  const backend = await openRedisBackend(url);
  const replica = servers.processes[1]!.child.pid;
  let paused = false;
  try {
    const queue = `noreplicas-${crypto.randomUUID().slice(0, 8)}`;
    const taskId = crypto.randomUUID();
    await broker.publish(message("before"), { routingKey: queue });
    await command(base, "CONFIG", "SET", "min-replicas-to-write", "1");
    await command(base, "CONFIG", "SET", "min-replicas-max-lag", "2");
    Deno.kill(replica, "SIGSTOP");
    paused = true;
    await waitUntil(
      "the master to refuse writes",
      () =>
        command(base, "SET", `${queue}-probe`, "1").then(
          () => false,
          (e) => /NOREPLICAS/.test(String(e)),
        ),
      20_000,
    );
    let resumedAt = 0;
    const published = broker.publish(message("during"), { routingKey: queue }).then(() =>
      Date.now()
    );
    const stored = storeResults(backend, [success(taskId, 42, "")]).then(() => Date.now());
    await new Promise((r) => setTimeout(r, 1500));
    resumedAt = Date.now();
    Deno.kill(replica, "SIGCONT");
    paused = false;
    const [publishedAt, storedAt] = await Promise.all([published, stored]);
    assert.ok(publishedAt >= resumedAt, "the publish completed while the master refused writes");
    assert.ok(storedAt >= resumedAt, "the store completed while the master refused writes");
    assert.equal(Number(await command(base, "LLEN", queue)), 2);
    const meta = await backend.get(taskId);
    assert.equal(meta?.status, "SUCCESS");
    assert.equal(meta?.result, 42);
  } finally {
    if (paused) Deno.kill(replica, "SIGCONT");
    await Promise.allSettled([broker.close(), backend.close()]);
    await servers.stop();
  }
});
