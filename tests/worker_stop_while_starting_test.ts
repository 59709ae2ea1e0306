/**
 * stop() / terminate() while start() is still under way (the CLI's
 * SIGINT / SIGTERM handlers are installed before the worker is ready): at
 * every step of start-up (connecting, declaring the queues, reading the
 * revoked ids, starting the Web Workers, subscribing to the pidbox) and
 * before start() was even called, a warm stop, a cold stop and a second
 * signal end the worker without an exception, resolve `finished`, never
 * emit `workerReady`, leave a message sent before in its queue, and start
 * no later step (no declaration, revoked-ids read or pidbox subscription
 * after the shutdown was asked for). The Web Workers' start is held open by
 * a module that waits for the test (apps/gated_app.ts), so the shutdown
 * lands inside it.
 * KV broker in a temp file, and Redis under a key prefix of its own.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import type { Broker } from "../src/broker/port.ts";
import { Worker, type WorkerOptions } from "../src/worker/worker.ts";
import { app as tasksApp } from "./apps/worker_app.ts";
import { GATE } from "./apps/gate.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const APP_MODULE = new URL("./apps/worker_app.ts", import.meta.url).href;
const GATED_MODULE = new URL("./apps/gated_app.ts", import.meta.url).href;
const kvDir = await Deno.makeTempDir({ prefix: "celeriac-stop-starting-test-" });
const redisPrefix = uniquePrefix("stop-starting");
const TRANSPORTS = [
  {
    name: "kv",
    url: () => `kv://${kvDir}/${crypto.randomUUID().slice(0, 8)}.sqlite`,
    ignore: false,
  },
  {
    name: "redis",
    url: () => `${REDIS_URL}?global_keyprefix=${encodeURIComponent(redisPrefix)}`,
    ignore: WITHOUT_REDIS,
  },
];
/** Generous bound on a shutdown: a worker that never finishes fails the test instead of hanging it. */
const HANG_MS = 30_000;

/** How the shutdown is asked for. */
type Action = "stop" | "terminate" | "stop, then terminate";

/** Where in start() the shutdown is asked for: arms `fire` on the app's broker. */
interface Point {
  name: string;
  pool: "inline" | "threads";
  /** The Web Workers' app module; default worker_app.ts. */
  appModule?: string;
  /**
   * Called with the worker's broker (already connected) and the shutdown to
   * fire; may return what undoes it once the test ended.
   */
  arm?: (broker: Broker, fire: () => void) => (() => void) | void;
}

/** The broker methods of start-up's steps after connecting. */
const STEPS = ["declareQueue", "listRevoked", "subscribe"] as const;

/** Record the start-up steps begun once `fired()` is true. */
function recordLate(broker: Broker, late: string[], fired: () => boolean): void {
  for (const method of STEPS) {
    const call = broker[method].bind(broker) as (...a: unknown[]) => Promise<unknown>;
    (broker as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      if (fired()) late.push(method);
      return call(...args);
    };
  }
}

/** Fire once, from inside the first call of `method` (before it does its work). */
function during(method: typeof STEPS[number]): Point["arm"] {
  return (broker, fire) => {
    const original = broker[method].bind(broker) as (...a: unknown[]) => Promise<unknown>;
    let fired = false;
    (broker as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      if (!fired) fire();
      fired = true;
      return original(...args);
    };
  };
}

const POINTS: Point[] = [
  { name: "while connecting", pool: "inline" },
  { name: "while declaring the queues", pool: "inline", arm: during("declareQueue") },
  { name: "while reading the revoked ids", pool: "inline", arm: during("listRevoked") },
  {
    name: "while the Web Workers start",
    pool: "threads",
    appModule: GATED_MODULE,
    // The Web Worker is importing its app module: start() waits in pool.start().
    arm: (_broker, fire) => {
      const gate = new BroadcastChannel(GATE);
      gate.onmessage = (e: MessageEvent) => {
        if (e.data !== "loading") return;
        fire();
        gate.postMessage("go");
      };
      return () => gate.close();
    },
  },
  { name: "while subscribing to the pidbox", pool: "inline", arm: during("subscribe") },
];

function shutdown(worker: Worker, action: Action): Promise<unknown[]> {
  if (action === "stop") return Promise.all([worker.stop()]);
  if (action === "terminate") return Promise.all([worker.terminate()]);
  return Promise.all([worker.stop(), worker.terminate()]);
}

function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end`)), HANG_MS);
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

/** A worker on a fresh queue holding one message sent before it starts; checks what is left. */
async function scenario(
  url: string,
  pool: Point["pool"],
  appModule: string,
  run: (worker: Worker, app: Celery) => Promise<void>,
): Promise<void> {
  const queue = `ss-${crypto.randomUUID().slice(0, 8)}`;
  tasksApp.configure({ broker: url, backend: url, defaultQueue: queue });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const ready: string[] = [];
  const stopped: string[] = [];
  const offReady = tasksApp.signals.connect("workerReady", (p) => void ready.push(p.hostname));
  const offDown = tasksApp.signals.connect("workerShutdown", (p) => void stopped.push(p.hostname));
  const options: WorkerOptions = { app: tasksApp, queues: [queue], concurrency: 1, prefetch: 4 };
  const worker = new Worker(
    pool === "threads" ? { ...options, appModule } : { ...options, pool: "inline" },
  );
  try {
    const sent = await client.sendTask("t.add", [1, 2]);
    await run(worker, tasksApp);
    await bounded(worker.finished, "finished");
    assert.deepEqual(ready, [], "workerReady is not emitted once shutdown began");
    assert.equal(stopped.length, 1, "workerShutdown once");
    assert.equal(worker.stats.received, 0, "nothing was taken");
    assert.equal(await client.queueDepth(queue), 1, "the message sent before is still queued");
    assert.equal(await sent.state(), "PENDING");
  } finally {
    offReady();
    offDown();
    await client.close();
    await tasksApp.close();
  }
}

for (const t of TRANSPORTS) {
  for (const point of POINTS) {
    for (const action of ["stop", "terminate", "stop, then terminate"] as const) {
      Deno.test({
        name: `${t.name}: ${action} ${point.name}: no error, the worker finishes, nothing lost`,
        ignore: t.ignore,
      }, async () => {
        await scenario(t.url(), point.pool, point.appModule ?? APP_MODULE, async (worker, app) => {
          const outcomes: Promise<unknown>[] = [];
          const late: string[] = [];
          const fire = () =>
            void outcomes.push(shutdown(worker, action).then(() => null, (e) => e));
          let disarm: (() => void) | void = undefined;
          if (point.arm) {
            const broker = await app.broker();
            disarm = point.arm(broker, fire);
            recordLate(broker, late, () => outcomes.length > 0);
          }
          try {
            const starting = worker.start();
            if (!point.arm) fire();
            await bounded(starting, "start()");
            assert.equal(outcomes.length, 1, "the shutdown was asked for during start()");
            assert.deepEqual(await bounded(Promise.all(outcomes), action), [null], "no exception");
            assert.deepEqual(late, [], "no step begun after the shutdown was asked for");
          } finally {
            disarm?.();
          }
        });
      });
    }
  }
}

Deno.test("kv: stop before start (a signal while the CLI starts beat or the dashboard): start() then starts nothing", async () => {
  await scenario(TRANSPORTS[0].url(), "inline", APP_MODULE, async (worker) => {
    await bounded(worker.stop(), "stop()");
    await bounded(worker.start(), "start()");
  });
});

Deno.test("stop while starting: clean up", async () => {
  await Deno.remove(kvDir, { recursive: true });
  if (!WITHOUT_REDIS) await deleteKeys(redisPrefix);
});
