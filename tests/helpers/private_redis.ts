/**
 * A redis-server of the test's own, on a free port with a data directory of
 * its own, that the test may stop and start again (the shared server on
 * 6379 is never touched). AOF is on, so data survives a restart.
 */

/** A private Redis server. */
export class PrivateRedis {
  readonly port: number;
  readonly dir: string;
  #child: Deno.ChildProcess | null = null;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  /** Start a server on a free port. */
  static async start(): Promise<PrivateRedis> {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    probe.close();
    const r = new PrivateRedis(port, await Deno.makeTempDir({ prefix: "celeriac-redis-" }));
    await r.up();
    return r;
  }

  /** The URL of database 0. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  /** Start the server (again), and wait until it accepts connections. */
  async up(): Promise<void> {
    this.#child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
      ],
      stdout: "null",
      stderr: "null",
      stdin: "null",
    }).spawn();
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port })).close();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Kill the server at once (SIGKILL): connections drop, the AOF keeps the data. */
  async down(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
  }

  /** Stop the server and remove its data. */
  async close(): Promise<void> {
    await this.down();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
