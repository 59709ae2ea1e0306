/**
 * Parse `amqp://` / `amqps://` URLs as kombu reads them.
 *
 * @module
 */

import {
  AMQP_URL_OPTIONS,
  type AmqpUrlOption,
  noteUrlOptions,
  type UrlQuery,
  urlQuery,
} from "./url_options.ts";
import { maskPassword } from "./errors.ts";
import { MAX_TIMER_MS } from "./long_timeout.ts";
import { urlPortProblem } from "./url_syntax.ts";
import { yesNo } from "../protocol/yes_no.ts";

/**
 * Connection settings read from an AMQP URL.
 *
 * @example Reading a TLS URL
 * ```ts
 * import { type AmqpUrlOptions, parseAmqpUrl } from "@celeriac/celeriac/transports";
 * const o: AmqpUrlOptions = parseAmqpUrl("amqps://worker:s3cret@mq.internal/billing?heartbeat=30");
 * o.tls; // true
 * `${o.username}@${o.hostname}:${o.port}/${o.vhost}`; // "worker@mq.internal:5671/billing"
 * o.heartbeat; // 30
 * ```
 */
export interface AmqpUrlOptions {
  /** Host name; default `localhost`. */
  hostname: string;
  /** Port; default 5672, or 5671 with TLS. */
  port: number;
  /** User name; default `guest` (kombu's default). */
  username: string;
  /** Password; default `guest`. */
  password: string;
  /** Virtual host, decoded; default `/`. */
  vhost: string;
  /** True for `amqps://` or `?ssl=true`. */
  tls: boolean;
  /** Heartbeat interval in seconds (`?heartbeat=`); unset lets the server choose. */
  heartbeat?: number;
  /** Connect timeout in milliseconds (`?connect_timeout=` in seconds, as kombu). */
  connectTimeout?: number;
  /**
   * Seconds a publish waits for its confirm, through reconnects
   * (`?publish_timeout=`); unset: the broker's `publishTimeout` option, else 30.
   */
  publishTimeout?: number;
  /** `x-max-priority` of declared task queues (`?max_priority=`); unset declares none. */
  maxPriority?: number;
  /** Type of declared task queues (`?queue_type=quorum`, Celery `task_default_queue_type`). */
  queueType?: "classic" | "quorum";
  /** Queues declared as quorum queues whatever `queueType` says (`?quorum_queues=a,b`). */
  queueTypes?: Record<string, "classic" | "quorum">;
  /** Exchange type of declared task queues (`?exchange_type=topic`, Celery `task_default_exchange_type`). */
  exchangeType?: "direct" | "topic";
  /** `x-delivery-limit` of declared quorum queues (`?delivery_limit=`). */
  deliveryLimit?: number;
  /** Type of the native delayed delivery queues (`?delay_queue_type=`); default quorum. */
  delayQueueType?: "classic" | "quorum";
  /** Every query-string option, as given, typed to those Celeriac reads. */
  query: UrlQuery<AmqpUrlOption>;
}

function choice<T extends string>(
  query: UrlQuery<AmqpUrlOption>,
  key: AmqpUrlOption,
  allowed: readonly T[],
  url: string,
): T | undefined {
  const text = query[key];
  if (text === undefined || text === "") return undefined;
  if (!(allowed as readonly string[]).includes(text)) {
    throw new TypeError(
      `Invalid ${key} "${text}" in "${maskPassword(url)}": use ${allowed.join(" or ")}`,
    );
  }
  return text as T;
}

function numberOption(
  query: UrlQuery<AmqpUrlOption>,
  key: AmqpUrlOption,
  url: string,
): number | undefined {
  const text = query[key];
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) {
    throw new TypeError(`Invalid ${key} "${text}" in "${maskPassword(url)}": use a number >= 0`);
  }
  return n;
}

/** The shortest publish timeout that is not every publish timing out at once, seconds. */
const MIN_PUBLISH_TIMEOUT_S = 0.001;

/**
 * A publish timeout (`?publish_timeout=`, the `publishTimeout` option) in
 * milliseconds, checked: from 0.001 s (a shorter one fails every publish at
 * once, as 0 would) to 2,147,483.647 s (a timer holds at most 24.8 days and
 * fires a longer delay after 1 ms, timing out every publish at once too).
 *
 * @example
 * ```ts
 * import { publishTimeoutMs } from "./amqp_url.ts";
 * publishTimeoutMs(30, "publishTimeout"); // 30000
 * ```
 *
 * @param seconds the timeout
 * @param what what gave it, for the error (`publish_timeout "0" in "amqp://…"`)
 * @returns the timeout in milliseconds
 * @throws {TypeError} when it is outside those bounds (or not a number)
 */
export function publishTimeoutMs(seconds: number, what: string): number {
  const ms = seconds * 1000;
  if (!(seconds >= MIN_PUBLISH_TIMEOUT_S && ms <= MAX_TIMER_MS)) {
    throw new TypeError(
      `Invalid ${what}: use ${MIN_PUBLISH_TIMEOUT_S} to ${MAX_TIMER_MS / 1000} seconds (how ` +
        "long a publish waits for its confirm through reconnects; a shorter one fails every " +
        "publish at once, and so does a longer one: a timer holds at most 24.8 days)",
    );
  }
  return ms;
}

/**
 * Parse an AMQP URL: `amqp://[user[:password]@]host[:port][/vhost][?opt=value...]`.
 *
 * The virtual host follows kombu: the path after the first `/`,
 * percent-decoded, so `amqp://host//`, `amqp://host/%2F` and `amqp://host`
 * all mean `/`, and `amqp://host/prod` means `prod`.
 *
 * @example
 * ```ts
 * import { parseAmqpUrl } from "@celeriac/celeriac/transports";
 * const o = parseAmqpUrl("amqp://guest:guest@127.0.0.1:5672/%2F?max_priority=10");
 * // o.vhost === "/", o.maxPriority === 10, o.tls === false
 * ```
 *
 * @param url the URL
 * @returns the parsed settings
 * @throws {TypeError} when the URL is not an AMQP URL, an option is not a number,
 *   publish_timeout is below 0.001 s or either timeout above what a timer holds (24.8 days)
 */
export function parseAmqpUrl(url: string): AmqpUrlOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    const port = urlPortProblem(url);
    throw new TypeError(
      `Invalid AMQP URL "${maskPassword(url)}": ${
        port ?? "expected amqp://user:password@host:port/vhost"
      }`,
    );
  }
  if (u.protocol !== "amqp:" && u.protocol !== "amqps:") {
    throw new TypeError(`Not an AMQP URL: "${maskPassword(url)}" (use amqp:// or amqps://)`);
  }
  const query = urlQuery<AmqpUrlOption>(u.searchParams);
  const tls = u.protocol === "amqps:" || yesNo(query.ssl ?? "") === true;
  const path = u.pathname.slice(1);
  const vhost = path === "" ? "/" : decodeURIComponent(path);
  const heartbeat = numberOption(query, "heartbeat", url);
  const connectTimeout = numberOption(query, "connect_timeout", url);
  if (connectTimeout !== undefined && connectTimeout * 1000 > MAX_TIMER_MS) {
    throw new TypeError(
      `Invalid connect_timeout "${query.connect_timeout}" in "${maskPassword(url)}": use at ` +
        `most ${MAX_TIMER_MS / 1000} seconds (a timer holds 24.8 days; a longer one fires at once)`,
    );
  }
  const publishTimeout = numberOption(query, "publish_timeout", url);
  if (publishTimeout !== undefined) {
    publishTimeoutMs(
      publishTimeout,
      `publish_timeout "${query.publish_timeout}" in "${maskPassword(url)}"`,
    );
  }
  const maxPriority = numberOption(query, "max_priority", url) ??
    numberOption(query, "x-max-priority", url);
  if (maxPriority !== undefined && (!Number.isInteger(maxPriority) || maxPriority > 255)) {
    throw new TypeError(
      `Invalid max_priority "${maxPriority}" in "${maskPassword(url)}": use 1 to 255`,
    );
  }
  const deliveryLimit = numberOption(query, "delivery_limit", url);
  if (deliveryLimit !== undefined && !Number.isInteger(deliveryLimit)) {
    throw new TypeError(
      `Invalid delivery_limit "${deliveryLimit}" in "${maskPassword(url)}": use a whole number`,
    );
  }
  const quorumQueues = (query.quorum_queues ?? "").split(",").filter((q) => q !== "");
  noteUrlOptions(url, query, AMQP_URL_OPTIONS, tls);
  return {
    hostname: u.hostname.replace(/^\[|\]$/g, "") || "localhost",
    port: u.port ? Number(u.port) : tls ? 5671 : 5672,
    username: u.username ? decodeURIComponent(u.username) : "guest",
    password: u.password ? decodeURIComponent(u.password) : "guest",
    vhost,
    tls,
    heartbeat: heartbeat === undefined ? undefined : Math.round(heartbeat),
    connectTimeout: connectTimeout === undefined ? undefined : connectTimeout * 1000,
    publishTimeout,
    maxPriority,
    queueType: choice(query, "queue_type", ["classic", "quorum"], url),
    queueTypes: quorumQueues.length
      ? Object.fromEntries(quorumQueues.map((q) => [q, "quorum" as const]))
      : undefined,
    exchangeType: choice(query, "exchange_type", ["direct", "topic"], url),
    deliveryLimit,
    delayQueueType: choice(query, "delay_queue_type", ["classic", "quorum"], url),
    query,
  };
}
