/**
 * RabbitMQ helpers for tests: a virtual host of their own per test file
 * (created and deleted through the management plugin's HTTP API when it answers,
 * else with `rabbitmqctl`, which boots an Erlang VM: ~1 s of CPU a call), and what
 * the server declared.
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

/**
 * The management plugin's HTTP API (CELERIAC_TEST_RABBITMQ_API overrides; `.ci/run` enables
 * the plugin). Asked once per test file; `undefined` when it does not answer.
 */
const MANAGEMENT_API = Deno.env.get("CELERIAC_TEST_RABBITMQ_API") ?? "http://127.0.0.1:15672/api";
let management: Promise<string | undefined> | undefined;

function managementApi(): Promise<string | undefined> {
  management ??= (async () => {
    try {
      const res = await fetch(`${MANAGEMENT_API}/overview`, {
        headers: { authorization: authorization() },
        signal: AbortSignal.timeout(2_000),
      });
      await res.body?.cancel();
      return res.ok ? MANAGEMENT_API : undefined;
    } catch {
      return undefined;
    }
  })();
  return management;
}

function authorization(): string {
  const base = new URL(RABBITMQ_URL);
  const user = decodeURIComponent(base.username || "guest");
  const pass = decodeURIComponent(base.password || "guest");
  return `Basic ${btoa(`${user}:${pass}`)}`;
}

/** One management API call; throws with the server's answer unless it succeeds. */
async function manage(api: string, method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: authorization(), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`RabbitMQ management ${method} ${path}: ${res.status} ${text}`);
}

/** Grant `user` configure/write/read permissions matching these patterns on `vhost`. */
export async function setPermissions(
  vhost: string,
  user: string,
  configure: string,
  write: string,
  read: string,
): Promise<void> {
  const api = await managementApi();
  if (api === undefined) {
    await rabbitmqctl("set_permissions", "-p", vhost, user, configure, write, read);
    return;
  }
  const path = `/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(user)}`;
  await manage(api, "PUT", path, { configure, write, read });
}

/** A virtual host of the test's own, with full permissions for `guest`. */
export interface TestVhost {
  /** Its name. */
  name: string;
  /** An amqp:// URL on it (extra query appended by `url(query)`). */
  url(query?: string): string;
  /**
   * Suspend the process of its queue `queue` (`sys:suspend`, through `rabbitmqctl eval`). The
   * same eval has the server resume it by itself after `resumeAfterMs` (`timer:apply_after`), so
   * a test killed meanwhile leaves no suspended queue (which would block deleting the vhost).
   */
  suspendQueue(queue: string, resumeAfterMs: number): Promise<void>;
  /** Resume the process of its queue `queue` (harmless when it is not suspended, or gone). */
  resumeQueue(queue: string): Promise<void>;
  /** Delete it and everything in it (a queue that may still be suspended is resumed first). */
  remove(): Promise<void>;
}

/** Erlang: the process of `queue` in `vhost` bound to `P`, then `then`; `ok` if it is gone. */
function withQueueProcess(vhost: string, queue: string, then: string): string {
  const bin = (s: string) => `<<"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}">>`;
  return `case rabbit_amqqueue:lookup(rabbit_misc:r(${bin(vhost)}, queue, ${bin(queue)})) of ` +
    `{ok, Q} -> P = amqqueue:get_pid(Q), ${then}; _ -> ok end.`;
}

/** Create a virtual host `celeriac-test-<label>-<random>`. */
export async function createVhost(label: string): Promise<TestVhost> {
  const name = `celeriac-test-${label}-${crypto.randomUUID().slice(0, 8)}`;
  const api = await managementApi();
  if (api === undefined) await rabbitmqctl("add_vhost", name);
  else await manage(api, "PUT", `/vhosts/${encodeURIComponent(name)}`);
  await setPermissions(name, "guest", ".*", ".*", ".*");
  const base = new URL(RABBITMQ_URL);
  /** Queues suspended, with when the server resumes them by itself (performance.now()). */
  const suspended = new Map<string, number>();
  const resumeQueue = async (queue: string) => {
    await rabbitmqctl("eval", withQueueProcess(name, queue, "sys:resume(P)"));
    suspended.delete(queue);
  };
  return {
    name,
    url: (query = "") =>
      `amqp://${base.username}:${base.password}@${base.host}/${encodeURIComponent(name)}${
        query ? `?${query}` : ""
      }`,
    suspendQueue: async (queue, resumeAfterMs) => {
      suspended.set(queue, performance.now() + resumeAfterMs);
      const ms = Math.ceil(resumeAfterMs);
      await rabbitmqctl(
        "eval",
        withQueueProcess(
          name,
          queue,
          `{ok, _} = timer:apply_after(${ms}, sys, resume, [P]), sys:suspend(P)`,
        ),
      );
    },
    resumeQueue,
    remove: async () => {
      for (const [queue, until] of suspended) {
        if (performance.now() < until) await resumeQueue(queue);
      }
      const api = await managementApi();
      if (api === undefined) await rabbitmqctl("delete_vhost", name);
      else await manage(api, "DELETE", `/vhosts/${encodeURIComponent(name)}`);
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

/** Delete a queue of a virtual host (as an operator would); its consumers are cancelled. */
export async function deleteQueue(vhost: string, queue: string): Promise<void> {
  const api = await managementApi();
  if (api === undefined) {
    await rabbitmqctl("delete_queue", "-p", vhost, queue);
    return;
  }
  await manage(api, "DELETE", `/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(queue)}`);
}
