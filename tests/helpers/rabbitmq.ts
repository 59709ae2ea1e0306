/**
 * RabbitMQ helpers for tests: a virtual host of their own per test file
 * (created and deleted with `rabbitmqctl`), and what the server declared.
 */

/** The RabbitMQ server tests use (CELERIAC_TEST_RABBITMQ overrides); its vhost is ignored. */
export const RABBITMQ_URL = Deno.env.get("CELERIAC_TEST_RABBITMQ") ??
  "amqp://guest:guest@127.0.0.1:5672/";

/** Run `rabbitmqctl` with arguments; resolves with its standard output. */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const out = await new Deno.Command("rabbitmqctl", { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`rabbitmqctl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** A virtual host of the test's own, with full permissions for `guest`. */
export interface TestVhost {
  /** Its name. */
  name: string;
  /** An amqp:// URL on it (extra query appended by `url(query)`). */
  url(query?: string): string;
  /** Delete it and everything in it. */
  remove(): Promise<void>;
}

/** Create a virtual host `celeriac-test-<label>-<random>`. */
export async function createVhost(label: string): Promise<TestVhost> {
  const name = `celeriac-test-${label}-${crypto.randomUUID().slice(0, 8)}`;
  await rabbitmqctl("add_vhost", name);
  await rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*");
  const base = new URL(RABBITMQ_URL);
  return {
    name,
    url: (query = "") =>
      `amqp://${base.username}:${base.password}@${base.host}/${encodeURIComponent(name)}${
        query ? `?${query}` : ""
      }`,
    remove: async () => {
      await rabbitmqctl("delete_vhost", name);
    },
  };
}

/** AMQP field-table type tags, by the names `rabbitmqctl` reports them with. */
const TYPE_TAGS: Record<string, string> = {
  signedint: "I",
  long: "l",
  longstr: "S",
  bool: "t",
  double: "d",
  void: "V",
};

/** Declaration arguments as `[type tag, value]`, the form the fixtures record. */
export type TypedArguments = Record<string, [string, unknown]>;

function typedArguments(listed: unknown): TypedArguments {
  const out: TypedArguments = {};
  for (const [key, type, value] of listed as [string, string, unknown][]) {
    out[key] = [TYPE_TAGS[type] ?? type, value];
  }
  return out;
}

/** A queue as `rabbitmqctl list_queues` reports it. */
export interface ListedQueue {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  exclusive: boolean;
  arguments: TypedArguments;
  messages_ready: number;
  messages_unacknowledged: number;
}

/** The queues of a virtual host. */
export async function listQueues(vhost: string): Promise<ListedQueue[]> {
  const text = await rabbitmqctl(
    "list_queues",
    "-p",
    vhost,
    "--formatter",
    "json",
    "name",
    "durable",
    "auto_delete",
    "exclusive",
    "arguments",
    "messages_ready",
    "messages_unacknowledged",
  );
  return (JSON.parse(text) as ListedQueue[]).map((q) => ({
    ...q,
    arguments: typedArguments(q.arguments),
  }));
}

/** An exchange as `rabbitmqctl list_exchanges` reports it. */
export interface ListedExchange {
  name: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
  arguments: TypedArguments;
}

/** The exchanges of a virtual host. */
export async function listExchanges(vhost: string): Promise<ListedExchange[]> {
  const text = await rabbitmqctl(
    "list_exchanges",
    "-p",
    vhost,
    "--formatter",
    "json",
    "name",
    "type",
    "durable",
    "auto_delete",
    "arguments",
  );
  return (JSON.parse(text) as ListedExchange[]).map((e) => ({
    ...e,
    arguments: typedArguments(e.arguments),
  }));
}
