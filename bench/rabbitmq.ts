/**
 * RabbitMQ helpers for the benchmark: a virtual host of its own per run,
 * created and deleted with `rabbitmqctl`.
 *
 * @module
 */

/** The RabbitMQ server (its vhost is ignored); `BENCH_AMQP` overrides. */
export const AMQP_SERVER = Deno.env.get("BENCH_AMQP") ?? "amqp://guest:guest@127.0.0.1:5672";

/**
 * Run `rabbitmqctl`.
 *
 * @example
 * ```ts ignore
 * const vhosts = await rabbitmqctl("list_vhosts");
 * ```
 *
 * @param args its arguments
 * @returns its standard output
 */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const out = await new Deno.Command("rabbitmqctl", { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder();
  if (!out.success) throw new Error(`rabbitmqctl ${args.join(" ")}: ${text.decode(out.stderr)}`);
  return text.decode(out.stdout);
}

/**
 * The amqp:// URL of a vhost on a server.
 *
 * @example
 * ```ts ignore
 * vhostUrl("bench"); // "amqp://guest:guest@127.0.0.1:5672/bench"
 * ```
 *
 * @param vhost the vhost
 * @param server the server's URL
 * @returns the URL
 */
export function vhostUrl(vhost: string, server: string = AMQP_SERVER): string {
  const base = new URL(server);
  return `amqp://${base.username}:${base.password}@${base.host}/${encodeURIComponent(vhost)}`;
}

/**
 * A vhost of the bench's own.
 *
 * @example
 * ```ts ignore
 * const vhost: BenchVhost = await createVhost("drain");
 * await vhost.remove();
 * ```
 */
export interface BenchVhost {
  /** Its name. */
  name: string;
  /** An amqp:// URL on it. */
  url: string;
  /** Delete it and everything in it. */
  remove(): Promise<void>;
}

/**
 * Create a vhost `celeriac-bench-<label>-<random>` with full permissions
 * for the server URL's user (`rabbitmqctl` must manage that server).
 *
 * @example
 * ```ts ignore
 * const vhost = await createVhost("drain");
 * console.log(vhost.url);
 * await vhost.remove();
 * ```
 *
 * @param label part of the vhost's name
 * @param server the server's URL
 * @returns the vhost
 */
export async function createVhost(
  label: string,
  server: string = AMQP_SERVER,
): Promise<BenchVhost> {
  const name = `celeriac-bench-${label}-${crypto.randomUUID().slice(0, 8)}`;
  const user = decodeURIComponent(new URL(server).username) || "guest";
  await rabbitmqctl("add_vhost", name);
  await rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*");
  return {
    name,
    url: vhostUrl(name, server),
    remove: () => rabbitmqctl("delete_vhost", name).then(() => {}),
  };
}

/**
 * Run `fn` with the URL of a vhost of its own, deleted afterwards.
 *
 * @example
 * ```ts ignore
 * await withVhost("take", async (url) => console.log(url));
 * ```
 *
 * @param label part of the vhost's name
 * @param fn what to run
 * @returns what `fn` returns
 */
export async function withVhost<T>(label: string, fn: (url: string) => Promise<T>): Promise<T> {
  const vhost = await createVhost(label);
  try {
    return await fn(vhost.url);
  } finally {
    await vhost.remove();
  }
}
