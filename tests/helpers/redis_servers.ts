/**
 * Private Redis processes for tests that kill or fail over servers:
 * `redis-server` (also as a Sentinel, or a cluster node) on ports of the
 * test's own, with no persistence, in a temporary directory. Never the
 * shared server.
 */

import { Redis } from "ioredis";

/** A running private redis-server. */
export interface RedisProcess {
  /** Its port on 127.0.0.1. */
  port: number;
  /** The child process. */
  child: Deno.ChildProcess;
  /** SIGKILL it (no-op when already gone). */
  kill(): Promise<void>;
}

/**
 * A port range unlikely to collide with other test files (base + 0..99),
 * below the ephemeral ports, with room for Redis Cluster's bus ports
 * (port + 10000): a random block whose first ten ports and their bus ports
 * are free now (test files run in parallel, each may hold a block).
 */
export function privatePorts(): number {
  for (let attempt = 0;; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 90) * 100;
    if (attempt >= 50 || Array.from({ length: 10 }, (_, i) => base + i).every(free)) return base;
  }
}

function free(port: number): boolean {
  return [port, port + 10_000].every((p) => {
    try {
      Deno.listen({ hostname: "127.0.0.1", port: p }).close();
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Start `redis-server` with extra arguments; resolves once it answers PING.
 *
 * @param port its port
 * @param dir a directory for its files
 * @param args extra arguments (`--replicaof`, `--cluster-enabled yes`, ...)
 */
export async function startRedis(
  port: number,
  dir: string,
  args: string[] = [],
): Promise<RedisProcess> {
  await Deno.mkdir(`${dir}/${port}`, { recursive: true });
  const child = new Deno.Command("redis-server", {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      `${dir}/${port}`,
      ...args,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitForPing(port);
  return processOf(port, child);
}

/**
 * Start a Sentinel monitoring `masterName` at `masterPort` (quorum 2,
 * down after 1 s); resolves once it answers PING.
 *
 * @param port the Sentinel's port
 * @param dir a directory for its config file
 * @param masterName the name to monitor
 * @param masterPort the master's port
 */
export async function startSentinel(
  port: number,
  dir: string,
  masterName: string,
  masterPort: number,
): Promise<RedisProcess> {
  const file = `${dir}/sentinel-${port}.conf`;
  await Deno.writeTextFile(
    file,
    [
      `port ${port}`,
      `bind 127.0.0.1`,
      `dir ${dir}`,
      `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 10000`,
      `sentinel parallel-syncs ${masterName} 1`,
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("redis-server", {
    args: [file, "--sentinel"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitForPing(port);
  return processOf(port, child);
}

function processOf(port: number, child: Deno.ChildProcess): RedisProcess {
  let gone = false;
  const status = child.status.then(() => gone = true);
  return {
    port,
    child,
    kill: async () => {
      if (gone) return;
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await status;
    },
  };
}

/** Wait until a server answers PING (10 s at most). */
export async function waitForPing(port: number): Promise<void> {
  const until = Date.now() + 10_000;
  while (true) {
    const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null });
    r.on("error", () => {});
    try {
      await r.connect();
      await r.ping();
      return;
    } catch (err) {
      if (Date.now() > until) throw new Error(`redis on port ${port} did not start: ${err}`);
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      r.disconnect();
    }
  }
}

/**
 * Run one command on a private server and disconnect.
 *
 * @param port the server
 * @param args the command and its arguments
 */
export async function command(port: number, ...args: (string | number)[]): Promise<unknown> {
  const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null });
  r.on("error", () => {});
  try {
    await r.connect();
    return await r.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    r.disconnect();
  }
}

/**
 * Poll `check` every 100 ms until it is true, failing after `ms`.
 *
 * @param what said in the error
 * @param check the condition
 * @param ms time limit
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  ms: number,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Options of {@link startRedisCluster}. */
export interface ClusterOptions {
  /** Nodes to start on `base`, `base + 1`, ... Default 3. */
  nodes?: number;
  /** Replicas per master (`redis-cli --cluster create --cluster-replicas`). Default 0. */
  replicas?: number;
  /** Extra node arguments (`--cluster-node-timeout 1000`, ...). Default none. */
  args?: string[];
}

/**
 * Start a private Redis Cluster: `nodes` cluster-enabled servers on
 * consecutive ports from `base`, joined with `redis-cli --cluster create`;
 * resolves once every node reports `cluster_state:ok`. On failure the
 * nodes already started are killed before the error is thrown.
 *
 * @param base the first node's port
 * @param dir a directory for the nodes' files
 * @param options node count, replicas per master, extra arguments
 */
export async function startRedisCluster(
  base: number,
  dir: string,
  options: ClusterOptions = {},
): Promise<RedisProcess[]> {
  const { nodes: count = 3, replicas = 0, args = [] } = options;
  const nodes: RedisProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const conf = `${dir}/nodes-${base + i}.conf`;
      nodes.push(
        await startRedis(base + i, dir, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          conf,
          ...args,
        ]),
      );
    }
    const out = await new Deno.Command("redis-cli", {
      args: [
        "--cluster",
        "create",
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`redis-cli --cluster create: ${new TextDecoder().decode(out.stderr)}`);
    }
    for (const n of nodes) {
      await waitUntil(
        `node ${n.port} to see the cluster ok`,
        async () => String(await command(n.port, "CLUSTER", "INFO")).includes("cluster_state:ok"),
        20_000,
      );
    }
    return nodes;
  } catch (err) {
    await Promise.allSettled(nodes.map((n) => n.kill()));
    throw err;
  }
}
