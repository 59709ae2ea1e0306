/**
 * Opening with a signal that already aborted rejects at once with its
 * reason and opens nothing: no socket reaches the server (a silent
 * listener on a port reserved for this test counts what it accepts; never
 * a shared server), no KV file is created. KV honours the signal while opening too:
 * the open rejects with the reason and what it opened is released (the
 * process holds no file descriptor on the database file).
 */

import assert from "node:assert/strict";
import { Celery, NoResultBackendError } from "../mod.ts";
import { openBackend, openBroker, openScheduleStore } from "../protocol.ts";
import {
  openAmqpBroker,
  openKvBackend,
  openKvBroker,
  openKvScheduleStore,
  openRedisBackend,
  openRedisBroker,
  openRedisClusterBroker,
  openRedisScheduleStore,
  openRpcBackend,
} from "../transports.ts";
import { reservePorts } from "./helpers/ports.ts";
import { SilentServer } from "./helpers/silent_server.ts";

/** How many of this process's file descriptors are open on `file` (or its -wal, -shm). */
function openFds(file: string): number {
  let n = 0;
  for (const fd of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${fd.name}`).startsWith(file)) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

/** Long enough for a connect to 127.0.0.1 that was started to be accepted. */
const CONNECT_MS = 300;

/** Rejects with what `p` rejects with if it settles before the next timer turn ("at once"). */
async function atOnce(p: Promise<unknown>): Promise<unknown> {
  const late = new Promise((r) => setTimeout(() => r("still pending after a timer turn"), 0));
  const outcome = await Promise.race([p.then(() => "resolved", (e: unknown) => ({ e })), late]);
  if (typeof outcome === "object" && outcome !== null) throw (outcome as { e: unknown }).e;
  throw new Error(String(outcome));
}

/** Each transport's own opener (transports.ts), given an URL and a signal. */
type OwnOpen = (url: string, signal: AbortSignal) => Promise<{ close(): Promise<void> }>;

const TCP_CASES: readonly {
  name: string;
  kind: "broker" | "backend";
  url: (port: number) => string;
  own: OwnOpen;
}[] = [
  {
    name: "Redis broker",
    kind: "broker",
    url: (port: number) => `redis://127.0.0.1:${port}/0`,
    own: (url, signal) => openRedisBroker(url, { signal }),
  },
  {
    name: "Redis Cluster broker",
    kind: "broker",
    url: (port: number) => `redis+cluster://127.0.0.1:${port}/0`,
    own: (url, signal) => openRedisClusterBroker(url, { signal }),
  },
  {
    name: "RabbitMQ broker",
    kind: "broker",
    url: (port: number) => `amqp://guest:guest@127.0.0.1:${port}//`,
    own: (url, signal) => openAmqpBroker(url, { signal }),
  },
  {
    name: "Redis result backend",
    kind: "backend",
    url: (port: number) => `redis://127.0.0.1:${port}/0`,
    own: (url, signal) => openRedisBackend(url, { signal }),
  },
  {
    name: "rpc:// result backend",
    kind: "backend",
    url: (port: number) => `rpc://guest:guest@127.0.0.1:${port}//`,
    own: (url, signal) => openRpcBackend(url, { signal }),
  },
];

for (const c of TCP_CASES) {
  Deno.test(`an aborted signal opens no ${c.name}: app.${c.kind === "broker" ? "broker" : "resultBackend"}() and open*() reject with its reason, no connect`, async () => {
    using ports = reservePorts();
    await using server = new SilentServer(ports.base + 1);
    const url = c.url(ports.base + 1);
    const reason = new Error("gave up before opening");
    const signal = AbortSignal.abort(reason);
    const app = new Celery(
      c.kind === "broker"
        ? { broker: url, backend: null }
        : { broker: "kv://:memory:", backend: url },
    );
    try {
      const opened = c.kind === "broker" ? app.broker({ signal }) : app.resultBackend({ signal });
      await assert.rejects(atOnce(opened), (e) => e === reason);
      const direct = c.kind === "broker"
        ? openBroker(url, { signal })
        : openBackend(url, { signal });
      await assert.rejects(atOnce(direct), (e) => e === reason);
      // The transport's own check, not only openBroker's/openBackend's in front of it.
      await assert.rejects(atOnce(c.own(url, signal)), (e) => e === reason);
      await new Promise((r) => setTimeout(r, CONNECT_MS));
      assert.equal(server.connections, 0, "no connection reached the server");
    } finally {
      await app.close();
    }
  });
}

for (const kind of ["broker", "backend"] as const) {
  const open = kind === "broker" ? openBroker : openBackend;
  // Called straight, the KV opener is inside its open when it returns (openBroker is still
  // importing the module then, and would see the signal already aborted).
  const openKv = kind === "broker" ? openKvBroker : openKvBackend;

  Deno.test(`KV ${kind}: an aborted signal rejects with its reason and creates no database`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "celeriac-open-aborted-" });
    try {
      const file = `${dir}/sub/db.sqlite`;
      const reason = new Error("gave up before opening");
      await assert.rejects(
        open(`kv://${file}`, { signal: AbortSignal.abort(reason) }),
        (e) => e === reason,
      );
      await assert.rejects(
        openKv(`kv://${file}`, { signal: AbortSignal.abort(reason) }),
        (e) => e === reason,
      );
      await assert.rejects(Deno.stat(`${dir}/sub`), Deno.errors.NotFound);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`KV ${kind}: a signal aborted while opening rejects with its reason, the database is released`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "celeriac-open-aborted-" });
    try {
      const file = `${dir}/db.sqlite`;
      const stop = new AbortController();
      const reason = new Error("gave up while opening");
      const opening = openKv(`kv://${file}`, { signal: stop.signal });
      stop.abort(reason);
      await assert.rejects(opening, (e) => e === reason);
      assert.equal(openFds(file), 0, "the database file is closed");
      const again = await open(`kv://${file}`);
      assert.ok(openFds(file) > 0, "an open without a signal keeps it open");
      await again.close();
      assert.equal(openFds(file), 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("app.broker({ signal }) on KV: an aborted signal rejects with its reason; a later open works", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  try {
    const reason = new Error("gave up before opening");
    await assert.rejects(app.broker({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
    await assert.rejects(
      app.resultBackend({ signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
    assert.equal(await (await app.broker()).queueDepth("celery"), 0);
  } finally {
    await app.close();
  }
});

Deno.test("beat's schedule store: an aborted signal rejects with its reason and opens nothing", async () => {
  using ports = reservePorts();
  await using server = new SilentServer(ports.base + 1);
  const reason = new Error("gave up before opening");
  const signal = AbortSignal.abort(reason);
  const redis = `redis://127.0.0.1:${ports.base + 1}/0`;
  await assert.rejects(atOnce(openScheduleStore(redis, { signal })), (e) => e === reason);
  await assert.rejects(atOnce(openRedisScheduleStore(redis, { signal })), (e) => e === reason);
  const dir = await Deno.makeTempDir({ prefix: "celeriac-open-aborted-" });
  try {
    const kv = `kv://${dir}/sub/db.sqlite`;
    await assert.rejects(openScheduleStore(kv, { signal }), (e) => e === reason);
    await assert.rejects(openKvScheduleStore(kv, { signal }), (e) => e === reason);
    await assert.rejects(Deno.stat(`${dir}/sub`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await new Promise((r) => setTimeout(r, CONNECT_MS));
  assert.equal(server.connections, 0, "no connection reached the server");
});

Deno.test("beat's KV schedule store: a signal aborted while opening rejects with its reason, the database is released", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-open-aborted-" });
  try {
    const file = `${dir}/db.sqlite`;
    const stop = new AbortController();
    const reason = new Error("gave up while opening");
    const opening = openKvScheduleStore(`kv://${file}`, { signal: stop.signal });
    stop.abort(reason);
    await assert.rejects(opening, (e) => e === reason);
    assert.equal(openFds(file), 0, "the database file is closed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("app.resultBackend({ signal }) with no backend configured rejects with NoResultBackendError, also when the signal already aborted", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  try {
    const reason = new Error("gave up before opening");
    await assert.rejects(app.resultBackend(), NoResultBackendError);
    await assert.rejects(
      app.resultBackend({ signal: AbortSignal.abort(reason) }),
      NoResultBackendError,
    );
  } finally {
    await app.close();
  }
});
