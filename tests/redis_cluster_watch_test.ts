/**
 * What a process says about a Redis Cluster's nodes, driven by a fake
 * cluster client (the events ioredis emits): a node that is unreachable is
 * warned about once, said reachable again once a connection to it is ready,
 * and a new failure after that is a new warning.
 */

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { reset } from "@logtape/logtape";
import type { Cluster } from "ioredis";
import { watchClusterNodes } from "../src/broker/redis_cluster_watch.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { waitUntil } from "./helpers/redis_servers.ts";

class FakeCluster extends EventEmitter {
  slots: string[][] = [];
  status = "ready";
  refreshes = 0;
  refreshSlotsCache(): void {
    this.refreshes++;
    this.emit("refresh");
  }
  nodes(): never[] {
    return [];
  }
}

const nodeConnection = (host: string, port: number) =>
  Object.assign(new EventEmitter(), { options: { host, port } });

Deno.test("cluster watch: a node is said reachable again when a connection to it is ready, and a new failure warns again", async () => {
  const records = await captureLogs("info", ["celeriac", "redis"]);
  try {
    const cluster = new FakeCluster();
    watchClusterNodes(
      cluster as unknown as Cluster,
      `watch-${crypto.randomUUID()}:7000`,
      60_000,
    );
    const refused = new Error("connect ECONNREFUSED 10.0.0.1:7000");
    cluster.emit("node error", refused, "10.0.0.1:7000");
    cluster.emit("node error", refused, "10.0.0.1:7000");
    const other = nodeConnection("10.0.0.2", 7001);
    const back = nodeConnection("10.0.0.1", 7000);
    cluster.emit("+node", other);
    cluster.emit("+node", back);
    other.emit("ready");
    back.emit("ready");
    back.emit("ready");
    // Before: the node stayed "down", so this failure within 30 s was only at debug.
    cluster.emit("node error", refused, "10.0.0.1:7000");
    const lines = records.map(logLine);
    assert.equal(lines.length, 3, JSON.stringify(lines));
    assert.match(lines[0], /^warning Redis Cluster node 10\.0\.0\.1:7000 is unreachable \(connect/);
    assert.equal(lines[1], "info Redis Cluster node 10.0.0.1:7000 is reachable again");
    assert.match(lines[2], /^warning Redis Cluster node 10\.0\.0\.1:7000 is unreachable \(connect/);
  } finally {
    await reset();
  }
});

Deno.test("cluster watch: a master without a replica is not said to be replaced by one", async () => {
  const records = await captureLogs("info", ["celeriac", "redis"]);
  try {
    const cluster = new FakeCluster();
    // Slots 0-1 on 10.0.0.1:7000 alone, 2-3 on 10.0.0.2:7001 with a replica.
    cluster.slots = [["10.0.0.1:7000"], ["10.0.0.1:7000"], ["10.0.0.2:7001", "10.0.0.3:7002"], [
      "10.0.0.2:7001",
      "10.0.0.3:7002",
    ]];
    watchClusterNodes(cluster as unknown as Cluster, `watch-${crypto.randomUUID()}:7000`, 60_000);
    cluster.emit("node error", new Error("connect ECONNREFUSED 10.0.0.1:7000"), "10.0.0.1:7000");
    cluster.emit("node error", new Error("connect ECONNREFUSED 10.0.0.2:7001"), "10.0.0.2:7001");
    const lines = records.map(logLine);
    assert.equal(lines.length, 2, JSON.stringify(lines));
    // Before: "... while a replica takes over" for both.
    assert.match(
      lines[0],
      /10\.0\.0\.1:7000 is unreachable .* has no replica to take over: the queues in its slots wait until it is back/,
    );
    assert.doesNotMatch(lines[0], /while a replica takes over/);
    assert.match(lines[1], /10\.0\.0\.2:7001 is unreachable .* while a replica takes over/);
  } finally {
    await reset();
  }
});

Deno.test("cluster watch: a new set of masters is said once two slot refreshes in a row agree", async () => {
  const records = await captureLogs("info", ["celeriac", "redis"]);
  try {
    const cluster = new FakeCluster();
    const all = [["10.0.0.1:7000"], ["10.0.0.2:7001"], ["10.0.0.3:7002"]];
    const two = [["10.0.0.1:7000"], ["10.0.0.2:7001"], ["10.0.0.2:7001"]];
    cluster.slots = all;
    watchClusterNodes(cluster as unknown as Cluster, `watch-${crypto.randomUUID()}:7000`, 60_000);
    cluster.emit("refresh");
    // Nodes that disagree after a master without a replica died: the refreshes alternate.
    for (let i = 0; i < 5; i++) {
      cluster.slots = two;
      cluster.emit("refresh");
      cluster.slots = all;
      cluster.emit("refresh");
    }
    // Before: 10 warnings, "now A, B (were A, B, C)" and back.
    assert.deepEqual(records.map(logLine), []);
    // A single refresh with the new set (ioredis refreshes after a redirection only): the watch
    // asks for another, which agrees.
    cluster.slots = two;
    cluster.emit("refresh");
    await waitUntil(
      "the new masters to be said",
      () => Promise.resolve(records.length > 0),
      10_000,
    );
    cluster.emit("refresh");
    cluster.emit("end");
    assert.deepEqual(records.map(logLine), [
      "warning Redis Cluster masters are now 10.0.0.1:7000, 10.0.0.2:7001 " +
      "(were 10.0.0.1:7000, 10.0.0.2:7001, 10.0.0.3:7002)",
    ]);
    assert.equal(cluster.refreshes, 1);
  } finally {
    await reset();
  }
});
