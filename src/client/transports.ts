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
  /** Seconds to retry acknowledgements and requeues while the server is down (Redis). */
  outageRetryLimit?: number;
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
  /** Seconds to retry a result store while the server is down (Redis). */
  outageRetryLimit?: number;
  /** rpc://: this client's reply queue (the app's `oid`, the `reply_to` of its tasks). */
  replyQueue?: string;
  /** rpc://: the `amqp://` broker URL results travel through, when the rpc URL names no server. */
  brokerUrl?: string;
}

function scheme(url: string): string {
  return url.slice(0, Math.max(0, url.indexOf(":"))).toLowerCase();
}

function unsupported(kind: string, url: string): TypeError {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    const example = kind === "broker"
      ? "redis://127.0.0.1:6379/0, amqp://guest@host// or kv://"
      : "redis://127.0.0.1:6379/0, rpc:// or kv://";
    return new TypeError(
      `The ${kind} URL "${url}" has no scheme: write it as a URL, e.g. ${example}`,
    );
  }
  const s = scheme(url);
  const use = kind === "broker"
    ? "redis://, rediss://, sentinel://, redis+cluster://, amqp://, amqps:// or kv://"
    : "redis://, rediss://, sentinel://, redis+cluster://, rpc:// or kv://";
  return new TypeError(`Unsupported ${kind} URL "${s}://…": use ${use}`);
}

/**
 * Open the broker for a URL: `redis://`, `rediss://`, `amqp://`, `amqps://` or `kv://`.
 *
 * @example
 * ```ts ignore
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
  switch (scheme(url)) {
    case "redis":
    case "rediss":
    case "sentinel": {
      const { openRedisBroker } = await import("../broker/redis.ts");
      return await openRedisBroker(url, options);
    }
    case "redis+cluster":
    case "rediss+cluster": {
      const { openRedisClusterBroker } = await import("../broker/redis_cluster.ts");
      return await openRedisClusterBroker(url, options);
    }
    case "amqp":
    case "amqps": {
      const { openAmqpBroker } = await import("../broker/amqp.ts");
      return await openAmqpBroker(url);
    }
    case "kv": {
      const { openKvBroker } = await import("../broker/kv.ts");
      return await openKvBroker(url, options);
    }
    default:
      throw unsupported("broker", url);
  }
}

/**
 * Open the result backend for a URL: `redis://`, `rediss://`, `rpc://` or `kv://`.
 *
 * @example
 * ```ts ignore
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
  switch (scheme(url)) {
    case "redis":
    case "rediss":
    case "redis+cluster":
    case "rediss+cluster":
    case "sentinel": {
      const { openRedisBackend } = await import("../backend/redis.ts");
      return await openRedisBackend(url, options);
    }
    case "rpc": {
      const { openRpcBackend } = await import("../backend/rpc.ts");
      return await openRpcBackend(url, {
        resultExpires: options.resultExpires,
        replyQueue: options.replyQueue,
        brokerUrl: options.brokerUrl,
      });
    }
    case "kv": {
      const { openKvBackend } = await import("../backend/kv.ts");
      return await openKvBackend(url, options);
    }
    default:
      throw unsupported("result backend", url);
  }
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
 * @param options key namespace
 * @returns the open store
 * @throws {TypeError} for `amqp://` and unsupported schemes
 * @throws {BrokerConnectionError} when the server cannot be reached
 */
export async function openScheduleStore(
  url: string,
  options: ScheduleStoreOptions = {},
): Promise<ScheduleStore> {
  switch (scheme(url)) {
    case "redis":
    case "rediss":
    case "redis+cluster":
    case "rediss+cluster":
    case "sentinel": {
      const { openRedisScheduleStore } = await import("../broker/redis_schedule.ts");
      return await openRedisScheduleStore(url, options);
    }
    case "kv": {
      const { openKvScheduleStore } = await import("../broker/kv_schedule.ts");
      return await openKvScheduleStore(url, options);
    }
    case "amqp":
    case "amqps":
      throw new TypeError(
        "Beat cannot keep its lease and last-run state on RabbitMQ (it has no compare-and-set): " +
          'set beatStore to a redis:// or kv:// URL, e.g. new Celery({ beatStore: "redis://127.0.0.1:6379/0" })',
      );
    default:
      throw new TypeError(
        `Unsupported beat store URL "${
          scheme(url)
        }://…": use redis://, rediss://, redis+cluster://, sentinel:// or kv://`,
      );
  }
}
