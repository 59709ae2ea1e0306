/**
 * A refused login and a refused virtual host on RabbitMQ: the connect error
 * says which, and what to change, and is not retried (only a change of the
 * URL or of the server's users and vhosts fixes it).
 */

import assert from "node:assert/strict";
import { openBroker } from "../protocol.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { Celery } from "../mod.ts";
import { createVhost, RABBITMQ_URL, setPermissions } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `amqp connect errors: ${name}`, ignore: WITHOUT_RABBITMQ }, fn);

const base = new URL(RABBITMQ_URL);

async function refusal(url: string): Promise<BrokerConnectionError> {
  const err = await openBroker(url).then(
    async (broker) => {
      await broker.close();
      throw new Error(`${url} was accepted`);
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof BrokerConnectionError, String(err));
  return err;
}

test("a virtual host that does not exist is named, with the commands that create it", async () => {
  const vhost = `celeriac-test-missing-${crypto.randomUUID().slice(0, 8)}`;
  const err = await refusal(`amqp://${base.username}:${base.password}@${base.host}/${vhost}`);
  assert.match(
    err.message,
    new RegExp(
      `RabbitMQ refused to open the virtual host "${vhost}" for user "${base.username}": ` +
        "it does not exist, or the user has no permissions on it",
    ),
  );
  assert.match(err.message, new RegExp(`rabbitmqctl add_vhost '${vhost}'`));
  assert.equal(err.transient, false);
});

test("a wrong password says the login was refused and is not retried", async () => {
  const err = await refusal(`amqp://${base.username}:wrong-${crypto.randomUUID()}@${base.host}//`);
  assert.match(
    err.message,
    new RegExp(`RabbitMQ refused the login of user "${base.username}": the user name or password`),
  );
  assert.equal(err.transient, false);
});

test("a declaration the user may not make says which permission to grant, and how", async () => {
  const vhost = await createVhost("noconf");
  await setPermissions(vhost.name, base.username, "^$", ".*", ".*");
  const app = new Celery({ broker: vhost.url(), backend: null });
  try {
    await assert.rejects(
      app.sendTask("tasks.add", [1, 2], { queue: "refused_q" }),
      (e: Error) => {
        assert.match(
          e.message,
          new RegExp(
            `^RabbitMQ refused user '${base.username}' the declaration of exchange 'refused_q' ` +
              `in vhost '${vhost.name}' \\(.*\\)\\. Grant the user configure, write and read ` +
              `permissions that match it: rabbitmqctl set_permissions -p '${vhost.name}' `,
          ),
        );
        return true;
      },
    );
  } finally {
    await app.close();
    await vhost.remove();
  }
});
