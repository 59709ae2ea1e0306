/**
 * What a process says about a Redis Cluster's nodes: one warning when a
 * node becomes unreachable (a reminder every 30 s while it stays so; for a
 * master without a replica, that its queues wait until it is back), one
 * line when a connection to it is ready again, and one when the cluster's
 * masters change (a replica took over; said once two slot refreshes in a
 * row agree), shared by
 * every cluster connection of the process to the same cluster. ioredis
 * reports a node's failures only as `node error` events, which Celeriac
 * did not log: a master's death and its replica's promotion went by without
 * a word.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Cluster, Redis } from "ioredis";
import calculateSlot from "cluster-key-slot";
import { CLOSED } from "./redis_failures.ts";
import { clusterState } from "./redis_cluster_state.ts";

const log = getLogger(["celeriac", "redis"]);

/** How often a node that stays unreachable is mentioned again, ms. */
const REMIND_EVERY_MS = 30_000;

/** How long after a slot refresh that shows new masters another is asked for, to confirm them, ms. */
const CONFIRM_AFTER_MS = 1_000;

/**
 * Log a cluster connection's unreachable nodes and master changes once per
 * process and cluster (see the module's description).
 *
 * @example
 * ```ts ignore
 * watchClusterNodes(cluster, "127.0.0.1:7000,127.0.0.1:7001", 60_000);
 * ```
 *
 * @param client an ioredis Cluster
 * @param key the cluster's start nodes, as the URL lists them
 * @param failoverWaitMs how long failed commands are sent again (said in the warning)
 */
export function watchClusterNodes(client: Cluster, key: string, failoverWaitMs: number): void {
  const known = clusterState(key);
  known.lone = (node) => withoutReplica(client, node);
  known.ownerOfKey = (k) => client.slots[keySlot(k)]?.[0];
  client.on("node error", (err: Error, node: string) => {
    // A single server among the start nodes is not down: the failed connect says what it is.
    if (CLOSED.test(err.message) || /cluster support disabled/.test(err.message)) return;
    const now = Date.now();
    const said = known.down.get(node);
    if (said !== undefined && now - said < REMIND_EVERY_MS) {
      log.debug("Redis Cluster node {node}: {error}", { node, error: err.message });
      return;
    }
    known.down.set(node, now);
    const fields = { node, error: err.message, wait: failoverWaitMs / 1000 };
    if (!withoutReplica(client, node)) {
      log.warn(
        "Redis Cluster node {node} is unreachable ({error}); commands to its slots are sent " +
          "again for {wait} s (?failover_wait=) while a replica takes over",
        fields,
      );
      return;
    }
    log.warn(
      "Redis Cluster node {node} is unreachable ({error}) and has no replica to take over: " +
        "the queues in its slots wait until it is back (commands to them fail without waiting " +
        "for a failover), the other queues go on",
      fields,
    );
  });
  // A slot refresh still lists a dead master until a replica takes over: only a ready connection
  // says a node is back. ioredis connects to a node when a command goes there.
  const onNode = (redis: Redis) => {
    const node = `${redis.options.host || "127.0.0.1"}:${redis.options.port || 6379}`;
    redis.on("ready", () => {
      if (!known.down.delete(node)) return;
      log.info("Redis Cluster node {node} is reachable again", { node });
    });
  };
  client.nodes("all").forEach(onNode);
  client.on("+node", onNode);
  let confirming: ReturnType<typeof setTimeout> | undefined;
  client.on("end", () => clearTimeout(confirming));
  client.on("refresh", () => {
    const masters = [...new Set(client.slots.map((owners) => owners?.[0]).filter(Boolean))]
      .sort().join(", ");
    const previous = known.masters;
    const seen = known.seen;
    known.seen = masters;
    if (previous === undefined) known.masters = masters;
    if (previous === undefined || previous === masters) return;
    // Nodes disagree for a while after a master without a replica died: slot refreshes then
    // alternate between two sets, which was a warning each. A new set is said once the next
    // refresh (asked for here: ioredis refreshes only after a redirection or an error) agrees.
    if (seen !== masters) {
      if (confirming !== undefined) return;
      const timer = setTimeout(() => {
        confirming = undefined;
        if (client.status === "ready") client.refreshSlotsCache();
      }, CONFIRM_AFTER_MS);
      Deno.unrefTimer(timer);
      confirming = timer;
      return;
    }
    known.masters = masters;
    log.warn("Redis Cluster masters are now {masters} (were {previous})", { masters, previous });
  });
}

/**
 * The Redis Cluster slot of `key` (CRC16 of its hash tag or of the whole key,
 * modulo 16384), computed by `cluster-key-slot`, the library ioredis routes
 * commands with: the slot is the one the command went to.
 *
 * @example
 * ```ts
 * import { keySlot } from "./redis_cluster_watch.ts";
 * keySlot("foo"); // 12182
 * keySlot("{user1}.a") === keySlot("{user1}.b"); // true
 * ```
 *
 * @param key a key
 * @returns its slot, 0-16383
 */
export function keySlot(key: string): number {
  return calculateSlot(key);
}

/** Whether `node` is a master serving slots of which none has a replica (the last slot refresh's). */
function withoutReplica(client: Cluster, node: string): boolean {
  let serves = false;
  for (const owners of client.slots) {
    if (owners?.[0] !== node) continue;
    if (owners.length > 1) return false;
    serves = true;
  }
  return serves;
}
