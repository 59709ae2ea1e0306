/**
 * Open a broker or result backend from its URL. Transports are imported on
 * demand, so code that never connects (a Web Worker running tasks) never
 * loads a Redis or KV client.
 *
 * @module
 */

import type { ResultBackend } from "../backend/port.ts";
import type { Broker } from "../broker/port.ts";
import type { ScheduleStore, ScheduleStoreOptions } from "../broker/schedule_store.ts";
import { maskPassword } from "../broker/errors.ts";
import { AMQP_ALIASES, canonicalBrokerUrl } from "../broker/amqp_aliases.ts";

/**
 * Transport options shared by brokers.
 *
 * @example Opening a broker with a shorter visibility timeout
 * ```ts
 * import { openBroker, type OpenBrokerOptions } from "@celeriac/celeriac/protocol";
 * const options: OpenBrokerOptions = { visibilityTimeout: 600 }; // redeliver after 10 minutes
 * const broker = await openBroker("kv://:memory:", options);
 * await broker.close();
 * ```
 */
export interface OpenBrokerOptions {
  /** Seconds before an unacknowledged message is redelivered. */
  visibilityTimeout?: number;
  /**
   * Seconds to retry acknowledgements and requeues while the server is down
   * (Redis), or acknowledgements, parks and lease renewals while the file
   * cannot be written (KV: a full disk).
   */
  outageRetryLimit?: number;
  /**
   * Aborts opening (a shutdown while connecting): what was opened is
   * closed (KV: the database released) and the open rejects with the
   * signal's reason; one that already aborted rejects at once and opens
   * nothing.
   */
  signal?: AbortSignal;
}

/**
 * Options shared by result backends.
 *
 * @example Opening a backend that keeps results for an hour
 * ```ts
 * import { openBackend, type OpenBackendOptions } from "@celeriac/celeriac/protocol";
 * const options: OpenBackendOptions = { resultExpires: 3600 };
 * const backend = await openBackend("kv://:memory:", options);
 * await backend.close();
 * ```
 */
export interface OpenBackendOptions {
  /** Seconds results are kept; 0 keeps them. */
  resultExpires?: number;
  /**
   * Seconds to retry a result store while the server is down (Redis) or the
   * file cannot be written (KV: a full disk).
   */
  outageRetryLimit?: number;
  /** rpc://: this client's reply queue (the app's `oid`, the `reply_to` of its tasks). */
  replyQueue?: string;
  /** rpc://: the `amqp://` broker URL results travel through, when the rpc URL names no server. */
  brokerUrl?: string;
  /**
   * Aborts opening (a shutdown while connecting): what was opened is
   * closed (KV: the database released) and the open rejects with the
   * signal's reason; one that already aborted rejects at once and opens
   * nothing.
   */
  signal?: AbortSignal;
}

function scheme(url: string): string {
  return url.slice(0, Math.max(0, url.indexOf(":"))).toLowerCase();
}

/**
 * What opens a URL of each scheme; the keys, in order, are what error
 * messages offer, but for kombu's aliases of `amqp` ({@link AMQP_ALIASES}).
 */
type Openers<T, O> = Record<string, (url: string, options: O) => Promise<T>>;

/**
 * What is wrong with `url` for `openers`: no scheme, one they lack, or one of
 * theirs without the `//` that must follow it (`redis:/host` was read as a
 * path: database "host:6379/0" on 127.0.0.1; `amqp:/host//` as vhost
 * "host//" on localhost); null when one of them opens it.
 *
 * @param kind what the URL names, for messages ("broker", "result backend")
 * @param example URLs a message offers when `url` has no scheme
 */
function schemeProblem<T, O>(
  kind: string,
  example: string,
  openers: Openers<T, O>,
  url: string,
): string | null {
  const s = scheme(url);
  if (Object.hasOwn(openers, s)) {
    const rest = url.slice(s.length + 1);
    if (rest.startsWith("//")) return null;
    const fixed = maskPassword(`${url.slice(0, s.length)}://${rest.replace(/^\/+/, "")}`);
    return `The ${kind} URL lacks the // after "${s}:": write it as ${fixed}`;
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    // Masked as if it had one (user:password@host reads the same without a scheme).
    const shown = maskPassword(`x://${url}`).slice("x://".length);
    return `The ${kind} URL "${shown}" has no scheme: write it as a URL, e.g. ${example}`;
  }
  const names = Object.keys(openers).filter((name) => !AMQP_ALIASES.includes(name))
    .map((name) => `${name}://`);
  const use = `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
  return `Unsupported ${kind} URL "${s}://…": use ${use}`;
}

/**
 * Open `url` with the opener of its scheme.
 *
 * @param kind what the URL names, for messages ("broker", "result backend")
 * @param example URLs a message offers when `url` has no scheme
 * @throws {TypeError} for a URL without a scheme or with one `openers` lacks
 */
async function openByScheme<T, O>(
  kind: string,
  example: string,
  openers: Openers<T, O>,
  url: string,
  options: O,
): Promise<T> {
  const problem = schemeProblem(kind, example, openers, url);
  if (problem) throw new TypeError(problem);
  return await openers[scheme(url)](url, options);
}

const openRedis = async (url: string, options: OpenBrokerOptions) =>
  (await import("../broker/redis.ts")).openRedisBroker(url, options);
const openCluster = async (url: string, options: OpenBrokerOptions) =>
  (await import("../broker/redis_cluster.ts")).openRedisClusterBroker(url, options);
const openAmqp = async (url: string, options: OpenBrokerOptions) =>
  (await import("../broker/amqp.ts")).openAmqpBroker(canonicalBrokerUrl(url), {
    signal: options.signal,
  });

const BROKERS: Openers<Broker, OpenBrokerOptions> = {
  redis: openRedis,
  rediss: openRedis,
  sentinel: openRedis,
  "redis+cluster": openCluster,
  "rediss+cluster": openCluster,
  amqp: openAmqp,
  amqps: openAmqp,
  kv: async (url, options) => (await import("../broker/kv.ts")).openKvBroker(url, options),
  pyamqp: openAmqp,
  librabbitmq: openAmqp,
};

const openRedisResults = async (url: string, options: OpenBackendOptions) =>
  (await import("../backend/redis.ts")).openRedisBackend(url, options);

const BACKENDS: Openers<ResultBackend, OpenBackendOptions> = {
  redis: openRedisResults,
  rediss: openRedisResults,
  sentinel: openRedisResults,
  "redis+cluster": openRedisResults,
  "rediss+cluster": openRedisResults,
  rpc: async (url, options) =>
    (await import("../backend/rpc.ts")).openRpcBackend(url, {
      resultExpires: options.resultExpires,
      replyQueue: options.replyQueue,
      brokerUrl: options.brokerUrl,
      signal: options.signal,
    }),
  kv: async (url, options) => (await import("../backend/kv.ts")).openKvBackend(url, options),
};

const openRedisSchedule = async (url: string, options: ScheduleStoreOptions) =>
  (await import("../broker/redis_schedule.ts")).openRedisScheduleStore(url, options);

const SCHEDULE_STORES: Openers<ScheduleStore, ScheduleStoreOptions> = {
  redis: openRedisSchedule,
  rediss: openRedisSchedule,
  "redis+cluster": openRedisSchedule,
  "rediss+cluster": openRedisSchedule,
  sentinel: openRedisSchedule,
  kv: async (url, options) =>
    (await import("../broker/kv_schedule.ts")).openKvScheduleStore(url, options),
};

/**
 * Whether the broker a URL opens is Redis's (single server, Sentinel or
 * Cluster), whose messages are JSON envelopes a batch's templates can
 * prewrite (task_template.ts); RabbitMQ and KV write none.
 *
 * @example
 * ```ts
 * writesRedisEnvelopes("redis://127.0.0.1:6379/0"); // true
 * writesRedisEnvelopes("amqp://guest@localhost//"); // false
 * ```
 *
 * @param url the broker URL
 * @returns whether it opens a Redis broker
 */
export function writesRedisEnvelopes(url: string): boolean {
  const open = BROKERS[scheme(url)];
  return open === openRedis || open === openCluster;
}

const BROKER_EXAMPLE = "redis://127.0.0.1:6379/0, amqp://guest@host// or kv://";
const BACKEND_EXAMPLE = "redis://127.0.0.1:6379/0, rpc:// or kv://";
const STORE_EXAMPLE = "redis://127.0.0.1:6379/0 or kv://";

/**
 * Why a broker, result backend or beat store URL cannot be opened, without
 * opening it: it has no scheme, or none this library supports for it (a beat
 * store: not `amqp://`); null when it may be opened. What {@link openBroker},
 * {@link openBackend} and {@link openScheduleStore} would throw, for a command
 * line to refuse a flag's value before it connects.
 *
 * @example
 * ```ts
 * urlSchemeProblem("broker", "redis://127.0.0.1:6379/0"); // null
 * urlSchemeProblem("broker", "ftp://x"); // 'Unsupported broker URL "ftp://…": use redis://, …'
 * urlSchemeProblem("broker", "redis:/10.0.0.5:6379/0"); // '… lacks the // after "redis:": …'
 * ```
 *
 * @param kind which the URL names
 * @param url the URL
 * @returns the problem, or null
 */
export function urlSchemeProblem(
  kind: "broker" | "result backend" | "beat store",
  url: string,
): string | null {
  return kind === "broker"
    ? schemeProblem(kind, BROKER_EXAMPLE, BROKERS, url)
    : kind === "result backend"
    ? schemeProblem(kind, BACKEND_EXAMPLE, BACKENDS, url)
    : schemeProblem(kind, STORE_EXAMPLE, SCHEDULE_STORES, url);
}

/**
 * Open the broker for a URL: `redis://`, `rediss://`, `amqp://`, `amqps://` or `kv://`;
 * `pyamqp://` and `librabbitmq://`, kombu's aliases of `amqp://`, open `amqp://`.
 *
 * @example
 * ```ts
 * import { openBroker } from "@celeriac/celeriac/protocol";
 * const broker = await openBroker("kv://:memory:");
 * await broker.close();
 * ```
 *
 * @param url the broker URL
 * @param options transport options
 * @returns the connected broker
 * @throws {TypeError} for an unsupported scheme
 * @throws {BrokerConnectionError} when the server cannot be reached
 */
export async function openBroker(url: string, options: OpenBrokerOptions = {}): Promise<Broker> {
  options.signal?.throwIfAborted();
  return await openByScheme("broker", BROKER_EXAMPLE, BROKERS, url, options);
}

/**
 * Open the result backend for a URL: `redis://`, `rediss://`, `rpc://` or `kv://`.
 *
 * @example
 * ```ts
 * import { openBackend } from "@celeriac/celeriac/protocol";
 * const backend = await openBackend("redis://127.0.0.1:6379/0", { resultExpires: 3600 });
 * await backend.close();
 * ```
 *
 * @param url the backend URL
 * @param options expiry
 * @returns the connected backend
 * @throws {TypeError} for an unsupported scheme
 * @throws {BrokerConnectionError} when the server cannot be reached
 */
export async function openBackend(
  url: string,
  options: OpenBackendOptions = {},
): Promise<ResultBackend> {
  options.signal?.throwIfAborted();
  return await openByScheme("result backend", BACKEND_EXAMPLE, BACKENDS, url, options);
}

/**
 * Open beat's schedule store (leader lease, last runs, run-time entries)
 * for a URL: `redis://`, `rediss://`, `redis+cluster://`, `sentinel://` or `kv://`. RabbitMQ offers no
 * compare-and-set, so an `amqp://` URL is refused with what to use instead.
 *
 * @example
 * ```ts
 * import { openScheduleStore } from "@celeriac/celeriac/protocol";
 * const store = await openScheduleStore("kv://:memory:");
 * console.log(await store.lease()); // null: no beat runs
 * await store.close();
 * ```
 *
 * @param url the store URL (by default the app's broker URL)
 * @param options key namespace, signal
 * @returns the open store
 * @throws {TypeError} for `amqp://` and unsupported schemes
 * @throws {BrokerConnectionError} when the server cannot be reached
 */
export async function openScheduleStore(
  url: string,
  options: ScheduleStoreOptions = {},
): Promise<ScheduleStore> {
  options.signal?.throwIfAborted();
  const amqp = scheme(canonicalBrokerUrl(url));
  if (amqp === "amqp" || amqp === "amqps") {
    throw new TypeError(
      "Beat cannot keep its lease and last-run state on RabbitMQ (it has no compare-and-set): " +
        'set beatStore to a redis:// or kv:// URL, e.g. new Celery({ beatStore: "redis://127.0.0.1:6379/0" })',
    );
  }
  return await openByScheme("beat store", STORE_EXAMPLE, SCHEDULE_STORES, url, options);
}
