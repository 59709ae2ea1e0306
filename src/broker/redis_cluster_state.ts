/**
 * What this process last saw of each Redis Cluster it is connected to (set
 * by `redis_cluster_watch.ts`, which needs ioredis and `cluster-key-slot`),
 * and the question the command guard asks of it ({@link isLoneMasterDown}).
 * Apart so that the guard, which every Redis connection loads, loads
 * neither: `cluster-key-slot` is a CommonJS package, and the first one a
 * process loads brings Deno's CommonJS loader and Node's `process` with it
 * (heap in use after a full collection of a process that imports the CLI and
 * the Redis broker and backend: 7.88 MiB instead of 8.64).
 *
 * @module
 */

/**
 * A cluster as this process last saw it.
 *
 * @example
 * ```ts
 * import type { ClusterState } from "./redis_cluster_state.ts";
 * const state: ClusterState = { down: new Map() };
 * ```
 */
export interface ClusterState {
  /** Its masters (`host:port`, sorted), as last said (or first seen). */
  masters?: string;
  /** The masters of the last slot refresh (a new set is said once two refreshes in a row agree). */
  seen?: string;
  /** When each node now unreachable was last said so (`Date.now()`), until a connection to it is ready. */
  readonly down: Map<string, number>;
  /** Whether a node serves slots without a replica (the last slot refresh of a connection). */
  lone?: (node: string) => boolean;
  /** The master serving a key's slot (the last slot refresh of a connection); undefined: not known. */
  ownerOfKey?: (key: string) => string | undefined;
}

/** Clusters by their start nodes, shared by the connections of this process. */
const clusters = new Map<string, ClusterState>();

/**
 * The state of the cluster whose start nodes are `key`, made empty the first
 * time.
 *
 * @example
 * ```ts
 * import { clusterState } from "./redis_cluster_state.ts";
 * clusterState("127.0.0.1:7000,127.0.0.1:7001").down.size; // 0
 * ```
 *
 * @param key the cluster's start nodes, as the URL lists them
 * @returns its state, shared by every connection of this process to it
 */
export function clusterState(key: string): ClusterState {
  let state = clusters.get(key);
  if (!state) {
    state = { down: new Map() };
    clusters.set(key, state);
  }
  return state;
}

/**
 * Whether the master of a command's slot is known unreachable (a
 * connection to it failed and none was ready since) and serves slots
 * without a replica: commands to its slots cannot succeed until it is back,
 * so sending them again for the failover wait only delays their failure.
 * That master is `node` when the error named it; otherwise the master the
 * last slot refresh gives for the slot of one of `keys`. With neither (or
 * a slot whose master is not known) it is false: the command is sent again.
 *
 * @example
 * ```ts
 * import { isLoneMasterDown } from "./redis_cluster_state.ts";
 * isLoneMasterDown("127.0.0.1:7000,127.0.0.1:7001", { node: "127.0.0.1:7002" }); // false: not watched
 * ```
 *
 * @param key the cluster's start nodes, as the cluster's watch was given them
 * @param where `node` (`host:port`) named by the error, or the command's `keys`
 * @returns true when that master is down with no replica to take over
 */
export function isLoneMasterDown(
  key: string,
  where: { node?: string; keys?: readonly string[] },
): boolean {
  const state = clusters.get(key);
  if (!state?.lone) return false;
  const lone = state.lone;
  const down = (node: string | undefined) =>
    node !== undefined && state.down.has(node) && lone(node);
  if (where.node !== undefined) return down(where.node);
  return (where.keys ?? []).some((k) => down(state.ownerOfKey?.(k)));
}
