/**
 * Options of the Deno KV broker (kv.ts) and their resolution against its
 * URL, whose query parameters override them.
 *
 * @module
 */

import { kvNamespace, parseKvUrl } from "./kv_store.ts";

/**
 * Options of `openKvBroker` (kv.ts); URL query parameters of the same name override them.
 *
 * @example A KV broker in its own namespace
 * ```ts
 * import { type KvBrokerOptions, openKvBroker } from "@celeriac/celeriac/transports";
 * const options: KvBrokerOptions = { visibilityTimeout: 600, prefix: ["billing", "queues"] };
 * const broker = await openKvBroker("kv://:memory:", options);
 * await broker.queueDepth("celery"); // 0
 * await broker.close();
 * ```
 */
export interface KvBrokerOptions {
  /**
   * Seconds after which an unacknowledged delivery is put back in front of
   * its queue for another consumer (URL `visibility_timeout`). Default 3600.
   */
  visibilityTimeout?: number;
  /** Key namespace (URL `prefix=<name>` gives `[name]`). Default `["celeriac"]`. */
  prefix?: readonly string[];
  /**
   * Seconds an acknowledgement, park or lease renewal is retried, with
   * backoff, while the file cannot be written (a full disk; the delivery
   * stays unacknowledged meanwhile). Default 300 (`DEFAULT_OUTAGE_LIMIT`).
   */
  outageRetryLimit?: number;
  /**
   * Aborts opening: the database is released and the open rejects with
   * the signal's reason (at once, opening nothing, when it already
   * aborted). Default: none.
   */
  signal?: AbortSignal;
}

/**
 * A KV broker's settings: its URL's, else its options', else the defaults.
 *
 * @example
 * ```ts
 * import { resolveKvBrokerOptions } from "./kv_options.ts";
 * resolveKvBrokerOptions("kv://:memory:?visibility_timeout=60", { prefix: ["app"] });
 * // { path: ":memory:", visibilityTimeout: 60, prefix: ["app"] }
 * ```
 *
 * @param url the broker URL
 * @param options transport options (the URL's query overrides them)
 * @returns the database path as written in the URL, the visibility timeout in seconds and the
 *   key namespace
 * @throws {TypeError} when the URL is not a `kv://` URL
 * @throws {RangeError} when the visibility timeout is not positive or the prefix is empty
 */
export function resolveKvBrokerOptions(
  url: string,
  options: KvBrokerOptions,
): { path: string; visibilityTimeout: number; prefix: readonly string[] } {
  const parsed = parseKvUrl(url);
  const visibilityTimeout = parsed.visibilityTimeout ?? options.visibilityTimeout ?? 3600;
  if (!(visibilityTimeout > 0) || !Number.isFinite(visibilityTimeout)) {
    throw new RangeError(
      `visibilityTimeout must be a positive number of seconds, got ${visibilityTimeout}`,
    );
  }
  const prefix = kvNamespace(parsed, options.prefix);
  return { path: parsed.path, visibilityTimeout, prefix };
}
