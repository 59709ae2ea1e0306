/**
 * Private Redis processes for tests that kill or fail over servers:
 * `redis-server` (also as a Sentinel, or a cluster node) on a port block of
 * the test's own (reserved across processes, see ports.ts), with no
 * persistence, in a temporary directory. Never the shared server.
 *
 * A server that cannot bind its port (something else took it) fails with a
 * {@link PortInUseError}; {@link privateServers} then starts the whole set
 * again on another block. A server is only taken as started once the
 * process answering on its port is the one started (`INFO server`'s
 * `process_id`), never a leftover server on the same port.
 */

import { Redis } from "ioredis";
import { type PortBlock, reservePorts } from "./ports.ts";

export { type PortBlock, reservePorts } from "./ports.ts";

/** A running private redis-server. */
export interface RedisProcess {
  /** Its port on 127.0.0.1. */
  port: number;
  /** The child process. */
  child: Deno.ChildProcess;
  /** SIGKILL it (no-op when already gone). */
  kill(): Promise<void>;
}

/** A private server could not bind its port: another process holds it. */
export class PortInUseError extends Error {
  override name = "PortInUseError";
  readonly code = "PORT_IN_USE";
  /** The port it was to listen on. */
  readonly port: number;
  constructor(port: number, log: string) {
    super(`redis-server on port ${port} could not bind (address in use): ${log}`);
    this.port = port;
  }
}

/**
 * Start `redis-server` with extra arguments; resolves once it answers
 * `INFO server` as itself. Rejects with {@link PortInUseError} when it
 * cannot bind its port (or its cluster bus port).
 *
 * @param port its port
 * @param dir a directory for its files (`<dir>/<port>/`, its log `redis.log` there)
 * @param args extra arguments (`--replicaof`, `--cluster-enabled yes`,
 *   `--requirepass` (then asked with that password), ...)
 */
export async function startRedis(
  port: number,
  dir: string,
  args: string[] = [],
): Promise<RedisProcess> {
  await Deno.mkdir(`${dir}/${port}`, { recursive: true });
  const log = `${dir}/${port}/redis.log`;
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
      "--logfile",
      log,
      ...args,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const pass = args.indexOf("--requirepass");
  return await started(port, child, log, pass < 0 ? undefined : args[pass + 1]);
}

/**
 * Start a Sentinel monitoring `masterName` at `masterPort` (quorum 2,
 * down after 1 s); resolves once it answers `INFO server` as itself.
 * Rejects with {@link PortInUseError} when it cannot bind its port.
 *
 * @param port the Sentinel's port
 * @param dir a directory for its config file and log
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
  const log = `${dir}/sentinel-${port}.log`;
  await Deno.writeTextFile(
    file,
    [
      `port ${port}`,
      `bind 127.0.0.1`,
      `dir ${dir}`,
      `logfile ${log}`,
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
  return await started(port, child, log);
}

/**
 * Wait (10 s at most) until the server on `port` is `child`; kill it and
 * reject if it exits first (with {@link PortInUseError} if its log says the
 * address was in use) or does not answer in time.
 */
async function started(
  port: number,
  child: Deno.ChildProcess,
  log: string,
  password?: string,
): Promise<RedisProcess> {
  const proc = processOf(port, child);
  let exited = false;
  child.status.then(() => exited = true);
  const until = Date.now() + 10_000;
  for (;;) {
    if (exited) {
      const text = (await Deno.readTextFile(log).catch(() => "")).trim().split("\n").slice(-3)
        .join(" | ");
      if (/Address already in use/i.test(text)) throw new PortInUseError(port, text);
      throw new Error(`redis-server on port ${port} exited before it answered: ${text}`);
    }
    if ((await serverInfo(port, password)).includes(`process_id:${child.pid}\r`)) return proc;
    if (Date.now() > until) {
      await proc.kill();
      throw new Error(`redis-server on port ${port} did not answer within 10 s (log: ${log})`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
}

/**
 * `INFO server` of whatever answers on `port`, or "" when nothing answers
 * within a second (a listener that is not Redis may accept and never reply);
 * `password` for a server started with `--requirepass`.
 */
async function serverInfo(port: number, password?: string): Promise<string> {
  const r = new Redis({
    port,
    password,
    host: "127.0.0.1",
    lazyConnect: true,
    retryStrategy: () => null,
    connectTimeout: 1000,
    commandTimeout: 1000,
    maxRetriesPerRequest: 0,
  });
  r.on("error", () => {});
  try {
    await r.connect();
    return String(await r.info("server"));
  } catch {
    return "";
  } finally {
    r.disconnect();
  }
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
  /**
   * Time limit of `redis-cli --cluster create`, in ms (it waits for the
   * nodes to agree with no limit of its own). Default 60 000.
   */
  createTimeoutMs?: number;
}

/**
 * Start a private Redis Cluster: `nodes` cluster-enabled servers on
 * consecutive ports from `base`, joined with `redis-cli --cluster create`;
 * resolves once every node reports `cluster_state:ok`. On failure
 * (`redis-cli` not done within `createTimeoutMs`, too) the nodes already
 * started are killed before the error is thrown.
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
  const { nodes: count = 3, replicas = 0, args = [], createTimeoutMs = 60_000 } = options;
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
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(createTimeoutMs),
    }).output();
    if (out.signal === "SIGTERM") {
      const said = new TextDecoder().decode(out.stdout).trim().slice(-300);
      throw new Error(
        `redis-cli --cluster create did not finish within ${createTimeoutMs} ms ` +
          `(the nodes never agreed): ${said}`,
      );
    }
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

/**
 * Private servers on a port block of their own, in a temporary directory of
 * their own; made by {@link privateServers}, which starts them again on
 * another block when a port was taken.
 */
export class PrivateServers {
  /** The block's first port: servers run on `base + offset`. */
  readonly base: number;
  /** Their temporary directory. */
  readonly dir: string;
  /** Every server started, in start order (cluster nodes in node order). */
  readonly processes: RedisProcess[] = [];
  readonly #block: PortBlock;

  constructor(block: PortBlock, dir: string) {
    this.#block = block;
    this.base = block.base;
    this.dir = dir;
  }

  /**
   * Start a redis-server on `base + offset` (see {@link startRedis}).
   *
   * @example
   * ```ts
   * const servers = await privateServers("acl", (s) => s.redis());
   * ```
   */
  async redis(offset = 0, args: string[] = []): Promise<RedisProcess> {
    const p = await startRedis(this.base + offset, this.dir, args);
    this.processes.push(p);
    return p;
  }

  /**
   * Start a Sentinel on `base + offset` monitoring `masterName` on
   * `base + masterOffset` (see {@link startSentinel}).
   *
   * @example
   * ```ts
   * await privateServers("beat", async (s) => {
   *   await s.redis(0);
   *   await s.sentinel(1, "m1", 0);
   * });
   * ```
   */
  async sentinel(offset: number, masterName: string, masterOffset: number): Promise<RedisProcess> {
    const p = await startSentinel(
      this.base + offset,
      this.dir,
      masterName,
      this.base + masterOffset,
    );
    this.processes.push(p);
    return p;
  }

  /**
   * Start a Redis Cluster on `base`, `base + 1`, ... (see {@link startRedisCluster}).
   *
   * @example
   * ```ts
   * const cluster = await privateServers("cluster", (s) => s.cluster());
   * ```
   */
  async cluster(options: ClusterOptions = {}): Promise<RedisProcess[]> {
    const nodes = await startRedisCluster(this.base, this.dir, options);
    this.processes.push(...nodes);
    return nodes;
  }

  /**
   * Kill every server, free the port block and remove the directory.
   *
   * @example
   * ```ts
   * await servers.stop();
   * ```
   */
  async stop(): Promise<void> {
    await Promise.allSettled(this.processes.map((p) => p.kill()));
    this.#block.release();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Reserve a port block, make a temporary directory and run `setup` to start
 * servers on them; when a server finds its port taken
 * ({@link PortInUseError}), stop what was started and do it all again on
 * another block (5 attempts). On any other error everything is stopped and
 * the error rethrown.
 *
 * @param label part of the directory's name
 * @param setup starts the servers (`s.redis()`, `s.sentinel()`, `s.cluster()`, waits)
 * @example
 * ```ts
 * const servers = await privateServers("acl", (s) => s.redis());
 * try {
 *   await command(servers.base, "PING");
 * } finally {
 *   await servers.stop();
 * }
 * ```
 */
export async function privateServers(
  label: string,
  setup: (servers: PrivateServers) => Promise<unknown>,
): Promise<PrivateServers> {
  for (let attempt = 1;; attempt++) {
    const block = reservePorts();
    const dir = await Deno.makeTempDir({ prefix: `celeriac-${label}-` }).catch((err) => {
      block.release();
      throw err;
    });
    const servers = new PrivateServers(block, dir);
    try {
      await setup(servers);
      return servers;
    } catch (err) {
      await servers.stop();
      if (!(err instanceof PortInUseError) || attempt >= 5) throw err;
    }
  }
}

/**
 * The `sentinel://` URL of a {@link failoverSet}'s three Sentinels for its
 * master `m1`, database 0, with `query` (more `&`-joined options) after it.
 *
 * @example
 * ```ts ignore
 * const url = failoverUrl(servers.base, "visibility_timeout=5");
 * ```
 *
 * @param base the set's base port
 * @param query more URL options, if any
 */
export function failoverUrl(base: number, query = ""): string {
  const sentinels = [2, 3, 4].map((i) => `sentinel://127.0.0.1:${base + i}`).join(";");
  return `${sentinels}/0?master_name=m1${query ? `&${query}` : ""}`;
}

/**
 * A master on `base`, its replica on `base + 1` and three Sentinels on
 * `base + 2..4` watching it as `m1` (down after 1 s), private: the replica
 * synced and the Sentinels aware of each other before it resolves.
 *
 * @example
 * ```ts ignore
 * const servers = await failoverSet("sentinel");
 * await servers.stop();
 * ```
 */
export function failoverSet(label: string): Promise<PrivateServers> {
  return privateServers(label, async (s) => {
    await s.redis(0);
    await s.redis(1, ["--replicaof", "127.0.0.1", String(s.base)]);
    await waitUntil(
      "the replica to sync",
      async () =>
        String(await command(s.base + 1, "INFO", "replication")).includes(
          "master_link_status:up",
        ),
      10_000,
    );
    for (let i = 2; i <= 4; i++) await s.sentinel(i, "m1", 0);
    await waitUntil("the Sentinels to see each other", async () => {
      const info = await command(s.base + 2, "SENTINEL", "MASTER", "m1") as string[];
      return Number(info[info.indexOf("num-other-sentinels") + 1]) === 2;
    }, 15_000);
  });
}
