/**
 * The broker URL schemes kombu reads as `amqp://`: a broker URL written for
 * Celery (its tutorial's `pyamqp://`) opens the same RabbitMQ here.
 *
 * @module
 */

/**
 * Schemes kombu 5.2 maps to its AMQP transports besides `amqp` and `amqps`:
 * `pyamqp` (py-amqp, the client Celery uses for `amqp://` too) and
 * `librabbitmq` (the C client, when installed). Both speak AMQP 0-9-1 to
 * the same server, so here they are `amqp://`. Result backends have no such
 * aliases.
 *
 * @example
 * ```ts
 * import { AMQP_ALIASES } from "./amqp_aliases.ts";
 * AMQP_ALIASES.includes("pyamqp"); // true
 * ```
 */
export const AMQP_ALIASES: readonly string[] = ["pyamqp", "librabbitmq"];

/**
 * A broker URL with kombu's alias schemes of `amqp://` written as `amqp://`
 * (`pyamqp://guest@mq//` is `amqp://guest@mq//`, as
 * `Celery(broker=...).connection().as_uri()` shows it); any other URL as it is.
 *
 * @example
 * ```ts
 * import { canonicalBrokerUrl } from "./amqp_aliases.ts";
 * canonicalBrokerUrl("pyamqp://guest:guest@127.0.0.1:5672//"); // "amqp://guest:guest@127.0.0.1:5672//"
 * canonicalBrokerUrl("redis://127.0.0.1:6379/0"); // unchanged
 * ```
 *
 * @param url a broker URL
 * @returns the URL with `amqp:` for an alias scheme
 */
export function canonicalBrokerUrl(url: string): string {
  const colon = url.indexOf(":");
  return colon > 0 && AMQP_ALIASES.includes(url.slice(0, colon).toLowerCase())
    ? `amqp${url.slice(colon)}`
    : url;
}
