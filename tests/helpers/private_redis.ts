/**
 * A redis-server of the test's own, on a port block reserved for it (see
 * ports.ts) with a data directory of its own, that the test may stop and
 * start again on the same port (the shared server on 6379 is never
 * touched). AOF is on, so data survives a restart.
 */

import { Redis } from "ioredis";
import { type PortBlock, reservePorts } from "./ports.ts";
import { PortInUseError, type RedisProcess, startRedis } from "./redis_servers.ts";

/** A private Redis server. */
export class PrivateRedis {
  readonly port: number;
  readonly dir: string;
  readonly #block: PortBlock;
  readonly #args: string[];
  #server: RedisProcess | null = null;

  private constructor(block: PortBlock, dir: string, args: string[]) {
    this.#block = block;
    this.#args = args;
    this.port = block.base;
    this.dir = dir;
  }

  /**
   * Start a server on a port block of its own (another block if its port was
   * taken), with extra `redis-server` arguments (default none).
   */
  static async start(args: string[] = []): Promise<PrivateRedis> {
    for (let attempt = 1;; attempt++) {
      const block = reservePorts();
      const dir = await Deno.makeTempDir({ prefix: "celeriac-redis-" }).catch((err) => {
        block.release();
        throw err;
      });
      const r = new PrivateRedis(block, dir, args);
      try {
        await r.up();
        return r;
      } catch (err) {
        await r.close();
        if (!(err instanceof PortInUseError) || attempt >= 5) throw err;
      }
    }
  }

  /** The URL of database 0. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  /** Start the server (again), and wait until it answers. */
  async up(): Promise<void> {
    this.#server = await startRedis(this.port, this.dir, [
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      ...this.#args,
    ]);
  }

  /**
   * Hold every write from now until the server is killed (`CLIENT PAUSE
   * WRITE`; reads still run), so that a {@link PrivateRedis.down} that
   * follows cuts no write in half: each write either ran and was answered
   * before the pause, or never runs. Without it, a SIGKILL can land after
   * a write ran (and reached the AOF) but before its reply was sent: the
   * write survives the restart, yet its client saw it fail. Resolves once
   * every write that ran before the pause has been answered (a PING sent
   * after the pause's reply is answered in a later turn of the server's
   * event loop, after the replies of the turn that ran them were written).
   */
  async pauseWrites(): Promise<void> {
    const r = new Redis({
      port: this.port,
      host: "127.0.0.1",
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    r.on("error", () => {});
    try {
      await r.connect();
      // Longer than any test waits before the kill; the kill ends it.
      await r.call("CLIENT", "PAUSE", "600000", "WRITE");
      await r.ping();
    } finally {
      r.disconnect();
    }
  }

  /** Kill the server at once (SIGKILL): connections drop, the AOF keeps the data. */
  async down(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    await server.kill();
  }

  /** Stop the server, free its port block and remove its data. */
  async close(): Promise<void> {
    await this.down();
    this.#block.release();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
