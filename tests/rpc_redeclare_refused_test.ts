/**
 * An rpc:// client's reply queue deleted while RabbitMQ refuses to declare
 * it again (the user lost its configure permission on the vhost): the
 * consumer retries with a growing delay, not in a tight loop; a send waits
 * for the queue at most the publish timeout, then rejects with a
 * `ResultConnectionLostError`; a `get({ timeout })` ends at its timeout.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { Celery, ResultConnectionLostError, TimeoutError } from "../mod.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { createVhost, listQueues, rabbitmqctl, setPermissions } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_RABBITMQ;

/** How `p` settled, or that it had not after `ms` (a hang reported, not waited for). */
function settled(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.then((v) => ({ value: v }), (e) => ({ error: e })),
    new Promise((ok) => timer = setTimeout(() => ok("pending"), ms)),
  ]).finally(() => clearTimeout(timer));
}

Deno.test({ name: "rpc reply queue deleted, re-declaring refused", ignore }, async () => {
  const vhost = await createVhost("rpcredecl");
  const user = `celeriac-test-rpcredecl-${crypto.randomUUID().slice(0, 8)}`;
  await rabbitmqctl("add_user", user, "pw");
  const records = await captureLogs("warning");
  const base = new URL(vhost.url("publish_timeout=1"));
  base.username = user;
  base.password = "pw";
  const app = new Celery({ broker: base.href, backend: "rpc://" });
  try {
    await setPermissions(vhost.name, user, ".*", ".*", ".*");
    await app.sendTask("rpcredecl.none", []);
    const reply = (await listQueues(vhost.name)).map((q) => q.name).filter((n) => n !== "celery");
    assert.equal(reply.length, 1, `one reply queue: ${reply}`);
    await setPermissions(vhost.name, user, "^$", ".*", ".*");
    await rabbitmqctl("delete_queue", "-p", vhost.name, reply[0]);
    await new Promise((ok) => setTimeout(ok, 2500));
    const retries = records.map(logLine).filter((l) => l.includes("Consuming reply queue"));
    // Waits of 1 s then 2 s between tries: at most 3 in 2.5 s (without a delay: hundreds).
    assert.ok(retries.length >= 1 && retries.length <= 3, `tries in 2.5 s: ${retries.length}`);
    const sent = await settled(app.sendTask("rpcredecl.none", []), 20_000);
    const sendError = (sent as { error?: unknown }).error;
    assert.ok(sendError instanceof ResultConnectionLostError, `sendTask: ${Deno.inspect(sent)}`);
    assert.equal(sendError.code, "RESULT_CONNECTION_LOST");
    assert.match(sendError.message, /could not|kept failing/);
    assert.match(sendError.message, /ACCESS_REFUSED/);
    const got = await settled(app.asyncResult(crypto.randomUUID()).get({ timeout: 1000 }), 20_000);
    const getError = (got as { error?: unknown }).error;
    assert.ok(getError instanceof TimeoutError, `get({ timeout: 1000 }): ${Deno.inspect(got)}`);
  } finally {
    await setPermissions(vhost.name, user, ".*", ".*", ".*");
    await app.close();
    await reset();
    await vhost.remove();
    await rabbitmqctl("delete_user", user);
  }
});
