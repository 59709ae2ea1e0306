// deno-lint-ignore-file no-console
/**
 * The worker's follow-up publish alone, on Redis (broker db 14) or, with
 * `--amqp`, on RabbitMQ (a vhost of its own, deleted after): what a
 * finished `chain(noop, group(N × noop))` first step sends — the follow-ups
 * `successFollowUps` plans for the group's N members — published by
 * `publishAll` (src/worker/chords.ts) through the broker's `publishMany`
 * (Redis: LPUSHes of 1,000; RabbitMQ: confirms in flight together), as the
 * worker does, to a queue nobody consumes. Without the chain message's trip through
 * Redis and the Web Worker that bench/big_canvas.ts also measures, so its
 * figures vary less. Prints the publish's wall and CPU seconds (this
 * process, every thread), members per second and the longest event-loop
 * stall. Uses its own queue name and purges it; flushes nothing.
 * Run with `deno run -A bench/follow_up_publish.ts --members 200000 [--amqp]`.
 *
 * @module
 */

import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import { chain, group } from "../mod.ts";
import { openBroker } from "../src/client/transports.ts";
import { planCanvas } from "../src/protocol/canvas.ts";
import { publishAll } from "../src/worker/canvas_send.ts";
import { successFollowUps } from "../src/worker/follow_ups.ts";
import { withVhost } from "./rabbitmq.ts";
import { StallMeter } from "./stall_meter.ts";
import { BROKER_DB } from "./redis_workload.ts";
import { noop } from "./tasks.ts";

/** What one run measured. */
export interface FollowUpPublishResult {
  /** Group members. */
  members: number;
  /** Seconds `publishAll` took. */
  seconds: number;
  /** CPU seconds this process used meanwhile (all threads). */
  cpuSeconds: number;
  /** Members per second. */
  membersPerSecond: number;
  /** Longest event-loop stall, ms (a 10 ms timer's lateness). */
  longestStallMs: number;
}

/**
 * Plan and publish the follow-ups once and measure the publish.
 *
 * @example
 * ```ts ignore
 * const r = await runFollowUpPublish("redis://127.0.0.1:6379/14", 200_000);
 * ```
 *
 * @param url broker URL
 * @param n group members
 * @returns the figures
 */
export async function runFollowUpPublish(url: string, n: number): Promise<FollowUpPublishResult> {
  const queue = `fup-${crypto.randomUUID().slice(0, 8)}`;
  const next = group(Array.from({ length: n }, () => noop.s().set({ queue })));
  const first = planCanvas(chain(noop.s(), next).toDict()).sends[0];
  const parent = { id: first.id, rootId: first.id, origin: "bench@host", defaultQueue: queue };
  const f = successFollowUps(first.embed, 1, parent, new Date());
  const broker = await openBroker(url);
  const many = broker.publishMany?.bind(broker);
  try {
    await broker.declareQueue(queue);
    const meter = new StallMeter();
    const cpu = cpuUsage();
    const start = performance.now();
    await publishAll(f.publishes, {
      backend: null,
      publish: (message, target) => broker.publish(message, target),
      publishMany: many && ((batch) => many(batch)),
    });
    const seconds = (performance.now() - start) / 1000;
    const used = cpuUsage(cpu);
    const longestStallMs = meter.take();
    meter.stop();
    const depth = await broker.queueDepth(queue);
    if (depth !== n) throw new Error(`expected ${n} messages in ${queue}, found ${depth}`);
    return {
      members: n,
      seconds,
      cpuSeconds: (used.user + used.system) / 1e6,
      membersPerSecond: n / seconds,
      longestStallMs,
    };
  } finally {
    await broker.purge(queue);
    await broker.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      members: { type: "string", default: "200000" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
      amqp: { type: "boolean", default: false },
    },
  });
  const n = Number(values.members);
  const r = values.amqp
    ? await withVhost("follow-ups", (url) => runFollowUpPublish(url, n))
    : await runFollowUpPublish(
      Object.assign(new URL(values.redis), { pathname: `/${BROKER_DB}` }).href,
      n,
    );
  console.log(JSON.stringify(r));
}
