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
 * The amqp:// URL of a vhost on {@link AMQP_SERVER}.
 *
 * @param vhost the vhost
 * @returns the URL
 */
export function vhostUrl(vhost: string): string {
  const base = new URL(AMQP_SERVER);
  return `amqp://${base.username}:${base.password}@${base.host}/${encodeURIComponent(vhost)}`;
}

/**
 * Create a vhost `celeriac-bench-<label>-<random>` (full permissions for
 * the URL's user), run `fn` with its URL, delete it afterwards.
 *
 * @param label part of the vhost's name
 * @param fn what to run
 * @returns what `fn` returns
 */
export async function withVhost<T>(
  label: string,
  fn: (url: string, vhost: string) => Promise<T>,
): Promise<T> {
  const vhost = `celeriac-bench-${label}-${crypto.randomUUID().slice(0, 8)}`;
  const user = decodeURIComponent(new URL(AMQP_SERVER).username) || "guest";
  await rabbitmqctl("add_vhost", vhost);
  try {
    await rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*");
    return await fn(vhostUrl(vhost), vhost);
  } finally {
    await rabbitmqctl("delete_vhost", vhost);
  }
}
