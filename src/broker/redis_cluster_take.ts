/**
 * A Redis Cluster take over several queues (each queue's keys live in a
 * slot of its own, often on another master): a take runs on each queue's
 * transport at once and the first to return ends the others. A queue
 * whose master is unreachable does not hold up the others: its take rides
 * out the outage (sent again until the take ends), it is not waited for
 * once another queue's take returned (what it takes later goes back to
 * its queue; a master that does not answer at all, hung, is waited for
 * a second only), and a queue whose take fails with a command error is left
 * out of this take, said once, while the others return what they took.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Delivery, TakeOptions } from "./port.ts";
import type { RedisBroker } from "./redis.ts";
import { closeWait, untilAborted } from "./sleep.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/**
 * How long a take over several queues, once ended, waits for the other
 * queues' takes (their script's reply), ms; one still running then is not
 * waited for (what it takes goes back to its queue).
 */
const TAKE_GRACE_MS = 1_000;

/** Wait for `p`, `ms` at most. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([p, new Promise((res) => timer = setTimeout(res, ms))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The takes over several queues of a Redis Cluster broker (see the module's
 * description).
 *
 * @example
 * ```ts ignore
 * const takes = new ClusterTakes((q) => shardOf(q), (ds) => broker.requeue(ds));
 * const got = await takes.take(["a", "b"], { max: 10, signal });
 * await takes.close();
 * ```
 */
export class ClusterTakes {
  readonly #shard: (queue: string) => RedisBroker;
  readonly #requeue: (deliveries: Delivery[]) => Promise<void>;
  /**
   * Each queue's take still running after the take that started it returned
   * (its master was unreachable): the next take of that queue waits for it,
   * so one queue's transport never runs two takes at once.
   */
  readonly #lagging = new Map<string, Promise<void>>();
  /** Queues whose last take failed with a command error (said once, until one succeeds). */
  readonly #failing = new Set<string>();

  /**
   * @param shard each queue's transport
   * @param requeue puts deliveries back at the front of their queues
   */
  constructor(
    shard: (queue: string) => RedisBroker,
    requeue: (deliveries: Delivery[]) => Promise<void>,
  ) {
    this.#shard = shard;
    this.#requeue = requeue;
  }

  /**
   * Take up to `max` messages from `queues`, earlier queues first: a take
   * on each, the first to return something ends the others; what they took
   * beyond `max` goes back to its queue. Once the take ends, the take of a
   * queue whose master is unreachable is not waited for.
   *
   * @param queues the queues (a single one is taken from directly)
   * @param options `max` and the signal that ends the take
   * @returns the deliveries
   * @throws the first queue's error when every queue's take failed
   */
  async take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]> {
    const max = Math.floor(options.max);
    if (queues.length === 1) {
      const signal = options.signal ?? new AbortController().signal;
      if (!await this.#afterLagging(queues[0], signal)) return [];
      return await this.#shard(queues[0]).take(queues, options);
    }
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    const got: (Delivery[] | undefined)[] = queues.map(() => undefined);
    const errors: unknown[] = queues.map(() => undefined);
    const takes = queues.map((q, i) =>
      this.#takeOne(q, max, signal, stop).then((ds) => {
        got[i] = ds;
      }, (err) => {
        errors[i] = err;
      })
    );
    const ended = new Promise<void>((res) => signal.addEventListener("abort", () => res()));
    await Promise.race([Promise.all(takes), ended]);
    // Ended: wait for the takes that reach their master (they end at once or with their
    // script's reply), not for one riding out an outage, and for a master that does not answer
    // (hung: not known unreachable until the command timeout, 30 s) TAKE_GRACE_MS only.
    await within(
      Promise.all(takes.filter((_, i) => !this.#shard(queues[i]).unreachable)),
      TAKE_GRACE_MS,
    );
    takes.forEach((t, i) => {
      if (got[i] === undefined && errors[i] === undefined) this.#lag(queues[i], t, () => got[i]);
    });
    const ok = got.some((ds) => ds !== undefined);
    const failed = errors.findIndex((e) => e !== undefined);
    if (!ok && failed >= 0) throw errors[failed];
    errors.forEach((err, i) => {
      if (err === undefined || this.#failing.has(queues[i])) return;
      this.#failing.add(queues[i]);
      log.warn("Cannot take from queue {queue} ({error}); taking from the other queues", {
        queue: queues[i],
        error: (err as Error).message,
      });
    });
    const all = got.flatMap((ds) => ds ?? []);
    const kept = all.slice(0, max);
    const extra = all.slice(kept.length);
    if (extra.length) await this.#requeue(extra);
    return kept;
  }

  /** Wait (until `signal` aborts) for a lagging take of `queue`; false when aborted. */
  async #afterLagging(queue: string, signal: AbortSignal): Promise<boolean> {
    const lag = this.#lagging.get(queue);
    if (lag) await untilAborted(lag, signal);
    return !signal.aborted;
  }

  async #takeOne(
    queue: string,
    max: number,
    signal: AbortSignal,
    stop: AbortController,
  ): Promise<Delivery[]> {
    if (!await this.#afterLagging(queue, signal)) return [];
    const got = await this.#shard(queue).take([queue], { max, signal });
    if (this.#failing.delete(queue)) log.info("Taking from queue {queue} again", { queue });
    if (got.length > 0) stop.abort();
    return got;
  }

  /** A take not waited for: what it takes goes back to its queue once it returns. */
  #lag(queue: string, take: Promise<void>, got: () => Delivery[] | undefined): void {
    const lagging: Promise<void> = take.then(async () => {
      const ds = got() ?? [];
      if (ds.length > 0) await this.#requeue(ds);
    }).catch((err) =>
      log.warn(
        "Could not put back message(s) of queue {queue} ({error}); they come back after the " +
          "visibility timeout",
        { queue, error: (err as Error).message },
      )
    ).finally(() => {
      if (this.#lagging.get(queue) === lagging) this.#lagging.delete(queue);
    });
    this.#lagging.set(queue, lagging);
  }

  /**
   * Wait for the takes not waited for to put back what they took (each
   * ends within its master's failover wait; waited for `CLOSE_WAIT_MS` at
   * most: what one takes later stays unacknowledged and comes back after
   * the visibility timeout).
   */
  async close(): Promise<void> {
    if (this.#lagging.size > 0) await closeWait(Promise.all(this.#lagging.values()));
  }
}
