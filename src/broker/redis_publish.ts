/**
 * Publishing on Redis as kombu does: declaring a queue (its binding in
 * `_kombu.binding.<queue>`), routing an exchange and routing key to the
 * bound queues, and LPUSHing base64 envelopes to each queue's list for the
 * message's priority — one at a time or batched per list, in commands of at
 * most 1,000 values (chunks.ts). On a single server the LPUSHes go over the
 * broker's `celeriac-consume` connection (resp_scripts.ts), elsewhere over
 * ioredis.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type DeliveryInfo, encodeEnvelope } from "../protocol/envelope.ts";
import type { Message } from "../protocol/message.ts";
import { chunked } from "./chunks.ts";
import {
  batchFailure,
  BrokerConnectionError,
  type PublishOutcome,
  singleFailure,
} from "./errors.ts";
import type { Publication, PublishManyOptions, PublishTarget, QueueBinding } from "./port.ts";
import type { RedisScope } from "./redis_commands.ts";
import { RedisReplyError } from "./resp_reader.ts";
import {
  bindingMember,
  bindingSet,
  boundQueues,
  priorityList,
  topicPattern,
} from "./redis_keys.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/**
 * The queues `exchange` routes `routingKey` to: the routing key itself for
 * the default exchange (`""`), else the matching members of the exchange's
 * binding set.
 *
 * @example
 * ```ts ignore
 * import { route } from "./redis_publish.ts";
 * await route(scope, "", "celery"); // ["celery"]
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param exchange the exchange name
 * @param routingKey the routing key
 * @returns the queue names
 */
export async function route(
  scope: RedisScope,
  exchange: string,
  routingKey: string,
): Promise<string[]> {
  if (exchange === "") return [routingKey];
  const members = await scope.client.smembers(scope.k(bindingSet(exchange)));
  return boundQueues(members, routingKey);
}

/**
 * Declares queues (once per publisher) and publishes to them.
 *
 * @example
 * ```ts ignore
 * import { RedisPublisher } from "./redis_publish.ts";
 * const publisher = new RedisPublisher(scope);
 * await publisher.publish(message, { routingKey: "celery" });
 * ```
 */
export class RedisPublisher {
  readonly #scope: RedisScope;
  readonly #declared = new Set<string>();

  /** @param scope the broker's connection and key prefix */
  constructor(scope: RedisScope) {
    this.#scope = scope;
  }

  /** Declare a queue as Celery does: bind exchange `<queue>` with key `<queue>`. */
  async declareQueue(queue: string): Promise<void> {
    if (this.#declared.has(queue)) return;
    const s = this.#scope;
    const key = s.k(bindingSet(queue));
    await s.run(() => s.client.sadd(key, bindingMember(queue, queue)), { keys: [key] });
    this.#declared.add(queue);
  }

  /** Declare a queue and bind it to a named exchange, as kombu does (see {@link Broker.bindQueue}). */
  async bindQueue(queue: string, binding: QueueBinding): Promise<void> {
    await this.declareQueue(queue);
    const s = this.#scope;
    const pattern = binding.type === "topic" ? topicPattern(binding.routingKey) : "";
    const member = bindingMember(binding.routingKey, queue, pattern);
    const key = s.k(bindingSet(binding.exchange));
    await s.run(() => s.client.sadd(key, member), { keys: [key] });
  }

  /** Publish (LPUSH) a message to the list of its queue and priority. */
  async publish(message: Message, target: PublishTarget): Promise<void> {
    try {
      await this.publishMany([{ message, target }]);
    } catch (err) {
      throw singleFailure(err);
    }
  }

  /**
   * Publish many messages: each target is routed once and each list gets
   * variadic LPUSHes of up to 1,000 messages (chunks.ts; in the messages'
   * order, pipelined), so 1,000 tasks to one queue cost one
   * command instead of 1,000, and 100,000 cost 100. The LPUSHes are all
   * written at once: `signal` stops the batch until then (nothing sent,
   * rejects with its reason), not after. When the connection drops part
   * way, rejects with a {@link BatchPublishError} telling which messages
   * Redis took (their LPUSH answered) and which may have gone.
   */
  async publishMany(
    batch: readonly Publication[],
    options: PublishManyOptions = {},
  ): Promise<void> {
    const s = this.#scope;
    options.signal?.throwIfAborted();
    // Each target is declared and routed once, in the order of its first message.
    const routes = new Map<PublishTarget, Routed>();
    const byKey = new Map<string, Routed>();
    for (const { target } of batch) {
      if (routes.has(target)) continue;
      const exchange = target.exchange ?? "";
      const key = `${exchange}\u0000${target.routingKey}`;
      let routed = byKey.get(key);
      if (!routed) {
        // The default exchange routes to the queue named by the key: no command, no await
        // once the queue is declared (a single publish's path).
        let queues: string[];
        if (exchange === "") {
          if (!this.#declared.has(target.routingKey)) await this.declareQueue(target.routingKey);
          queues = [target.routingKey];
        } else {
          queues = await s.run(
            () => route(s, exchange, target.routingKey),
            { keys: [s.k(bindingSet(exchange))] },
          );
        }
        const info = { exchange, routing_key: target.routingKey };
        // Frozen, encodeEnvelope encodes its text once for the whole batch.
        if (batch.length > 1) Object.freeze(info);
        routed = { info, queues };
        byKey.set(key, routed);
      }
      routes.set(target, routed);
    }
    // Each list's messages and their places in the batch (to tell which a failure left out).
    const lists = new Map<string, { raws: string[]; at: number[] }>();
    for (let i = 0; i < batch.length; i++) {
      const { message, target } = batch[i];
      const { info, queues } = routes.get(target)!;
      if (queues.length === 0) {
        log.warn("No queue is bound to exchange {exchange} with key {key}: message dropped", {
          exchange: info.exchange,
          key: info.routing_key,
        });
        continue;
      }
      const raw = encodeEnvelope(message, info, crypto.randomUUID());
      for (const q of queues) {
        const list = s.k(priorityList(q, message.properties.priority));
        const l = lists.get(list);
        if (l) {
          l.raws.push(raw);
          l.at.push(i);
        } else lists.set(list, { raws: [raw], at: [i] });
      }
    }
    if (lists.size === 0) return;
    // A list's LPUSHes go out in order on one connection (on a Cluster every
    // list's chunks share its slot and node), so the first message stays at the tail.
    // A loop, not flatMap: a publish of one message paid 0.4 µs more for it.
    const pushes: Push[] = [];
    for (const [list, { raws, at }] of lists) {
      const ats = chunked(at);
      chunked(raws).forEach((values, c) => pushes.push({ list, values, at: ats[c] }));
    }
    options.signal?.throwIfAborted();
    // Through Sentinel or on a Cluster the LPUSHes go through ioredis.
    if (!s.resp) {
      try {
        await s.run(() => pushPending(s, pushes), { keys: [...lists.keys()] });
      } catch (err) {
        // ioredis does not tell an LPUSH never written from one whose reply was lost.
        const settled = pushes.map((p): PromiseSettledResult<unknown> =>
          p.done ? { status: "fulfilled", value: null } : { status: "rejected", reason: err }
        );
        throw batchFailure(outcomes(batch.length, pushes, settled), err);
      }
      return;
    }
    // On a single server the LPUSHes go over the consume connection (no
    // ioredis auto-pipelining turn): its failures are BrokerConnectionErrors already.
    const settled = await s.resp.pipeline(pushes.map((p) => ["LPUSH", p.list, ...p.values]));
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) throw batchFailure(outcomes(batch.length, pushes, settled), failed.reason);
  }
}

/** One LPUSH of a batch: its list, values, and the values' places in the batch. */
interface Push {
  list: string;
  values: string[];
  at: number[];
  done?: boolean;
}

/**
 * What became of each message of a batch whose LPUSHes settled as
 * `settled`: sent when every LPUSH holding it was answered, unsent when
 * none of them ran (refused by Redis: see {@link refused}), else unknown. Messages routed
 * nowhere (dropped with a warning) count as sent.
 */
function outcomes(
  size: number,
  pushes: readonly Push[],
  settled: readonly PromiseSettledResult<unknown>[],
): PublishOutcome[] {
  const out = new Array<PublishOutcome>(size).fill("sent");
  const seen = new Array<PublishOutcome | undefined>(size);
  pushes.forEach((p, c) => {
    const r = settled[c];
    const o: PublishOutcome = r.status === "fulfilled"
      ? "sent"
      : refused(r.reason)
      ? "unsent"
      : "unknown";
    for (const i of p.at) seen[i] = seen[i] === undefined || seen[i] === o ? o : "unknown";
  });
  for (let i = 0; i < size; i++) if (seen[i] !== undefined) out[i] = seen[i]!;
  return out;
}

/**
 * Whether an LPUSH failed with a reply from Redis, so never ran: an error
 * reply, or one that `respFailure` turned into a {@link BrokerConnectionError}
 * (`-LOADING` from a server still loading its data after a restart, `NOAUTH`).
 */
function refused(reason: unknown): boolean {
  return reason instanceof RedisReplyError ||
    (reason instanceof BrokerConnectionError && reason.cause instanceof RedisReplyError);
}

/** A target's delivery info and the queues it routes to. */
interface Routed {
  info: DeliveryInfo;
  queues: string[];
}

/**
 * Send the LPUSHes not yet done, pipelined, and mark those Redis took.
 * Through Sentinel or a Cluster `run` sends them again after a failover:
 * only the ones that failed go again (every one settles first), not the
 * chunks already in their lists.
 */
async function pushPending(s: RedisScope, pushes: Push[]): Promise<void> {
  const settled = await Promise.allSettled(pushes.map(async (p) => {
    if (p.done) return;
    await s.client.lpush(p.list, ...p.values);
    p.done = true;
  }));
  for (const r of settled) if (r.status === "rejected") throw r.reason;
}
