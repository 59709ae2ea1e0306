/**
 * The `expires` header of remote-control requests, as Celery 5.2 (kombu
 * 5.2's `Mailbox._publish`) sends it: `time() + timeout` for calls and for
 * casts alike (a cast goes with `Control.broadcast`'s default timeout, 1 s),
 * 0 only for a timeout of 0. Workers do not check it: a Celery 5.2 worker
 * (kombu's `Node.handle_message` / `dispatch`) answers a request whose
 * `expires` has passed, and so does a Celeriac worker.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import type { Message } from "../protocol.ts";
import {
  CAST_TIMEOUT,
  controlExpires,
  encodeControlRequest,
  PIDBOX_EXCHANGE,
  PIDBOX_REPLY_EXCHANGE,
} from "../src/protocol/control.ts";
import type { Broker } from "../src/broker/port.ts";
import { interopWorker, pythonEnv } from "./helpers/interop.ts";
import { celeryWorker } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_REDIS } from "./helpers/services.ts";

const FIXTURES = new URL("../../shared/fixtures/celery-5.2/redis/worker/", import.meta.url);
const prefix = uniquePrefix("ctl-expires");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

/** The first request a fixture recorded: when it was published, and its headers. */
async function recorded(name: string): Promise<{ t: number; headers: Record<string, unknown> }> {
  const fixture = JSON.parse(await Deno.readTextFile(new URL(name, FIXTURES)));
  const [first] = fixture.requests_published;
  return { t: first.t, headers: JSON.parse(first.raw).headers };
}

Deno.test("control expires: kombu's time() + timeout, or 0 for no timeout", () => {
  assert.equal(controlExpires(1, 1_795_490_307_808), 1_795_490_308.808);
  assert.equal(controlExpires(2.5, 1_000_000), 1_002.5);
  assert.equal(controlExpires(0, 1_000_000), 0);
  assert.equal(CAST_TIMEOUT, 1);
});

Deno.test("control expires: Celery 5.2's recorded cast and call both expire a timeout after sending", async () => {
  // app.control.heartbeat(): a cast (no ticket, no reply_to), with the broadcast's default 1 s
  const cast = await recorded("control_heartbeat_cast.json");
  const castTtl = Number(cast.headers.expires) - cast.t;
  assert.ok(castTtl > 0.9 && castTtl <= 1.0, `cast: expires ${castTtl} s after sending`);
  // app.control.ping(): a call, its timeout (1 s) likewise
  const call = await recorded("control_ping.json");
  const callTtl = Number(call.headers.expires) - call.t;
  assert.ok(callTtl > 0.9 && callTtl <= 1.0, `call: expires ${callTtl} s after sending`);
});

/** Record what is broadcast on `celery.pidbox` while `fn` runs. */
async function captured(broker: Broker, fn: () => Promise<unknown>): Promise<Message[]> {
  const got: Message[] = [];
  const stop = new AbortController();
  await broker.subscribe(PIDBOX_EXCHANGE, (m) => got.push(m), {
    signal: stop.signal,
    queue: `capture-${crypto.randomUUID()}.${PIDBOX_EXCHANGE}`,
  });
  try {
    await fn();
    const until = Date.now() + 3000;
    while (got.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    return got;
  } finally {
    stop.abort();
  }
}

Deno.test({
  name:
    "control expires on redis: a Celeriac client's casts expire 1 s after sending, its calls their timeout",
  ignore: WITHOUT_REDIS,
}, async () => {
  const app = new Celery({ broker: BROKER, backend: null });
  const broker = await app.broker();
  try {
    const expiresIn = async (fn: () => Promise<unknown>) => {
      const sent = Date.now() / 1000;
      const [m] = await captured(broker, fn);
      return Number(m.headers.expires) - sent;
    };
    const heartbeat = await expiresIn(() => app.control.broadcast("heartbeat"));
    assert.ok(heartbeat > 0.9 && heartbeat < 1.5, `heartbeat cast: expires in ${heartbeat} s`);
    const revoke = await expiresIn(() => app.control.revoke(crypto.randomUUID()));
    assert.ok(revoke > 0.9 && revoke < 1.5, `revoke cast: expires in ${revoke} s`);
    const receiving = new AbortController();
    const wakeup = await expiresIn(async () => {
      const events = app.events.receive({ signal: receiving.signal, wakeup: true });
      events.next().catch(() => {});
      await new Promise((r) => setTimeout(r, 200));
    });
    receiving.abort();
    assert.ok(wakeup > 0.9 && wakeup < 1.5, `an event receiver's wakeup: expires in ${wakeup} s`);
    const ping = await expiresIn(() => app.control.ping({ timeout: 2.5 }));
    assert.ok(ping > 2.4 && ping < 3, `ping call: expires in ${ping} s`);
  } finally {
    await app.close();
  }
});

/** Send `ping` with a given `expires` header and collect the replies for `ms`. */
async function pingExpired(broker: Broker, expires: number, ms: number): Promise<unknown[]> {
  const key = crypto.randomUUID();
  const ticket = crypto.randomUUID();
  const replies: unknown[] = [];
  const stop = new AbortController();
  await broker.subscribe(PIDBOX_REPLY_EXCHANGE, (m) => {
    if (m.headers.ticket === ticket) replies.push(JSON.parse(new TextDecoder().decode(m.body)));
  }, { signal: stop.signal, queue: `${key}.${PIDBOX_REPLY_EXCHANGE}`, bindingKey: key });
  try {
    await broker.broadcast(
      PIDBOX_EXCHANGE,
      encodeControlRequest({
        method: "ping",
        arguments: {},
        destination: null,
        ticket,
        replyTo: { exchange: PIDBOX_REPLY_EXCHANGE, routingKey: key },
      }, { clock: 1, expires }),
    );
    await new Promise((r) => setTimeout(r, ms));
    return replies;
  } finally {
    stop.abort();
  }
}

Deno.test({
  name:
    "control expires on redis: Celery 5.2 and Celeriac workers both answer a request whose expires has passed",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-expires-${crypto.randomUUID().slice(0, 8)}`;
  const node = `celeriac-${queue}@expires`;
  const py = await celeryWorker(
    ["-P", "solo", "-Q", queue, "-n", `py-${queue}@expires`],
    pythonEnv({ broker: REDIS_URL, backend: REDIS_URL }, queue, prefix),
  );
  const ts = await interopWorker({ broker: BROKER, backend: REDIS_URL }, queue, [
    "-c",
    "1",
    "-n",
    node,
  ]);
  const app = new Celery({ broker: BROKER, backend: null });
  try {
    const replies = await pingExpired(await app.broker(), Date.now() / 1000 - 60, 2000);
    assert.deepEqual(
      replies.map((r) => Object.keys(r as object)[0]).sort(),
      [node, `py-${queue}@expires`].sort(),
    );
    for (const r of replies) assert.deepEqual(Object.values(r as object), [{ ok: "pong" }]);
  } finally {
    await app.close();
    await ts.stop();
    await py.stop();
  }
});

Deno.test({ name: "control expires: clean up keys", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
});
