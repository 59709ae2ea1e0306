/**
 * A Redis URL of the wrong kind for the server's topology: a single-server
 * `redis://` URL naming a Redis Cluster node (the node answers `MOVED` for
 * keys of other nodes' slots and refuses `SELECT`), or a `redis+cluster://`
 * URL naming a single server (it refuses the slot discovery). The error
 * says what the server is and which URL to use, and is not retried (only a
 * new URL fixes it), for the client, the result backend and the worker's
 * start. The cluster is the test's own (three masters on private ports,
 * created with `redis-cli --cluster create`): never the shared server.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { openBackend, openBroker } from "../protocol.ts";
import { describeRedisFailure, isClusterNodeReply } from "../src/broker/redis_failures.ts";
import { command, privateServers } from "./helpers/redis_servers.ts";
import { runCli } from "./helpers/procs.ts";
import { REDIS_URL } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const servers = WITHOUT_REDIS ? null : await privateServers("topology", (s) => s.cluster());
const node = `127.0.0.1:${servers?.base ?? 0}`;

/**
 * A name whose key hashes to a slot another node serves than the one the URL names.
 *
 * @param keyOf the key a name is stored under (a queue: the name itself)
 */
async function nameElsewhere(keyOf: (name: string) => string = (q) => q): Promise<string> {
  const base = servers!.base;
  const ranges = await command(base, "CLUSTER", "SLOTS") as [number, number, [string, number]][];
  for (;;) {
    const name = `topo-${crypto.randomUUID().slice(0, 6)}`;
    const slot = Number(await command(base, "CLUSTER", "KEYSLOT", keyOf(name)));
    const owner = ranges.find(([from, to]) => slot >= from && slot <= to)!;
    if (Number(owner[2][1]) !== base) return name;
  }
}

/** A queue whose keys hash to a slot another node serves than the one the URL names. */
function queueElsewhere(): Promise<string> {
  return nameElsewhere();
}

/** The error a redis:// URL naming a Cluster node fails with. */
function clusterNodeError(e: Error & { transient?: boolean }): true {
  assert.equal(e.name, "BrokerConnectionError", e.message);
  assert.match(
    e.message,
    new RegExp(
      `${node} is a Redis Cluster node, which a single-server URL cannot use \\(` +
        `(MOVED \\d+ 127\\.0\\.0\\.1:\\d+|ERR SELECT is not allowed in cluster mode)\\)\\. ` +
        `Use redis\\+cluster://${node} `,
    ),
  );
  assert.equal(e.transient, false, "only a new URL helps: no retry");
  return true;
}

Deno.test({
  name: "redis topology: a redis:// URL naming a Cluster node says so (client, backend)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const url = `redis://${node}/0`;
  const app = new Celery({ broker: url, backend: url });
  try {
    // Before: RedisReplyError "MOVED 13128 127.0.0.1:…", and nothing about the URL.
    await assert.rejects(
      app.sendTask("topo.task", [], { queue: await queueElsewhere() }),
      clusterNodeError,
    );
  } finally {
    await app.close();
  }
  // A database other than 0: before, "ERR SELECT is not allowed in cluster mode", retried.
  await assert.rejects(openBroker(`redis://${node}/1`), clusterNodeError);
  await assert.rejects(openBackend(`redis://${node}/1`), clusterNodeError);
});

Deno.test({
  name: "redis topology: transactions (a chord's, a purge) on a Cluster node's redis:// URL say so",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openBroker(`redis://${node}/0`);
  try {
    // Before: RedisReplyError "EXECABORT Transaction discarded because of previous errors."
    await assert.rejects(broker.purge(await queueElsewhere()), clusterNodeError);
  } finally {
    await broker.close();
  }
  const backend = await openBackend(`redis://${node}/0`);
  try {
    // Inside MULTI the node queues nothing of another slot: EXEC fails with "EXECABORT
    // Transaction discarded because of previous errors.", the MOVED among its previous errors.
    const group = await nameElsewhere((g) => `celery-taskset-meta-${g}.s`);
    // Before: RedisReplyError "EXECABORT Transaction discarded because of previous errors."
    await assert.rejects(backend.setChordSize!(group, 2), clusterNodeError);
    const part = {
      groupId: group,
      groupIndex: 0,
      taskId: "t1",
      state: "SUCCESS",
      resultJson: "1",
    } as const;
    await assert.rejects(backend.chordPartReturn!(part), clusterNodeError);
    await assert.rejects(backend.chordCleanup!(group), clusterNodeError);
  } finally {
    await backend.close();
  }
});

Deno.test("redis topology: a MOVED behind ioredis's EXECABORT is found, its errors looked at once", () => {
  const moved = new Error("MOVED 9041 10.0.0.2:7001");
  const aborted = Object.assign(
    new Error("EXECABORT Transaction discarded because of previous errors."),
    { previousErrors: [] as Error[] },
  );
  // A transaction cut off by its connection lists the same error again: no endless walk.
  aborted.previousErrors.push(aborted, moved);
  const url = "redis://10.0.0.1:7000/0";
  assert.equal(isClusterNodeReply(aborted, url), true);
  assert.equal(isClusterNodeReply(aborted, "redis+cluster://10.0.0.1:7000"), false);
  assert.match(
    describeRedisFailure(aborted, url).reason,
    /^10\.0\.0\.1:7000 is a Redis Cluster node, which a single-server URL cannot use \(MOVED 9041 10\.0\.0\.2:7001\)$/,
  );
});

Deno.test({
  name: "redis topology: a worker given a Cluster node's redis:// URL exits at once, saying so",
  ignore: WITHOUT_REDIS,
}, async () => {
  const url = `redis://${node}/0`;
  const out = await runCli([
    "--app",
    "./tests/apps/worker_app.ts",
    "-Q",
    await queueElsewhere(),
    "--broker",
    url,
    "--backend",
    url,
  ]);
  assert.equal(out.code, 1, out.stderr);
  // Before: "error: MOVED 9041 127.0.0.1:…" alone.
  assert.match(
    out.stderr,
    new RegExp(`error: Cannot connect to ${url}: ${node} is a Redis Cluster node`),
  );
  assert.match(out.stderr, new RegExp(`Use redis\\+cluster://${node} `));
});

Deno.test({
  name: "redis topology: a redis+cluster:// URL naming a single server says so, not retried",
  ignore: WITHOUT_REDIS,
}, async () => {
  // The shared server is only asked for its cluster slots (refused): nothing is written to it.
  const shared = new URL(REDIS_URL);
  const single = `${shared.hostname}:${shared.port || 6379}`;
  const url = `redis+cluster://${single}`;
  const says = (e: Error & { transient?: boolean }) => {
    assert.equal(e.name, "BrokerConnectionError", e.message);
    // Before: "None of startup nodes is available. Check that the server runs …", transient.
    assert.match(
      e.message,
      new RegExp(
        `${single} is a single Redis server, not a Redis Cluster node \\(ERR This instance has ` +
          `cluster support disabled\\)\\. Use redis://${single}/0 for a single server`,
      ),
    );
    assert.equal(e.transient, false, "only a new URL helps: no retry");
    return true;
  };
  await assert.rejects(openBroker(url), says);
  await assert.rejects(openBackend(url), says);
});

Deno.test({ name: "redis topology: stop the servers", ignore: WITHOUT_REDIS }, async () => {
  await servers?.stop();
});
