/**
 * Query options of a broker or backend URL, of three kinds: those Celeriac
 * reads; those kombu, redis-py or py-amqp read and Celeriac does not (Celery
 * users put them in URLs Celeriac shares: `?ssl_cert_reqs=CERT_REQUIRED`,
 * which Celery's Redis result backend requires on `rediss://`), logged once
 * with what Celeriac does instead, or nothing when that is what they ask; and
 * the rest, logged as a likely typo (`?visibility_timout=10` would otherwise
 * be ignored without a word). None is refused (the `kv://` transport,
 * Celeriac's own, refuses options it does not read).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { maskPassword } from "./errors.ts";

const log = getLogger(["celeriac", "broker", "url"]);

/** What Celeriac says of an option it knows and does not read: how loud, and what it does instead. */
export interface OptionNote {
  /** `warning` when Celeriac does not do what the option asks, `info` when it only does it its own way. */
  level: "info" | "warning";
  /** What Celeriac does instead. */
  says: string;
}

/** An option's note for its value; `null` when Celeriac does what it asks. */
export type OptionExplainer = (value: string) => OptionNote | null;

/**
 * A URL's query options as given, typed to those Celeriac reads (`K`): an
 * option read without being listed among them does not compile, where it
 * would otherwise be warned of as unknown in every URL that sets it. The
 * others (kombu's, typos) are there too, for {@link noteUrlOptions}.
 *
 * @example
 * ```ts
 * import { parseRedisUrl } from "@celeriac/celeriac/transports";
 * parseRedisUrl("redis://h/0?visibility_timeout=60").query.visibility_timeout; // "60"
 * ```
 */
export type UrlQuery<K extends string> = { readonly [name in K]?: string };

/**
 * The query options of a URL, typed by the options Celeriac reads there.
 *
 * @example
 * ```ts
 * import type { RedisUrlOption } from "@celeriac/celeriac/transports";
 * const url = "redis://127.0.0.1:6379/0?socket_timeout=5";
 * const query = urlQuery<RedisUrlOption>(new URL(url).searchParams);
 * ```
 *
 * @param params the query's name-value pairs (a later one wins)
 * @returns the options
 */
export function urlQuery<K extends string>(params: Iterable<[string, string]>): UrlQuery<K> {
  return Object.fromEntries(params) as UrlQuery<K>;
}

/** The options of one kind of URL: those Celeriac reads, and the others it knows. */
export interface UrlOptionKinds {
  /** The options Celeriac reads: the type of the URL's `query` is made of them. */
  read: readonly string[];
  /**
   * Options of kombu, redis-py or py-amqp Celeriac does not read, with
   * their notes; every `ssl_*` option not listed is known too (kombu hands
   * them all to the TLS layer): "Deno's own TLS settings apply".
   */
  known: Readonly<Record<string, OptionExplainer>>;
}

const info = (says: string): OptionExplainer => () => ({ level: "info", says });
const warning = (says: string): OptionExplainer => () => ({ level: "warning", says });

/** How to make Deno trust a private CA, the one way it has (for the whole process). */
const PRIVATE_CA = "for a private CA start the process with DENO_CERT=/path/to/ca.pem (or --cert)";

const NO_CLIENT_CERT = warning(
  "Celeriac presents no client certificate: a server that requires one refuses the connection",
);

/** The note of an `ssl_*` option with none of its own. */
const OTHER_TLS: OptionExplainer = info("Deno's own TLS settings apply");

/** kombu's and redis-py's TLS options (kombu's `ssl_*` URL options, the same names). */
const TLS: Record<string, OptionExplainer> = {
  ssl_cert_reqs: (value) => {
    if (/^(CERT_REQUIRED|required)$/.test(value)) return null;
    const lead = /^(CERT_NONE|CERT_OPTIONAL|none|optional)$/.test(value)
      ? `${value} is not honoured`
      : `"${value}" is none of CERT_REQUIRED, CERT_OPTIONAL, CERT_NONE (Celery refuses it)`;
    return {
      level: "warning",
      says: `${lead}: Celeriac verifies the server's certificate (Deno cannot skip that for ` +
        `one connection); ${PRIVATE_CA}, for a test set-up with ` +
        "--unsafely-ignore-certificate-errors=<host>",
    };
  },
  ssl_ca_certs: (value) => ({
    level: "info",
    says: `Celeriac does not read ${value}: Deno trusts its root store and the CAs of ` +
      `DENO_CERT; start the process with DENO_CERT=${value} (or --cert) if that CA is private`,
  }),
  ssl_ca_path: info(`Celeriac does not read it: Deno trusts its root store; ${PRIVATE_CA}`),
  ssl_ca_data: info(`Celeriac does not read it: Deno trusts its root store; ${PRIVATE_CA}`),
  ssl_certfile: NO_CLIENT_CERT,
  ssl_keyfile: NO_CLIENT_CERT,
  ssl_password: NO_CLIENT_CERT,
  ssl_check_hostname: (value) =>
    /^(false|f|no|n|0)$/i.test(value)
      ? { level: "warning", says: "Celeriac checks the server's host name against its certificate" }
      : null,
};

const CREDENTIALS = warning("Celeriac authenticates with the URL's user name and password");
const DEAD_CONNECTIONS = info(
  "Celeriac takes a connection whose command got no reply for socket_timeout (default 30 s) " +
    "for dead and reconnects it",
);
const RETRIES = info("Celeriac reconnects by itself and retries what failed in an outage");

/**
 * The query options Celeriac reads on Redis URLs: the names of {@link RedisUrlOption}.
 *
 * @example
 * ```ts
 * import { REDIS_READ_OPTIONS } from "@celeriac/celeriac/transports";
 * REDIS_READ_OPTIONS.includes("visibility_timeout"); // true
 * ```
 */
export const REDIS_READ_OPTIONS = [
  "db",
  "visibility_timeout",
  "global_keyprefix",
  "result_expires",
  "socket_timeout",
  "socket_connect_timeout",
  "failover_wait",
  "master_name",
  "sentinel_password",
  "sentinel_username",
] as const;

/**
 * A query option Celeriac reads on `redis://`, `rediss://`, `sentinel://`
 * and Cluster URLs.
 *
 * @example
 * ```ts
 * import type { RedisUrlOption } from "@celeriac/celeriac/transports";
 * const name: RedisUrlOption = "visibility_timeout";
 * ```
 */
export type RedisUrlOption = typeof REDIS_READ_OPTIONS[number];

/** The query options of `redis://`, `rediss://`, `sentinel://` and Cluster URLs. */
export const REDIS_URL_OPTIONS: UrlOptionKinds = {
  read: REDIS_READ_OPTIONS,
  known: {
    ...TLS,
    credential_provider: CREDENTIALS,
    socket_keepalive: DEAD_CONNECTIONS,
    socket_keepalive_options: DEAD_CONNECTIONS,
    health_check_interval: DEAD_CONNECTIONS,
    retry_on_timeout: RETRIES,
    retry_on_error: RETRIES,
    max_connections: info("Celeriac opens a few connections per process, not a pool"),
    timeout: info("Celeriac opens a few connections per process, not a pool to wait for"),
    client_name: info("Celeriac names its connections (celeriac-broker, celeriac-backend, …)"),
    protocol: info("Celeriac chooses RESP2 or RESP3 for each connection"),
    socket_read_size: info("Celeriac sizes its read buffers itself"),
  },
};

/**
 * The query options Celeriac reads on AMQP URLs: the names of {@link AmqpUrlOption}.
 *
 * @example
 * ```ts
 * import { AMQP_READ_OPTIONS } from "@celeriac/celeriac/transports";
 * AMQP_READ_OPTIONS.includes("heartbeat"); // true
 * ```
 */
export const AMQP_READ_OPTIONS = [
  "ssl",
  "heartbeat",
  "connect_timeout",
  "publish_timeout",
  "max_priority",
  "x-max-priority",
  "delivery_limit",
  "quorum_queues",
  "queue_type",
  "exchange_type",
  "delay_queue_type",
] as const;

/**
 * A query option Celeriac reads on `amqp://` and `amqps://` URLs.
 *
 * @example
 * ```ts
 * import type { AmqpUrlOption } from "@celeriac/celeriac/transports";
 * const name: AmqpUrlOption = "heartbeat";
 * ```
 */
export type AmqpUrlOption = typeof AMQP_READ_OPTIONS[number];

/** The query options of `amqp://` and `amqps://` URLs. */
export const AMQP_URL_OPTIONS: UrlOptionKinds = {
  read: AMQP_READ_OPTIONS,
  known: {
    ...TLS,
    credential_provider: CREDENTIALS,
    login_method: (value) => {
      if (value === "PLAIN") return null;
      const plain = "Celeriac authenticates with PLAIN, the URL's user name and password";
      return value === "AMQPLAIN"
        ? { level: "info", says: `${plain}, the same credentials` }
        : { level: "warning", says: `${value} is not supported: ${plain} (guest:guest if none)` };
    },
    insist: info("reserved in AMQP 0-9-1: RabbitMQ ignores it, and so does Celeriac"),
  },
};

/** The URLs and options already logged: a URL is parsed at each connection. */
const logged = new Set<string>();

/**
 * Log what Celeriac does about each query option of `url` it does not read,
 * once per URL and option: a known option's note (nothing when Celeriac
 * does what it asks; a TLS option on a URL without TLS is a warning), or a
 * warning naming the options it reads (a typo?) for any other.
 *
 * @example
 * ```ts
 * noteUrlOptions("redis://h/0?visibility_timout=10", { visibility_timout: "10" }, REDIS_URL_OPTIONS, false);
 * // WARNING: URL option visibility_timout of redis://h/0?visibility_timout=10 is ignored: ...
 * ```
 *
 * @param url the URL as given (its password is masked in the log lines)
 * @param query its query options
 * @param kinds the options its transport reads and knows
 * @param tls whether the connection is TLS
 */
export function noteUrlOptions(
  url: string,
  query: Readonly<Record<string, string | undefined>>,
  kinds: UrlOptionKinds,
  tls: boolean,
): void {
  for (const [key, value = ""] of Object.entries(query)) {
    if (kinds.read.includes(key) || logged.has(`${url}\n${key}`)) continue;
    logged.add(`${url}\n${key}`);
    const explain = kinds.known[key] ?? (key.startsWith("ssl_") ? OTHER_TLS : undefined);
    const props = { option: key, url: maskPassword(url) };
    if (explain === undefined) {
      log.warn("URL option {option} of {url} is ignored: Celeriac reads {known} there (a typo?)", {
        ...props,
        known: kinds.read.join(", "),
      });
      continue;
    }
    const note: OptionNote | null = key.startsWith("ssl_") && !tls
      ? {
        level: "warning",
        says: "the connection is not TLS (rediss://, amqps://): it changes nothing",
      }
      : explain(value);
    const line = "URL option {option} of {url}: {says}";
    if (note?.level === "info") log.info(line, { ...props, says: note.says });
    else if (note) log.warn(line, { ...props, says: note.says });
  }
}
