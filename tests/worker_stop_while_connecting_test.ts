/**
 * stop() / terminate() while the worker's start-up connect hangs: a server
 * that accepts the TCP connection and never answers (Redis: no reply to
 * the ready check; RabbitMQ: no protocol handshake). The shutdown aborts
 * the connect: start() resolves without an error within a second or two
 * (not after ioredis's never or amqplib's 10 s timeout), `finished`
 * resolves, and the socket the connect opened is closed (the server reads
 * its end). "Shutdown asked for while starting" is logged once, even for a
 * stop followed by a terminate. The silent server listens on a port block
 * reserved for this test (never the shared servers). A declaration that
 * hangs (a private redis-server paused for writes) no longer holds start()
 * either. A signal aborted after the open finished (the CLI aborts its
 * start-up signal once connected) leaves the connection up.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { captureLogs } from "./helpers/logs.ts";
import { Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { reservePorts } from "./helpers/ports.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { SilentServer } from "./helpers/silent_server.ts";

/** start() must end this soon after the shutdown (ioredis would wait forever, amqplib 10 s). */
const PROMPT_MS = 3000;

/** Resolves when the peer closed `conn` (what it sent is read and ignored). */
async function closedByPeer(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(1024);
  while ((await conn.read(buf).catch(() => null)) !== null) { /* the client's hello */ }
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const CASES = [
  { name: "Redis broker", urls: (port: number) => ({ broker: `redis://127.0.0.1:${port}/0` }) },
  {
    name: "RabbitMQ broker",
    urls: (port: number) => ({ broker: `amqp://guest:guest@127.0.0.1:${port}//` }),
  },
  {
    name: "Redis result backend",
    urls: (port: number) => ({ broker: "kv://:memory:", backend: `redis://127.0.0.1:${port}/0` }),
  },
  {
    name: "rpc:// result backend",
    urls: (port: number) => ({
      broker: "kv://:memory:",
      backend: `rpc://guest:guest@127.0.0.1:${port}//`,
    }),
  },
];

for (const c of CASES) {
  for (const action of ["stop", "terminate", "stop, then terminate"] as const) {
    Deno.test(`${action} while connecting to a silent ${c.name}: start() ends at once, the socket is closed`, async () => {
      using ports = reservePorts();
      await using server = new SilentServer(ports.base + 1);
      const urls = c.urls(ports.base + 1);
      const app = new Celery({ backend: null, ...urls });
      const worker = new Worker({ app, pool: "inline", queues: ["q"] });
      const starting = worker.start().then(() => null, (e: unknown) => e);
      const conn = await within(server.accepted, PROMPT_MS, "the connect");
      const shutdowns = action === "stop"
        ? [worker.stop()]
        : action === "terminate"
        ? [worker.terminate()]
        : [worker.stop(), worker.terminate()];
      assert.equal(await within(starting, PROMPT_MS, "start()"), null, "start() resolves");
      await within(Promise.all(shutdowns), PROMPT_MS, action);
      await within(worker.finished, PROMPT_MS, "finished");
      await within(closedByPeer(conn), PROMPT_MS, "closing the socket");
      await app.close();
    });
  }
}

Deno.test("stop, then terminate while connecting: 'shutdown asked for while starting' is logged once", async () => {
  const records = await captureLogs("info", ["celeriac", "worker"]);
  try {
    using ports = reservePorts();
    await using server = new SilentServer(ports.base + 1);
    const app = new Celery({ broker: `redis://127.0.0.1:${ports.base + 1}/0`, backend: null });
    const worker = new Worker({ app, pool: "inline", queues: ["q"] });
    const starting = worker.start();
    await within(server.accepted, PROMPT_MS, "the connect");
    await within(Promise.all([worker.stop(), worker.terminate(), starting]), PROMPT_MS, "shutdown");
    await app.close();
    const asked = records.filter((r) => String(r.rawMessage).includes("while starting"));
    assert.equal(asked.length, 1, `logged once, got ${asked.length}`);
  } finally {
    await reset();
  }
});

Deno.test("app.broker({ signal }): a caller joining an open under way only stops waiting", async () => {
  using ports = reservePorts();
  await using server = new SilentServer(ports.base + 1);
  const app = new Celery({ broker: `redis://127.0.0.1:${ports.base + 1}/0`, backend: null });
  const owner = new AbortController();
  const joiner = new AbortController();
  let settled = false;
  const opening = app.broker({ signal: owner.signal }).then(() => null, (e: unknown) => e)
    .finally(() => settled = true);
  const conn = await within(server.accepted, PROMPT_MS, "the connect");
  const joined = app.broker({ signal: joiner.signal }).then(() => null, (e: unknown) => e);
  joiner.abort(new Error("joiner gave up"));
  assert.equal(((await joined) as Error).message, "joiner gave up");
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(settled, false, "the open goes on");
  owner.abort(new Error("owner gave up"));
  assert.equal(((await within(opening, PROMPT_MS, "the open")) as Error).message, "owner gave up");
  await within(closedByPeer(conn), PROMPT_MS, "closing the socket");
  await app.close();
});

/** `redis-cli -p <port> <args>` (the private server's own client, never the shared server). */
async function redisCli(port: number, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("redis-cli", { args: ["-p", String(port), ...args] }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

Deno.test("stop while declaring the queues on a Redis server that stopped answering writes: start() ends at once", async () => {
  const redis = await PrivateRedis.start();
  const app = new Celery({ broker: redis.url, backend: null });
  try {
    await app.broker();
    // Writes wait (the queue's kombu binding is an SADD) until unpaused or 60 s.
    await redisCli(redis.port, "CLIENT", "PAUSE", "60000", "WRITE");
    const worker = new Worker({ app, pool: "inline", queues: ["q"] });
    const starting = worker.start().then(() => null, (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    const stopping = worker.stop();
    assert.equal(await within(starting, PROMPT_MS, "start()"), null, "start() resolves");
    await within(stopping, PROMPT_MS, "stop()");
  } finally {
    await redisCli(redis.port, "CLIENT", "UNPAUSE");
    await app.close();
    await redis.close();
  }
});

const OPENED = [
  {
    name: "RabbitMQ broker",
    urls: { broker: "amqp://guest:guest@127.0.0.1:5672//" },
    open: (app: Celery, signal: AbortSignal) => app.broker({ signal }),
  },
  {
    name: "rpc:// result backend",
    urls: { broker: "kv://:memory:", backend: "rpc://guest:guest@127.0.0.1:5672//" },
    open: (app: Celery, signal: AbortSignal) => app.resultBackend({ signal }),
  },
  {
    name: "Redis broker",
    urls: { broker: "redis://127.0.0.1:6379/0" },
    open: (app: Celery, signal: AbortSignal) => app.broker({ signal }),
  },
  {
    name: "Redis result backend",
    urls: { broker: "kv://:memory:", backend: "redis://127.0.0.1:6379/0" },
    open: (app: Celery, signal: AbortSignal) => app.resultBackend({ signal }),
  },
];

// The CLI aborts its start-up signal once connected: before, RabbitMQ's socket kept that signal
// (net.connect holds it for the socket's life), was destroyed by it and reconnected
// ("Lost the connection …: The operation was aborted"). Nothing is declared on the servers.
for (const c of OPENED) {
  Deno.test(`a signal aborted after the ${c.name} opened leaves its connection up`, async () => {
    const records = await captureLogs("warning");
    const app = new Celery({ backend: null, ...c.urls });
    try {
      const opening = new AbortController();
      await c.open(app, opening.signal);
      opening.abort(new Error("start-up over"));
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(records.map((r) => r.message.join("")), [], "no connection lost");
    } finally {
      await app.close();
      await reset();
    }
  });
}
