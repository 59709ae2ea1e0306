/**
 * The reply shapes of Celery 5.2's inspect commands, built from what a
 * Celeriac worker holds: request info (`active`, `reserved`, `scheduled`,
 * `query_task`), kombu queue descriptions (`active_queues`), `stats`,
 * `conf` and `report`. Pure: no I/O.
 *
 * @module
 */

import type { Delivery, QueueBinding } from "../broker/port.ts";
import { maskPassword } from "../broker/url_mask.ts";
import type { ResolvedConfig } from "../client/config.ts";
import { decodeTaskBody, type TaskRequest } from "../protocol/task_request.ts";
import { pyIsoFormat } from "../protocol/time.ts";
import { argsRepr, kwargsRepr, pyRepr } from "../protocol/repr.ts";
import type { ScheduledInfo, TaskInfo } from "../client/inspect.ts";
import type { HeldTask } from "./task_registries.ts";

/**
 * A task as `inspect active / reserved / scheduled / query_task` describe it:
 * the shape a client reads back as {@link TaskInfo}, built here.
 *
 * @example
 * ```ts
 * import type { RequestInfo } from "@celeriac/celeriac/worker";
 * const info: RequestInfo = {
 *   id: "t1", name: "tasks.add", args: [2, 3], kwargs: {}, type: "tasks.add",
 *   hostname: "celeriac@host", time_start: 1795490349.52, acknowledged: true,
 *   delivery_info: { exchange: "", routing_key: "celery", priority: 0, redelivered: false },
 *   worker_pid: 4242,
 * };
 * ```
 */
export type RequestInfo = TaskInfo;

/**
 * The request info of a held task. Arguments are decoded from the message
 * (JSON or already-decoded bodies); with `safe`, or when the body cannot be
 * decoded here, they are the `argsrepr`/`kwargsrepr` strings.
 *
 * @example
 * ```ts
 * import { type HeldTask, requestInfo } from "@celeriac/celeriac/worker";
 * const describe = (task: HeldTask) =>
 *   requestInfo(task, { hostname: "celeriac@host", safe: false, started: true });
 * ```
 *
 * @param t the task
 * @param options node name, `safe`, whether it runs (`started`), and the most bytes a
 *   compressed body may decompress to (the worker's `maxDecompressedSize`)
 * @returns the info
 */
export function requestInfo(
  t: HeldTask,
  options: { hostname: string; safe: boolean; started: boolean; maxDecompressed?: number },
): RequestInfo {
  const { req, delivery } = t;
  const { args, kwargs } = options.safe
    ? reprArgs(t, options.maxDecompressed)
    : decodedArgs(t, options.maxDecompressed);
  return {
    id: req.id,
    name: req.task,
    args,
    kwargs,
    type: req.task,
    hostname: options.hostname,
    time_start: options.started ? t.since / 1000 : null,
    acknowledged: options.started ? t.acked : false,
    delivery_info: deliveryInfo(delivery),
    worker_pid: options.started ? Deno.pid : null,
  };
}

function deliveryInfo(d: Delivery): RequestInfo["delivery_info"] {
  const priority = Number(d.properties.priority ?? 0);
  return {
    exchange: d.exchange,
    routing_key: d.routingKey,
    priority: Number.isFinite(priority) ? priority : 0,
    redelivered: d.redelivered,
  };
}

function reprArgs(t: HeldTask, maxDecompressed?: number): { args: string; kwargs: string } {
  if (t.req.argsrepr !== null) return { args: t.req.argsrepr, kwargs: t.req.kwargsrepr ?? "{}" };
  const { args, kwargs } = decodedArgs(t, maxDecompressed);
  return {
    args: typeof args === "string" ? args : argsRepr(args as unknown[]),
    kwargs: typeof kwargs === "string" ? kwargs : kwargsRepr(kwargs as Record<string, unknown>),
  };
}

function decodedArgs(t: HeldTask, maxDecompressed?: number): { args: unknown; kwargs: unknown } {
  try {
    const body = t.req.body ?? decodeTaskBody(t.delivery, t.req.id, maxDecompressed);
    return { args: body.args, kwargs: body.kwargs };
  } catch {
    return { args: t.req.argsrepr ?? "", kwargs: t.req.kwargsrepr ?? "" };
  }
}

/**
 * A task held for its ETA, as `inspect scheduled` lists it.
 *
 * @example
 * ```ts
 * import { type HeldTask, scheduledInfo } from "@celeriac/celeriac/worker";
 * const etaOf = (task: HeldTask) => scheduledInfo(task, "celeriac@host", false).eta;
 * // "2026-01-01T00:00:00.000000+00:00"
 * ```
 *
 * @param t the task (its `req.eta` is set)
 * @param hostname node name
 * @param safe repr strings for the arguments
 * @param maxDecompressed the most bytes a compressed body may decompress to (the worker's
 *   `maxDecompressedSize`)
 * @returns `{ eta, priority, request }`
 */
export function scheduledInfo(
  t: HeldTask,
  hostname: string,
  safe: boolean,
  maxDecompressed?: number,
): ScheduledInfo {
  return {
    eta: etaText(t.req),
    priority: 6,
    request: requestInfo(t, { hostname, safe, started: false, maxDecompressed }),
  };
}

/**
 * A task's ETA as Celery prints it (ISO 8601 with `+00:00`): the header's
 * own text when it has that form (microseconds kept), else the parsed date.
 *
 * @example
 * ```ts
 * import { decodeTaskHeaders, encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const req = decodeTaskHeaders(encodeTaskMessage({
 *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
 *   now: new Date(), origin: "gen1@host", replyTo: crypto.randomUUID(),
 * }));
 * etaText(req); // null: no ETA ("2026-11-24T03:19:24.525537+00:00" with one)
 * ```
 *
 * @param req the task's headers
 * @returns the ETA, or null without one
 */
export function etaText(req: TaskRequest): string | null {
  const raw = req.headers.eta;
  if (typeof raw === "string" && /^\d{4}-\d\d-\d\dT[\d:.]+\+00:00$/.test(raw)) return raw;
  return req.eta ? pyIsoFormat(req.eta, "+00:00") : null;
}

/**
 * A consumed queue as kombu describes it (`inspect active_queues`): a
 * durable queue bound to the direct exchange of the same name, or to the
 * exchange `add_consumer` bound it to.
 *
 * @example
 * ```ts
 * import { queueInfo } from "@celeriac/celeriac/worker";
 * queueInfo("celery").exchange; // { name: "celery", type: "direct", ... }
 * queueInfo("orders", { exchange: "events", type: "topic", routingKey: "order.*" }).routing_key; // "order.*"
 * ```
 *
 * @param name queue name
 * @param binding its binding to a named exchange, if any
 * @returns the description
 */
export function queueInfo(name: string, binding?: QueueBinding): Record<string, unknown> {
  return {
    name,
    exchange: {
      name: binding?.exchange ?? name,
      type: binding?.type ?? "direct",
      arguments: null,
      durable: true,
      passive: false,
      auto_delete: false,
      delivery_mode: null,
      no_declare: false,
    },
    routing_key: binding?.routingKey ?? name,
    queue_arguments: null,
    binding_arguments: null,
    consumer_arguments: null,
    durable: true,
    exclusive: false,
    auto_delete: false,
    no_ack: false,
    alias: null,
    bindings: [],
    no_declare: null,
    expires: null,
    message_ttl: null,
    max_length: null,
    max_length_bytes: null,
    max_priority: null,
  };
}

/**
 * The connection fields of `inspect stats` `broker`, from a broker URL
 * (password left out).
 *
 * @example
 * ```ts
 * import { brokerInfo } from "@celeriac/celeriac/worker";
 * brokerInfo("redis://127.0.0.1:6379/2").virtual_host; // "2"
 * ```
 *
 * @param url the broker URL
 * @returns hostname, userid, virtual_host, port, ssl, transport, ...
 */
export function brokerInfo(url: string): Record<string, unknown> {
  let u: URL | null = null;
  try {
    u = new URL(url);
  } catch {
    u = null;
  }
  const scheme = u?.protocol.replace(":", "") ?? url.split(":")[0];
  const transport = scheme === "rediss" ? "redis" : scheme === "amqps" ? "amqp" : scheme;
  const defaultPort = transport === "amqp" ? (scheme === "amqps" ? 5671 : 5672) : 6379;
  const path = decodeURIComponent(u?.pathname.replace(/^\//, "") ?? "");
  return {
    hostname: u?.hostname || null,
    userid: u?.username ? decodeURIComponent(u.username) : null,
    virtual_host: transport === "amqp" ? path || "/" : path || "0",
    port: u?.port ? Number(u.port) : transport === "kv" ? null : defaultPort,
    insist: false,
    ssl: scheme === "amqps" || scheme === "rediss",
    transport,
    connect_timeout: 4,
    transport_options: {},
    login_method: null,
    uri_prefix: null,
    heartbeat: 120.0,
    failover_strategy: "round-robin",
    alternates: [],
  };
}

/**
 * The app's settings under Celery's names, for `inspect conf`: the ones
 * set to something other than Celery's default, or all with `withDefaults`.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { confReply } from "@celeriac/celeriac/worker";
 * const app = new Celery({ broker: "redis://h/0", defaultQueue: "jobs" });
 * confReply(app.config, false);
 * // { broker_url: "redis://h/0", result_backend: null, task_default_queue: "jobs", ... }
 * ```
 *
 * @param config the app's configuration
 * @param withDefaults include settings left at their default
 * @returns setting name → value
 */
export function confReply(config: ResolvedConfig, withDefaults: boolean): Record<string, unknown> {
  const all: [string, unknown, unknown][] = [
    ["broker_url", redact(config.broker), null],
    ["result_backend", config.backend === null ? null : redact(config.backend), null],
    ["task_default_queue", config.defaultQueue, "celery"],
    ["task_serializer", config.taskSerializer, "json"],
    ["task_compression", config.taskCompression, null],
    ["result_expires", config.resultExpires, 86400],
    ["result_extended", config.resultExtended, false],
    ["broker_transport_options", { visibility_timeout: config.visibilityTimeout }, {}],
    ["worker_send_task_events", config.workerSendTaskEvents, false],
    ["task_send_sent_event", config.taskSendSentEvent, false],
  ];
  const out: Record<string, unknown> = {};
  for (const [name, value, def] of all) {
    const isDefault = JSON.stringify(value) === JSON.stringify(def) ||
      (name === "broker_transport_options" && config.visibilityTimeout === 3600);
    if (withDefaults || !isDefault || name === "broker_url" || name === "result_backend") {
      out[name] = value;
    }
  }
  return out;
}

/**
 * A URL with its passwords replaced by `**` (Celery's `maybe_sanitize_url`), every one
 * `maskPassword` finds (one with an unencoded `@`, `/`, `,` or `;`, each of a Sentinel list).
 */
function redact(url: string): string {
  return maskPassword(url, { mask: "**" });
}

/**
 * The text of `inspect report`: software, platform, settings.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { reportText } from "@celeriac/celeriac/worker";
 * const config = new Celery({ broker: "kv://:memory:" }).config;
 * reportText(config, "0.1.0").startsWith("\nsoftware -> celeriac:0.1.0"); // true
 * ```
 *
 * @param config the app's configuration
 * @param version Celeriac's version
 * @returns the report
 */
export function reportText(config: ResolvedConfig, version: string): string {
  const conf = confReply(config, false);
  const transport = String(brokerInfo(config.broker).transport);
  return [
    "",
    `software -> celeriac:${version} deno:${Deno.version.deno} v8:${Deno.version.v8}`,
    `            typescript:${Deno.version.typescript}`,
    `platform -> system:${Deno.build.os} arch:${Deno.build.arch}`,
    `settings -> transport:${transport} results:${conf.result_backend ?? "disabled"}`,
    "",
    ...Object.entries(conf).map(([k, v]) => `${k}: ${pyRepr(v)}`),
    "",
  ].join("\n");
}
