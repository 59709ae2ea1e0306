/**
 * App configuration: options, environment variables and defaults.
 *
 * @module
 */

import { COMPRESSION_NAMES, type CompressionName } from "../protocol/compression_names.ts";
import type { BeatEntry } from "./beat_config.ts";
import { CONTENT_TYPES, type SerializerName } from "../protocol/serializers.ts";
import type { TaskAnnotations } from "./annotations.ts";
import type { TaskRoutes } from "./routes.ts";
import { envReadable, readEnv } from "./runtime.ts";
import { closestName } from "./closest_name.ts";
import { checkResultExpires } from "../backend/result_expires.ts";
import { canonicalBrokerUrl } from "../broker/amqp_aliases.ts";
import { type PublishRetryPolicy, resolvePublishRetryPolicy } from "./publish_retry.ts";

/**
 * The broker used when none is configured: an embedded Deno KV file.
 *
 * @example Checking which broker an app uses
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { DEFAULT_BROKER_URL } from "@celeriac/celeriac/protocol";
 * const app = new Celery(); // no broker given
 * if (app.config.broker === DEFAULT_BROKER_URL) {
 *   console.log("no CELERY_BROKER_URL set: using the embedded KV store", DEFAULT_BROKER_URL);
 * }
 * ```
 */
export const DEFAULT_BROKER_URL = "kv://.celeriac/celeriac.sqlite";

/**
 * Options of `new Celery(...)`. Celery's setting names are given in brackets.
 *
 * @example An app with every option
 * ```ts
 * import { Celery, type CeleryOptions } from "@celeriac/celeriac";
 * const options: CeleryOptions = {
 *   broker: "redis://127.0.0.1:6379/0",
 *   backend: "redis://127.0.0.1:6379/1",
 *   defaultQueue: "default",
 *   taskSerializer: "json",
 *   taskCompression: "zlib",
 *   resultExpires: 3600,
 *   visibilityTimeout: 600,
 * };
 * const app = new Celery(options); // connects on first use
 * ```
 */
export interface CeleryOptions {
  /**
   * Broker URL [`broker_url`]: `redis://`, `rediss://`, `amqp://`, `amqps://` or `kv://`
   * (kombu's `pyamqp://` and `librabbitmq://` are read as `amqp://`). Default:
   * `CELERY_BROKER_URL`, else {@link DEFAULT_BROKER_URL}.
   */
  broker?: string;
  /**
   * Result backend URL [`result_backend`]: `redis://`, `kv://` or `rpc://`
   * (results as AMQP messages through the `amqp://` broker's server); `null`
   * for none. Default: `CELERY_RESULT_BACKEND`, else the broker URL when the
   * broker is `kv://`, else none (as in Celery).
   */
  backend?: string | null;
  /**
   * Queue for tasks that name none [`task_default_queue`]. Default:
   * `CELERY_DEFAULT_QUEUE`, else `celery`.
   */
  defaultQueue?: string;
  /** Body serializer for task messages [`task_serializer`]. Default `json`. */
  taskSerializer?: SerializerName;
  /** Compression for task messages [`task_compression`]. Default none. */
  taskCompression?: CompressionName | null;
  /** Seconds results are kept [`result_expires`]. Default 86400; 0 keeps them. */
  resultExpires?: number;
  /**
   * A worker also stores the task's name, args, kwargs, worker, retries and
   * queue in the results its tasks store [`result_extended`]. Default:
   * `CELERY_RESULT_EXTENDED` (`true` / `false`), else false.
   */
  resultExtended?: boolean;
  /**
   * Seconds before an unacknowledged message is redelivered
   * [`broker_transport_options.visibility_timeout`]. Default 3600.
   */
  visibilityTimeout?: number;
  /**
   * Seconds to keep retrying, with backoff, an acknowledgement, result
   * store, requeue or follow-up publish that failed because the server was
   * unreachable (the delivery stays unacknowledged meanwhile) [Celery's
   * `result_backend_always_retry`]. Default 300 (`DEFAULT_OUTAGE_LIMIT`).
   */
  outageRetryLimit?: number;
  /**
   * Retry a task's publish when the broker is unreachable, as
   * `taskPublishRetryPolicy` says [`task_publish_retry`]. Default true.
   */
  taskPublishRetry?: boolean;
  /**
   * How a publish is retried [`task_publish_retry_policy`]; fields left out
   * keep Celery's defaults: 3 retries, waits from 0 s, 0.2 s more each,
   * 0.2 s at most.
   */
  taskPublishRetryPolicy?: Partial<PublishRetryPolicy>;
  /**
   * Periodic tasks sent by `worker.ts beat` [`beat_schedule`]: entry name →
   * entry. Default none.
   */
  beatSchedule?: Readonly<Record<string, BeatEntry>>;
  /**
   * IANA time zone crontab schedules are evaluated in [`timezone`].
   * Default `CELERY_TIMEZONE`, else `UTC`.
   */
  timezone?: string;
  /**
   * Where beat keeps its leader lease, last-run times and run-time entries:
   * a `redis://`, `redis+cluster://`, `sentinel://` or `kv://` URL. Default: the broker URL (required when the
   * broker is `amqp://`: RabbitMQ has no compare-and-set for them).
   */
  beatStore?: string | null;
  /**
   * Key namespace of beat's store, so several independent schedules can
   * share one server. Default `celeriac.beat.`.
   */
  beatNamespace?: string;
  /**
   * Where calls go when neither the call nor the task names a queue
   * [`task_routes`]: a map of names or glob patterns to queues or options, a
   * function, or a list of them. Default none (the default queue). Kept
   * by the app, not in its `config` (functions cannot be sent to Web Workers,
   * which load the app module and so have the same routes).
   */
  taskRoutes?: TaskRoutes | null;
  /**
   * Option overrides by task name, `"*"` for every task
   * [`task_annotations`]. Set it before defining tasks. Default none.
   */
  taskAnnotations?: TaskAnnotations | null;
  /** Workers send task events, as with `-E` [`worker_send_task_events`]. Default false. */
  workerSendTaskEvents?: boolean;
  /** The client sends a `task-sent` event for each task it sends [`task_send_sent_event`]. Default false. */
  taskSendSentEvent?: boolean;
}

/**
 * Configuration with every default applied.
 *
 * @example Reading an app's configuration
 * ```ts
 * import { Celery, type ResolvedConfig } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:", defaultQueue: "jobs" });
 * const config: ResolvedConfig = app.config;
 * config.defaultQueue; // "jobs"
 * config.backend; // "kv://:memory:" (a kv:// broker stores results too, unless CELERY_RESULT_BACKEND is set)
 * config.visibilityTimeout; // 3600
 * ```
 */
export interface ResolvedConfig {
  /** Broker URL (`amqp://` for kombu's aliases of it, `pyamqp://` and `librabbitmq://`). */
  broker: string;
  /** Result backend URL, or `null`. */
  backend: string | null;
  /** Default queue. */
  defaultQueue: string;
  /** Task serializer. */
  taskSerializer: SerializerName;
  /** Task compression. */
  taskCompression: CompressionName | null;
  /** Result expiry in seconds. */
  resultExpires: number;
  /** Workers store the extended result fields. */
  resultExtended: boolean;
  /** Visibility timeout in seconds. */
  visibilityTimeout: number;
  /** Seconds settlement operations are retried while the server is down. */
  outageRetryLimit: number;
  /** Publishes are retried while the broker is unreachable. */
  taskPublishRetry: boolean;
  /** How they are retried. */
  taskPublishRetryPolicy: PublishRetryPolicy;
  /** Periodic tasks (may be empty). */
  beatSchedule: Readonly<Record<string, BeatEntry>>;
  /** IANA time zone of crontab schedules. */
  timezone: string;
  /** Beat's store URL, or `null` when none fits (an `amqp://` broker and no `beatStore`). */
  beatStore: string | null;
  /** Key namespace of beat's store. */
  beatNamespace: string;
  /** Workers send task events. */
  workerSendTaskEvents: boolean;
  /** The client sends `task-sent` events. */
  taskSendSentEvent: boolean;
}

/**
 * A bare `rpc://` backend sends results through the broker's RabbitMQ (as in
 * Celery): the resolved URL names that server, `rpc://user:pass@host/vhost`.
 */
function rpcThroughBroker(backend: string | null, broker: string): string | null {
  if (backend === null || !/^rpc:\/\/\/?$/i.test(backend)) return backend;
  const m = /^(amqps?):\/\/(.+)$/i.exec(broker);
  if (!m) return backend;
  const tls = m[1].toLowerCase() === "amqps" ? `${m[2].includes("?") ? "&" : "?"}ssl=true` : "";
  return `rpc://${m[2]}${tls}`;
}

/** A true/false environment variable; unset is `undefined`. */
function envFlag(name: string): boolean | undefined {
  const text = readEnv(name);
  if (text === undefined) return undefined;
  if (/^(true|1|yes|on)$/i.test(text)) return true;
  if (/^(false|0|no|off)$/i.test(text)) return false;
  throw new TypeError(`${name} must be true or false, got ${JSON.stringify(text)}`);
}

/**
 * Apply environment variables and defaults to app options.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@celeriac/celeriac/protocol";
 * resolveConfig({ broker: "kv://:memory:" }).backend; // "kv://:memory:"
 * ```
 *
 * @param options what the app was given
 * @returns the complete configuration
 */
export function resolveConfig(options: CeleryOptions = {}): ResolvedConfig {
  const broker = canonicalBrokerUrl(
    options.broker ?? readEnv("CELERY_BROKER_URL") ?? DEFAULT_BROKER_URL,
  );
  const backend = options.backend !== undefined
    ? options.backend
    : readEnv("CELERY_RESULT_BACKEND") ?? (broker.startsWith("kv:") ? broker : null);
  const resultExpires = checkResultExpires(options.resultExpires ?? 86400);
  const visibilityTimeout = options.visibilityTimeout ?? 3600;
  if (!(visibilityTimeout > 0)) throw new RangeError("visibilityTimeout must be > 0 seconds");
  const outageRetryLimit = options.outageRetryLimit ?? 300;
  if (!(outageRetryLimit >= 0)) throw new RangeError("outageRetryLimit must be >= 0 seconds");
  const timezone = options.timezone ?? readEnv("CELERY_TIMEZONE") ?? "UTC";
  checkTimeZone(timezone);
  const beatStore = options.beatStore !== undefined
    ? options.beatStore
    : /^(rediss?|rediss?\+cluster|sentinel|kv):/i.test(broker)
    ? broker
    : null;
  return {
    broker,
    backend: rpcThroughBroker(backend, broker),
    defaultQueue: options.defaultQueue ?? readEnv("CELERY_DEFAULT_QUEUE") ?? "celery",
    taskSerializer: checkSerializer(options.taskSerializer ?? "json"),
    taskCompression: checkCompression(options.taskCompression ?? null),
    resultExpires,
    resultExtended: options.resultExtended ?? envFlag("CELERY_RESULT_EXTENDED") ?? false,
    visibilityTimeout,
    outageRetryLimit,
    taskPublishRetry: options.taskPublishRetry ?? true,
    taskPublishRetryPolicy: resolvePublishRetryPolicy(options.taskPublishRetryPolicy),
    beatSchedule: { ...options.beatSchedule },
    timezone,
    beatStore,
    beatNamespace: options.beatNamespace ?? "celeriac.beat.",
    workerSendTaskEvents: options.workerSendTaskEvents ?? false,
    taskSendSentEvent: options.taskSendSentEvent ?? false,
  };
}

/** What each app option holds: its type(s) as `typeof` names, `null` included when allowed. */
const OPTION_TYPES: Readonly<Record<keyof CeleryOptions, readonly string[]>> = {
  broker: ["string"],
  backend: ["string", "null"],
  defaultQueue: ["string"],
  taskSerializer: ["string"],
  taskCompression: ["string", "null"],
  resultExpires: ["number"],
  resultExtended: ["boolean"],
  visibilityTimeout: ["number"],
  outageRetryLimit: ["number"],
  taskPublishRetry: ["boolean"],
  taskPublishRetryPolicy: ["object"],
  beatSchedule: ["object"],
  timezone: ["string"],
  beatStore: ["string", "null"],
  beatNamespace: ["string"],
  taskRoutes: ["object", "function", "null"],
  taskAnnotations: ["object", "function", "null"],
  workerSendTaskEvents: ["boolean"],
  taskSendSentEvent: ["boolean"],
};

/** Celery's setting names whose Celeriac option is not their camelCase. */
const CELERY_NAMES: Readonly<Record<string, keyof CeleryOptions>> = {
  brokerurl: "broker",
  resultbackend: "backend",
  taskdefaultqueue: "defaultQueue",
  workersendtaskevents: "workerSendTaskEvents",
  beatschedule: "beatSchedule",
  visibilitytimeout: "visibilityTimeout",
};

/**
 * Refuse app options a plain-JavaScript caller (no type check) got wrong: a
 * name that is no option (a typo, or Celery's snake_case `broker_url`) would
 * otherwise be ignored and the default used (a `brokr:` typo sends tasks to
 * the embedded KV store), and a value of the wrong type fails later, far
 * from its cause.
 *
 * @example
 * ```ts
 * checkOptions({ brokr: "redis://127.0.0.1:6379/0" }, "new Celery()");
 * // TypeError: new Celery() has no option "brokr" (did you mean "broker"?) ...
 * ```
 *
 * @param options what the app was given
 * @param where `new Celery()` or `app.configure()`, for the message
 * @throws {TypeError} naming the option and what to write instead
 */
export function checkOptions(options: unknown, where: string): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      `${where} takes an options object, e.g. { broker: "redis://127.0.0.1:6379/0" }; got ${
        describe(options)
      }`,
    );
  }
  const known = Object.keys(OPTION_TYPES);
  for (const [key, value] of Object.entries(options)) {
    const types = OPTION_TYPES[key as keyof CeleryOptions];
    if (types === undefined) {
      const flat = key.toLowerCase().replace(/_/g, "");
      const guess = CELERY_NAMES[flat] ?? known.find((k) => k.toLowerCase() === flat) ??
        closestName(key, known);
      throw new TypeError(
        `${where} has no option "${key}"${
          guess ? ` (did you mean "${guess}"?)` : ""
        }: the options are ${known.join(", ")}`,
      );
    }
    if (value === undefined) continue;
    const type = value === null ? "null" : typeof value;
    if (
      !types.includes(type) || (type === "object" && Array.isArray(value) && key !== "taskRoutes" &&
        key !== "taskAnnotations")
    ) {
      throw new TypeError(
        `${where}: option "${key}" must be ${
          types.map((t) => t === "object" ? "an object" : t === "null" ? "null" : `a ${t}`).join(
            " or ",
          )
        }, got ${describe(value)}${
          (key === "broker" || key === "backend" || key === "beatStore") && type === "number"
            ? ` (write the whole URL, e.g. "redis://127.0.0.1:${value}/0")`
            : ""
        }`,
      );
    }
  }
}

/** A value as a message shows it: its type and, when short, the value. */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return `the ${typeof value} ${String(value)}`;
  }
  return `a ${typeof value}`;
}

/**
 * The app's `taskSerializer`, refused at `new Celery()` rather than at each
 * send when Celeriac cannot write it (Celery's `"pickle"`, `"yaml"`).
 */
function checkSerializer(name: SerializerName): SerializerName {
  if (Object.hasOwn(CONTENT_TYPES, name)) return name;
  throw new RangeError(
    `taskSerializer ${JSON.stringify(name)} is not a serializer Celeriac writes: use "json" ` +
      `(the default) or "msgpack" (Celery's "pickle" and "yaml" are not supported)`,
  );
}

/** The app's `taskCompression`, refused at `new Celery()` rather than at each send. */
function checkCompression(name: CompressionName | null): CompressionName | null {
  if (name === null || COMPRESSION_NAMES.includes(name)) return name;
  throw new RangeError(
    `taskCompression ${JSON.stringify(name)} is not a compression Celeriac writes: use ` +
      `${COMPRESSION_NAMES.map((n) => JSON.stringify(n)).join(" or ")}, or null for none`,
  );
}

/**
 * Throw a RangeError naming the setting when a time zone is unknown. "UTC"
 * (the default) is known: not asking `Intl` spares each isolate that makes
 * an app (a worker's main thread and every Web Worker) loading the time zone
 * data at start-up.
 */
function checkTimeZone(timezone: string): void {
  if (timezone === "UTC") return;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new RangeError(
      `timezone "${timezone}" is not an IANA time zone: use e.g. "UTC", "Europe/Berlin" or "America/New_York"`,
    );
  }
}

/**
 * Where an app's broker, backend and beat store URLs came from, in words (see {@link urlSources}).
 *
 * @example
 * ```ts
 * import { Celery, type UrlSources } from "@celeriac/celeriac";
 * const sources: UrlSources = new Celery({ broker: "kv://:memory:" }).urlSources;
 * ```
 */
export interface UrlSources {
  /** Where the broker URL came from. */
  broker: string;
  /** Where the result backend URL came from. */
  backend: string;
  /** Where beat's store URL came from (the broker's when none was given). */
  beatStore: string;
  /**
   * The broker is the default only because Deno's permissions kept
   * `CELERY_BROKER_URL` from being read: `broker` says so, and a connection
   * error says that instead of the permission the default itself lacks.
   */
  brokerUnread?: boolean;
}

/**
 * Where the broker, backend and beat store URLs of a resolved configuration came from:
 * the app's option, the environment variable, or the default, so that a
 * connection error names the one place to change.
 *
 * @example
 * ```ts
 * import { resolveConfig, urlSources } from "./config.ts";
 * const options = { broker: "kv://:memory:" };
 * urlSources(options, resolveConfig(options)).broker;
 * // "the app's broker option (new Celery({ broker }), app.configure() or --broker)"
 * ```
 *
 * @param options what the app was given
 * @param config what they resolved to
 * @returns the broker's, the backend's and the beat store's source
 */
export function urlSources(options: CeleryOptions, config: ResolvedConfig): UrlSources {
  const brokerUnread = options.broker === undefined && config.broker === DEFAULT_BROKER_URL &&
    !envReadable("CELERY_BROKER_URL");
  const broker = options.broker !== undefined
    ? "the app's broker option (new Celery({ broker }), app.configure() or --broker)"
    : config.broker !== DEFAULT_BROKER_URL
    ? "CELERY_BROKER_URL"
    : brokerUnread
    ? "the default, as Deno's permissions kept CELERY_BROKER_URL from being read: if it is " +
      "set, run deno with --allow-env=CELERY_BROKER_URL to use it (or give the broker: " +
      "new Celery({ broker }) or the command line's --broker)"
    : "the default, as no broker was given (new Celery({ broker }), CELERY_BROKER_URL or " +
      "the command line's --broker)";
  const backend = options.backend !== undefined
    ? "the app's backend option (new Celery({ backend }), app.configure() or --backend)"
    : config.backend === config.broker && config.broker.startsWith("kv:")
    ? "the broker's URL, as no backend was given (new Celery({ backend }), " +
      "CELERY_RESULT_BACKEND or the command line's --backend)"
    : "CELERY_RESULT_BACKEND";
  const beatStore = options.beatStore !== undefined
    ? "the app's beatStore option (new Celery({ beatStore }), app.configure() or --beat-store)"
    : `the broker's URL, as no beat store was given (new Celery({ beatStore }) or the ` +
      `command line's --beat-store); the broker's URL is ${broker}`;
  return { broker, backend, beatStore, brokerUnread };
}
