/**
 * The AMQP URL Celery's rpc:// result backend stands for, apart from the
 * backend itself so that a command line checking its flags does not load
 * the AMQP client.
 *
 * @module
 */

/**
 * The AMQP URL an rpc URL stands for: `rpc://` alone means the broker's
 * (`brokerUrl`); `rpc://user:pass@host:port/vhost` names the server itself.
 *
 * @example
 * ```ts
 * import { rpcAmqpUrl } from "@celeriac/celeriac/transports";
 * rpcAmqpUrl("rpc://", "amqp://mq//"); // "amqp://mq//"
 * rpcAmqpUrl("rpc://guest:guest@mq:5672/prod"); // "amqp://guest:guest@mq:5672/prod"
 * ```
 *
 * @param url the `rpc://` URL
 * @param brokerUrl the app's broker URL
 * @returns an `amqp://` or `amqps://` URL
 * @throws {TypeError} when neither names a RabbitMQ server
 */
export function rpcAmqpUrl(url: string, brokerUrl?: string): string {
  const rest = url.replace(/^rpc:\/\//i, "");
  if (rest !== "" && rest !== "/") return `amqp://${rest}`;
  if (brokerUrl && /^amqps?:\/\//i.test(brokerUrl)) return brokerUrl;
  throw new TypeError(
    `The rpc:// result backend sends results through RabbitMQ: use an amqp:// broker ` +
      `(got ${
        brokerUrl ? `"${brokerUrl.split(":")[0]}://…"` : "none"
      }) or rpc://user:pass@host/vhost`,
  );
}
