// deno-lint-ignore-file no-console
/**
 * The RabbitMQ workload: broker on a vhost of the run's own (created and
 * deleted with `rabbitmqctl`), results through the `rpc://` backend. Every
 * drained task carries `reply_to: bench.replies`, a durable queue the
 * bench declares, so that both workers send their results there;
 * completion = that queue's message count (passive declare) reaching N.
 * Round trips use each client's own reply queue, as rpc:// does. Celeriac
 * and Celery then drain once more with the Redis result backend (db 15),
 * completion = its `DBSIZE`.
 *
 * @module
 */

import { Celery } from "../mod.ts";
import { encodeTaskMessage } from "../protocol.ts";
import { Redis } from "ioredis";
import { type AmqpBroker, openAmqpBroker } from "../src/broker/amqp.ts";
import {
  cleanups,
  ENQUEUE_BATCH,
  type Options,
  peerClient,
  pythonClient,
  runSide,
  type Side,
  SIDES,
} from "./common.ts";
import { createVhost } from "./rabbitmq.ts";
import { BACKEND_DB, countSuccesses, dbUrl } from "./redis_workload.ts";
import { BENCH_QUEUE } from "./tasks.ts";
import { runBroker, type SideReport } from "./workloads.ts";

/** The durable queue the drained tasks' results go to (their `reply_to`). */
export const REPLY_QUEUE = "bench.replies";

/**
 * What a side's results looked like, to show that both did the same work.
 *
 * @example
 * ```ts ignore
 * const { keys, bytes }: ReplySample = (await runAmqp(opts)).replies.celery!;
 * ```
 */
export interface ReplySample {
  /** Keys of the first result body, sorted. */
  keys: string[];
  /** Size of the first result body, in bytes. */
  bytes: number;
  /** Its content type. */
  contentType: string;
}

/** Read every result in the reply queue; count the SUCCESS ones with value 1 and distinct ids. */
async function drainReplies(broker: AmqpBroker, n: number) {
  const ids = new Set<string>();
  let ok = 0;
  let sample: ReplySample | null = null;
  let read = 0;
  while (read < n) {
    const got = await broker.take([REPLY_QUEUE], {
      max: 1000,
      signal: AbortSignal.timeout(5000),
    });
    if (got.length === 0) break;
    read += got.length;
    for (const d of got) {
      const body = JSON.parse(new TextDecoder().decode(d.body));
      sample ??= {
        keys: Object.keys(body).sort(),
        bytes: d.body.length,
        contentType: d.contentType,
      };
      if (body.status === "SUCCESS" && body.result === 1) ok++;
      ids.add(String(body.task_id));
    }
    await broker.ack(got);
  }
  return { ok: Math.min(ok, ids.size), sample };
}

/**
 * Run every side (or `--only` one) on RabbitMQ: Celeriac, Celery and the raw amqplib ceiling.
 *
 * @example
 * ```ts ignore
 * const { vhost, results } = await runAmqp(opts);
 * console.log(vhost, results.celeriac?.drain.drainTasksPerSecond);
 * ```
 *
 * @param opts the bench's options
 * @returns the figures of each side that ran, a sample result message per side, and the vhost used
 */
export async function runAmqp(
  opts: Options,
): Promise<
  {
    vhost: string;
    results: Partial<Record<Side, SideReport>>;
    replies: Partial<Record<Side, ReplySample>>;
  }
> {
  const vhost = await createVhost("drain", opts.amqp);
  const resultsUrl = dbUrl(opts.redis, BACKEND_DB);
  cleanups.add(vhost.remove);
  const env = {
    CELERY_BROKER_URL: vhost.url,
    CELERY_RESULT_BACKEND: "rpc://",
    BENCH_BROKER_URL: vhost.url,
  };
  const replies: Partial<Record<Side, ReplySample>> = {};
  const broker = await openAmqpBroker(vhost.url, { connectionName: "celeriac-bench" });
  const client = new Celery({ broker: vhost.url, backend: "rpc://", defaultQueue: BENCH_QUEUE });
  const noop = client.remoteTask<[], number>("bench.noop");
  const message = (spinMs?: number) =>
    encodeTaskMessage({
      task: spinMs ? "bench.spin" : "bench.noop",
      id: crypto.randomUUID(),
      args: spinMs ? [spinMs] : [],
      kwargs: {},
      now: new Date(),
      origin: "bench@celeriac",
      replyTo: REPLY_QUEUE,
    });
  try {
    console.log(
      `RabbitMQ ${new URL(vhost.url).host}: vhost ${vhost.name} (deleted after the bench), ` +
        `results via rpc:// to the durable queue ${REPLY_QUEUE}.`,
    );
    await broker.declareQueue(BENCH_QUEUE);
    await broker.declareQueue(REPLY_QUEUE);
    const enqueue = async (who: Side, n: number, spinMs?: number) => {
      const args = spinMs ? ["spin", String(n), String(spinMs)] : ["enqueue", String(n)];
      if (who === "celery") {
        const out = await pythonClient([...args, REPLY_QUEUE], env);
        return (out as { seconds: number }).seconds;
      }
      if (who !== "celeriac") {
        return ((await peerClient(who, args, env)) as { seconds: number }).seconds;
      }
      const start = performance.now();
      for (let sent = 0; sent < n; sent += ENQUEUE_BATCH) {
        const size = Math.min(ENQUEUE_BATCH, n - sent);
        await Promise.all(
          Array.from(
            { length: size },
            () => client.publish(message(spinMs), { routingKey: BENCH_QUEUE }),
          ),
        );
      }
      return (performance.now() - start) / 1000;
    };
    const results = await runBroker("amqp", opts, {
      env,
      reset: async () => {
        await broker.purge(BENCH_QUEUE);
        await broker.purge(REPLY_QUEUE);
      },
      enqueue,
      enqueueSingle: async (who, n) => {
        if (who === "celery") {
          const out = await pythonClient(["enqueue", String(n), REPLY_QUEUE], env);
          return (out as { seconds: number }).seconds;
        }
        if (who !== "celeriac") {
          const out = await peerClient(who, ["enqueue-single", String(n)], env);
          return (out as { seconds: number }).seconds;
        }
        const start = performance.now();
        for (let i = 0; i < n; i++) await client.publish(message(), { routingKey: BENCH_QUEUE });
        return (performance.now() - start) / 1000;
      },
      depth: () => broker.queueDepth(BENCH_QUEUE),
      results: () => broker.queueDepth(REPLY_QUEUE),
      verify: async (side) => {
        const { ok, sample } = await drainReplies(broker, await broker.queueDepth(REPLY_QUEUE));
        if (sample) replies[side] ??= sample;
        return ok;
      },
      call: async () => await (await noop.delay()).get({ timeout: 30_000 }),
    });
    for (const side of SIDES) {
      if (!results[side] || opts.tasks === 0) continue;
      results[side]!.redisResults = await drainWithRedisResults(side, opts, {
        env: { ...env, CELERY_RESULT_BACKEND: resultsUrl },
        resultsUrl,
        enqueue: (n) => enqueue(side, n),
        purge: () => broker.purge(BENCH_QUEUE),
        depth: () => broker.queueDepth(BENCH_QUEUE),
      });
    }
    return { vhost: vhost.name, replies, results };
  } finally {
    await client.close();
    await broker.close();
    await vhost.remove();
    cleanups.delete(vhost.remove);
  }
}

/**
 * Workload A on RabbitMQ with the Redis result backend (db
 * {@link BACKEND_DB}, FLUSHDB'd before and after) instead of rpc://: what
 * a deployment that keeps results in Redis sees. No round trips.
 */
async function drainWithRedisResults(
  side: Side,
  opts: Options,
  steps: {
    env: Record<string, string>;
    resultsUrl: string;
    enqueue(n: number): Promise<number>;
    purge(): Promise<unknown>;
    depth(): Promise<number>;
  },
) {
  const results = new Redis(steps.resultsUrl);
  const flush = () => results.flushdb().then(() => {}, () => {});
  cleanups.add(flush);
  try {
    await steps.purge();
    await flush();
    console.log(`[${side}] with the Redis result backend:`);
    return await runSide(side, opts, steps.env, {
      n: opts.tasks,
      enqueue: steps.enqueue,
      depth: steps.depth,
      results: () => results.dbsize(),
      verify: () => countSuccesses(results),
      call: () => Promise.reject(new Error("no round trips with the Redis result backend")),
    });
  } finally {
    await flush();
    cleanups.delete(flush);
    results.disconnect();
  }
}
