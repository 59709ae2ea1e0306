/**
 * What a failed RabbitMQ connect or declaration means, with what to change:
 * amqplib's messages for a refused login and for a refused virtual host say
 * neither (the second one drops RabbitMQ's reply text altogether), and a
 * declaration the user's permissions do not cover names no command. Pure:
 * errors and the parsed URL in, words out.
 *
 * @module
 */

import type { AmqpUrlOptions } from "./amqp_url.ts";

/**
 * Say which of the usual connect failures happened, with what to change;
 * `transient: false` for those that only a change of the URL or of the
 * server's users and vhosts fixes.
 *
 * @example
 * ```ts
 * import { parseAmqpUrl } from "@celeriac/celeriac/transports";
 * describeAmqpFailure(
 *   new Error("Expected ConnectionOpenOk; got <ConnectionClose channel:0>"),
 *   parseAmqpUrl("amqp://guest:guest@127.0.0.1/billing"),
 * )?.reason;
 * // 'RabbitMQ refused to open the virtual host "billing" for user "guest" (...)'
 * ```
 *
 * @param err what amqplib reported
 * @param url the parsed URL that was tried
 * @returns the reason and what to change, or `undefined` for another failure
 */
export function describeAmqpFailure(
  err: unknown,
  url: AmqpUrlOptions,
): { reason: string; hint?: string; transient?: boolean } | undefined {
  const message = err instanceof Error ? err.message : String(err);
  if (/ACCESS[-_]REFUSED/.test(message)) {
    return {
      reason: `RabbitMQ refused the login of user "${url.username}": the user name or ` +
        `password is wrong, or the user may not log in from here (${message})`,
      hint: "Fix the credentials in the URL (amqp://user:password@host:port/vhost) or the " +
        "user on the server (rabbitmqctl list_users; guest may only log in from localhost)",
      transient: false,
    };
  }
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(message)) {
    const vhost = url.vhost;
    const quoted = vhost.includes("'") ? `"${vhost}"` : `'${vhost}'`;
    return {
      reason: `RabbitMQ refused to open the virtual host "${vhost}" for user ` +
        `"${url.username}": it does not exist, or the user has no permissions on it`,
      hint: `Create it and grant them (rabbitmqctl add_vhost ${quoted}; rabbitmqctl ` +
        `set_permissions -p ${quoted} ${url.username} '.*' '.*' '.*'), or fix the vhost, ` +
        "the URL's path (amqp://host:5672/name; RabbitMQ's default vhost / is // or /%2F)",
      transient: false,
    };
  }
  return undefined;
}

/** RabbitMQ's text for a declaration the user's permissions do not cover. */
const ACCESS_TO = /access to (queue|exchange) '(.*?)' in vhost '(.*?)' refused for user '(.*?)'/;

/**
 * RabbitMQ's refusal of a declaration the user may not make (403
 * ACCESS_REFUSED on a channel: its configure permission does not match the
 * name), with the command that grants it; other errors as they are. The
 * error keeps amqplib's `code`, so callers that test it still can.
 *
 * @example
 * ```ts ignore
 * await channel.assertQueue("q1").catch((err) => { throw explainRefusedAccess(err); });
 * // Error: ... refused for user 'guest'. Grant it: rabbitmqctl set_permissions -p 'v' guest '.*' '.*' '.*' ...
 * ```
 *
 * @param err what amqplib reported
 * @returns the explained error, or `err` itself
 */
export function explainRefusedAccess(err: unknown): unknown {
  if (!(err instanceof Error) || (err as Error & { code?: unknown }).code !== 403) return err;
  const m = ACCESS_TO.exec(err.message);
  if (!m) return err;
  const [, what, name, vhost, user] = m;
  const explained = new Error(
    `RabbitMQ refused user '${user}' the declaration of ${what} '${name}' in vhost '${vhost}' ` +
      `(${err.message}). Grant the user configure, write and read permissions that match it: ` +
      `rabbitmqctl set_permissions -p '${vhost}' ${user} '.*' '.*' '.*', or regular expressions ` +
      "covering the task queues and exchanges and those Celery and Celeriac use (celery.pidbox, " +
      "reply.celery.pidbox, celeryev, celeriac.parked, celeriac.parked.scan-lock, " +
      "celeriac.revoked and the reply and event queues, named by uuid)",
    { cause: err },
  );
  return Object.assign(explained, { code: 403 });
}
