// deno-lint-ignore-file no-console
/**
 * The workloads every side runs on a broker, in one place: (C) client
 * enqueue rates, (A) the drain of tasks enqueued by the side's own client
 * followed by (B) round trips, A again with the other Celery client's
 * tasks (Celeriac and Celery only), and (D) CPU-bound tasks. The broker
 * modules supply the {@link BrokerSteps}.
 *
 * @module
 */

import type { BurstResult } from "./burst_workload.ts";
import {
  type BrokerKind,
  CONCURRENCY,
  CPU_TASK_MS,
  type Options,
  PEERS_ON,
  runSide,
  type Side,
  type SideResult,
  SIDES,
} from "./common.ts";

/**
 * What differs between brokers (and, within one, between sides).
 *
 * @example
 * ```ts ignore
 * const results = await runBroker("redis", opts, steps);
 * ```
 */
export interface BrokerSteps {
  /** Environment of the workers and of the Python and peer clients. */
  env: Record<string, string>;
  /** Empty the bench queue and the results. */
  reset(): Promise<void>;
  /** Enqueue `n` tasks with `client`'s fastest API (`bench.spin(spinMs)` when given, else `bench.noop`); resolves with seconds. */
  enqueue(client: Side, n: number, spinMs?: number): Promise<number>;
  /** Enqueue `n` no-op tasks one awaited call at a time (`delay()` in a loop); resolves with seconds. */
  enqueueSingle(client: Side, n: number): Promise<number>;
  /** Messages waiting for `side`'s worker. */
  depth(side: Side): Promise<number>;
  /** Results `side`'s worker has stored. */
  results(side: Side): Promise<number>;
  /** Count `side`'s SUCCESS results (value 1) and clear them. */
  verify(side: Side): Promise<number>;
  /** One Celeriac round trip. */
  call(): Promise<unknown>;
  /** Sides whose B is measured after every drain, interleaved, rather than after their own. */
  interleavedB?: readonly Side[];
}

/**
 * Client enqueue rates (workload C), in tasks per second.
 *
 * @example
 * ```ts ignore
 * const { single, batch }: EnqueueRates = results.celeriac!.enqueue;
 * ```
 */
export interface EnqueueRates {
  /** Tasks enqueued. */
  n: number;
  /** One awaited call at a time (`delay()`, `queue.add()`, `send_task()` in a loop). */
  single: number;
  /** The client's batch API (`delayMany`, `addBulk`, pipelined LPUSH); null when it has none. */
  batch: number | null;
}

/**
 * The CPU-bound workload (D): `tasks` tasks spinning {@link CPU_TASK_MS} ms each.
 *
 * @example
 * ```ts ignore
 * console.log(results.celeriac!.cpu!.efficiency);
 * ```
 */
export interface CpuResult extends SideResult {
  /** Milliseconds each task spins. */
  taskMs: number;
  /** Ideal time on {@link CONCURRENCY} cores / measured drain time. */
  efficiency: number;
}

/**
 * Everything one side measured on one broker.
 *
 * @example
 * ```ts ignore
 * const r: SideReport = (await runBroker("redis", opts, steps)).bullmq!;
 * ```
 */
export interface SideReport {
  /** A with the side's own client, then B on the same worker. */
  drain: SideResult;
  /** A with the other Celery client's tasks (Celeriac and Celery only). */
  crossDrain: SideResult | null;
  /** D. */
  cpu: CpuResult | null;
  /** C. */
  enqueue: EnqueueRates | null;
  /** A on RabbitMQ with the Redis result backend instead of rpc:// (Celeriac and Celery only). */
  redisResults?: SideResult;
  /** E, a burst onto an idle worker (Redis; Celeriac and BullMQ only). */
  burst?: BurstResult;
}

/** The other Celery implementation's client, for the cross drain. */
const OTHER: Partial<Record<Side, Side>> = { celeriac: "celery", celery: "celeriac" };

/**
 * Run workloads C, A (+B), cross A and D for every side on one broker.
 *
 * @example
 * ```ts ignore
 * const out = await runBroker("amqp", opts, steps);
 * ```
 *
 * @param broker which broker
 * @param opts the bench's options
 * @param steps the broker's steps
 * @returns each side's figures
 */
export async function runBroker(
  broker: BrokerKind,
  opts: Options,
  steps: BrokerSteps,
): Promise<Partial<Record<Side, SideReport>>> {
  const out: Partial<Record<Side, SideReport>> = {};
  for (const side of [...SIDES, ...PEERS_ON[broker]]) {
    if (opts.only && opts.only !== side) continue;
    let enqueue: EnqueueRates | null = null;
    if (opts.enqueueTasks > 0) {
      const n = opts.enqueueTasks;
      console.log(`[${side}] client enqueue of ${n} tasks, one call at a time and batched…`);
      await steps.reset();
      const single = n / await steps.enqueueSingle(side, n);
      await steps.reset();
      const batch = side === "celery" ? null : n / await steps.enqueue(side, n);
      enqueue = { n, single, batch };
    }
    const sideSteps = {
      depth: () => steps.depth(side),
      results: () => steps.results(side),
      verify: () => steps.verify(side),
      call: steps.call,
    };
    await steps.reset();
    const drain = await runSide(side, opts, steps.env, {
      ...sideSteps,
      enqueue: (n) => steps.enqueue(side, n),
      roundtrips: !steps.interleavedB?.includes(side),
    });
    const other = OTHER[side];
    let crossDrain: SideResult | null = null;
    if (other && !opts.only) {
      await steps.reset();
      crossDrain = await runSide(side, opts, steps.env, {
        ...sideSteps,
        n: opts.tasks,
        enqueuedBy: other,
        enqueue: (n) => steps.enqueue(other, n),
      });
    }
    let cpu: CpuResult | null = null;
    if (opts.cpuTasks > 0) {
      await steps.reset();
      const r = await runSide(side, opts, steps.env, {
        ...sideSteps,
        n: opts.cpuTasks,
        enqueue: (n) => steps.enqueue(side, n, CPU_TASK_MS),
      });
      const ideal = opts.cpuTasks * CPU_TASK_MS / CONCURRENCY;
      cpu = { ...r, taskMs: CPU_TASK_MS, efficiency: ideal / r.drainMs };
    }
    out[side] = { drain, crossDrain, cpu, enqueue };
  }
  await steps.reset();
  return out;
}
