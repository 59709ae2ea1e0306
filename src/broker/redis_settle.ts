/**
 * Settling the deliveries of a Redis broker: acknowledging (`unacked` and
 * `unacked_index` in transactions of 1,000 deliveries), parking in `celeriac.parked`,
 * requeueing at the front of their queues (kombu's restore) and renewing
 * their leases. Each waits for the record of a delivery handed out before
 * its take script replied (redis_early.ts) and retries while Redis is
 * unreachable, up to the outage limit.
 *
 * @module
 */

import { encodeEnvelope } from "../protocol/envelope.ts";
import { type Delivery, DELIVERY_COUNT_HEADER, type Rejection } from "./port.ts";
import { chunked, VALUES_PER_COMMAND } from "./chunks.ts";
import type { RedisBatch } from "./redis_client.ts";
import type { RedisScope } from "./redis_commands.ts";
import { priorityList } from "./redis_keys.ts";
import { envelopeOfUnacked, park, PARK_RECORD_SECONDS, parkEntry } from "./redis_parked.ts";
import type { RedisTaker } from "./redis_take.ts";
import { DEFAULT_OUTAGE_LIMIT, retryWhileDown } from "./outage.ts";
import { BrokerConnectionError } from "./errors.ts";
import { refusedAsReplica } from "./redis_failures.ts";

/**
 * The settling of one broker's deliveries.
 *
 * @example
 * ```ts ignore
 * import { RedisSettler } from "./redis_settle.ts";
 * const settler = new RedisSettler(scope, taker, { outageLimit: 60 });
 * await settler.ack(deliveries);
 * ```
 */
export class RedisSettler {
  readonly #scope: RedisScope;
  readonly #taker: RedisTaker;
  readonly #outageLimit: number | undefined;
  readonly #closed: AbortSignal | undefined;

  /**
   * @param scope the broker's connection and key prefix
   * @param taker the broker's taker (which knows the deliveries handed out early)
   * @param options `outageLimit`: seconds a step is retried while Redis is
   *   unreachable (default `DEFAULT_OUTAGE_LIMIT`); `closed`: aborted once
   *   the broker's connections are closed, which ends every retry (a step
   *   still retrying then fails; its deliveries stay unacknowledged)
   */
  constructor(
    scope: RedisScope,
    taker: RedisTaker,
    options: { outageLimit?: number; closed?: AbortSignal } = {},
  ) {
    this.#scope = scope;
    this.#taker = taker;
    this.#outageLimit = options.outageLimit;
    this.#closed = options.closed;
  }

  #k(key: string): string {
    return this.#scope.k(key);
  }

  /**
   * Run a settlement step, retrying while Redis is unreachable (for `limit`
   * seconds). Each try is sent again during a failover, but not once the
   * master of its keys (on a Cluster all of this broker's keys share a slot)
   * is known down with no replica: its `MULTI`/`EXEC` or script then fails
   * with "Connection is closed.", and the outage retry waits instead.
   */
  #settle<T>(what: string, fn: () => Promise<T>, limit = this.#outageLimit): Promise<T> {
    const keys = [this.#k("unacked_index"), this.#k("unacked")];
    return retryWhileDown(() => this.#scope.run(fn, { keys }), {
      limit,
      what,
      signal: this.#closed,
    });
  }

  /**
   * Acknowledge: remove from `unacked` and `unacked_index`, one transaction
   * (a ZREM and an HDEL of the same tags, as kombu's ack) per
   * {@link VALUES_PER_COMMAND} deliveries (chunks.ts): a batch of any size
   * is sent as commands Redis buffers and runs in about a millisecond each,
   * pipelined together. After an outage part-way through, only the
   * transactions Redis did not answer are sent again. An error reply inside
   * one throws (READONLY from a demoted master is retried).
   *
   * @param all the deliveries
   */
  async ack(all: readonly Delivery[]): Promise<void> {
    if (all.length === 0) return;
    const index = this.#k("unacked_index");
    const unacked = this.#k("unacked");
    let deliveries = all;
    if (this.#taker.handedOutEarly(all)) {
      // Handed out before their take replied: acknowledged right behind it when possible.
      deliveries = await this.#taker.ackBehindTake(all, index, unacked);
    }
    const settleable = this.#taker.settleable(deliveries);
    if (settleable) deliveries = await settleable;
    if (deliveries.length === 0) return;
    const what = `acknowledge ${deliveries.length} message(s)`;
    // One transaction for the usual few (no copy of the list), else one per chunk.
    const chunks = deliveries.length <= VALUES_PER_COMMAND ? [deliveries] : chunked(deliveries);
    const acked = new Array<boolean>(chunks.length).fill(false);
    /** Each chunk not acknowledged yet, by `ackChunk`; the first failure thrown. */
    const each = async (
      reconnect: boolean,
      ackChunk: (ds: readonly Delivery[]) => Promise<void>,
    ) => {
      const sent = await Promise.allSettled(chunks.map(async (ds, c) => {
        if (acked[c]) return;
        await ackChunk(ds);
        acked[c] = true;
      }));
      const failed = sent.find((r) => r.status === "rejected");
      if (failed) throw this.#demoted(failed.reason, reconnect);
    };
    const resp = this.#scope.resp;
    if (resp) {
      await retryWhileDown(() =>
        each(false, async (ds) => {
          // Both commands sized once (spreads of a mapped array made three arrays of the tags).
          const n = ds.length;
          const zrem = new Array<string>(n + 2);
          const hdel = new Array<string>(n + 2);
          zrem[0] = "ZREM";
          zrem[1] = index;
          hdel[0] = "HDEL";
          hdel[1] = unacked;
          for (let i = 0; i < n; i++) zrem[i + 2] = hdel[i + 2] = ds[i].deliveryTag;
          const failed = (await resp.transaction([zrem, hdel])).find((r) => r instanceof Error);
          if (failed) throw failed;
        }), { limit: this.#outageLimit, what, signal: this.#closed });
      return;
    }
    const client = this.#scope.client;
    await this.#settle(what, () =>
      each(true, async (ds) => {
        const tags = ds.map((d) => d.deliveryTag);
        const replies = await client.multi().zrem(index, ...tags).hdel(unacked, ...tags).exec();
        const failed = replies?.find(([err]) => err !== null);
        if (failed) throw failed[0];
      }));
  }

  /**
   * Park deliveries in the `celeriac.parked` list with their reasons: each
   * as it was queued, read back from its `unacked` entry; one already
   * acknowledged (its entry gone) is parked re-encoded from what was decoded.
   * One script per 1,000 deliveries moves them (chunks.ts); after an outage
   * part-way through, only the chunks Redis did not answer are sent again,
   * each with its park id: one that ran but whose reply was lost is not
   * run again.
   *
   * @param rejections the deliveries and why
   * @returns the rejections parked (one handed out early that its take did not record is left out)
   */
  async reject(rejections: readonly Rejection[]): Promise<readonly Rejection[]> {
    if (rejections.length === 0) return rejections;
    const settleable = this.#taker.settleable(rejections.map((r) => r.delivery), true);
    if (settleable) {
      const left = new Set(await settleable);
      rejections = rejections.filter((r) => left.has(r.delivery));
    }
    const chunks = chunked(rejections);
    // The parked entries, made once: the messages as they were queued come from their `unacked`
    // entries (the worker does not keep them), which a retry would find parked already.
    let parks: (readonly [string, string])[][] | undefined;
    const parked = new Array<boolean>(chunks.length).fill(false);
    const ids = chunks.map(() => crypto.randomUUID());
    // Each chunk's park record outlives the retries (an hour beyond them): a retry after the
    // record expired would park the chunk's messages a second time.
    const recordSeconds = (this.#outageLimit ?? DEFAULT_OUTAGE_LIMIT) + PARK_RECORD_SECONDS;
    await this.#settle(
      `park ${rejections.length} message(s)`,
      async () => {
        parks ??= await Promise.all(chunks.map((rs) => this.#parkEntries(rs)));
        const sent = await Promise.allSettled(parks.map(async (chunk, c) => {
          if (parked[c]) return;
          await park(this.#scope, chunk, ids[c], recordSeconds);
          parked[c] = true;
        }));
        const failed = sent.find((r) => r.status === "rejected");
        if (failed) throw failed.reason;
      },
    );
    return rejections;
  }

  /**
   * The tags and parked entries of some rejections, each message read from its `unacked` entry.
   * One acknowledged at intake, straight from its claim list, has no entry of its own (one under
   * its tag is another consumer's): it is re-encoded, with no tag for the park to remove.
   */
  async #parkEntries(rejections: readonly Rejection[]): Promise<[string, string][]> {
    const tags = rejections.map((r) =>
      this.#taker.ackedAtIntake(r.delivery) ? "" : r.delivery.deliveryTag
    );
    const entries = await this.#scope.client.hmget(this.#k("unacked"), ...tags);
    return rejections.map((r, i) => {
      const entry = entries[i];
      const raw = (entry === null ? null : envelopeOfUnacked(entry)) ??
        encodeEnvelope(
          r.delivery,
          { exchange: r.delivery.exchange, routing_key: r.delivery.routingKey },
          r.delivery.deliveryTag,
        );
      return [
        tags[i],
        parkEntry(raw, r.delivery.queue, r.reason, r.taskId ?? null, r.taskName ?? null),
      ];
    });
  }

  /**
   * Put deliveries back at the front of their queues (kombu's restore, RPUSH),
   * in the order given: the next take gets the first one first. Each goes to
   * the front, so the last is pushed first, all in one transaction: a
   * consumer blocked on the queue is served once they are all back, the
   * first one first (not the last one, pushed first, on its own).
   *
   * @param deliveries the deliveries, in the order they were received
   * @param limit seconds it is retried while Redis is unreachable (default
   *   the outage limit)
   * @param consumerDied count it in their delivery count (their consumer died
   *   holding them), as a restore after the visibility timeout does
   */
  async requeue(
    deliveries: readonly Delivery[],
    limit?: number,
    consumerDied = false,
  ): Promise<void> {
    const settleable = this.#taker.settleable(deliveries);
    if (settleable) deliveries = await settleable;
    if (deliveries.length === 0) return;
    await this.#settle(
      `requeue ${deliveries.length} message(s)`,
      async () => {
        const tx = this.#scope.client.multi() as RedisBatch & {
          celeriacRestore(...args: string[]): unknown;
        };
        for (const d of deliveries.toReversed()) {
          const raw = encodeEnvelope(
            consumerDied ? counted(d) : d,
            { exchange: d.exchange, routing_key: d.routingKey },
            d.deliveryTag,
            true,
          );
          tx.celeriacRestore(
            this.#k("unacked_index"),
            this.#k("unacked"),
            this.#k(priorityList(d.queue, d.properties.priority)),
            d.deliveryTag,
            "",
            raw,
            "front",
          );
        }
        const failed = (await tx.exec())?.find(([err]) => err !== null);
        if (failed) throw this.#demoted(failed[0]!, true);
      },
      limit ?? this.#outageLimit,
    );
  }

  /**
   * A master demoted to a replica (a Sentinel failover of a live master)
   * answers a transaction's writes with READONLY. Outside a transaction the
   * ioredis connection's `reconnectOnError` reconnects (through the
   * Sentinels, to the new master) and sends the command again; ioredis does
   * not show it the errors inside a transaction's reply: reconnect here
   * (`reconnect`, the ioredis connection), and retry as while Redis is
   * unreachable (acknowledging and the restore script are safe to repeat).
   * On a single server the connection dials its host name again (a failover
   * behind DNS) and asks until a master answers or the outage limit passes;
   * an acknowledgement is never dropped silently. Writes refused as the
   * transaction is queued (not only inside its `EXEC` reply) count too:
   * `EXECABORT` after a READONLY.
   */
  #demoted(err: unknown, reconnect: boolean): unknown {
    if (!refusedAsReplica(err)) return err;
    if (reconnect) this.#scope.client.disconnect(true);
    return new BrokerConnectionError(this.#scope.rawUrl, err);
  }

  /**
   * Renew leases: re-score still-unacknowledged tags in `unacked_index` with
   * the current time (`ZADD XX CH`, so acknowledged ones are not re-added).
   * A chunk that changed fewer scores than it has tags is looked up
   * (`ZMSCORE`) for the tags no longer there: settled, or restored to their
   * queue by a sweep.
   *
   * @param deliveries the deliveries
   * @returns those whose tag was no longer in `unacked_index`
   */
  async extend(deliveries: readonly Delivery[]): Promise<Delivery[]> {
    if (deliveries.length === 0) return [];
    const settleable = this.#taker.settleable(deliveries);
    if (settleable) deliveries = await settleable;
    const now = String(Date.now() / 1000);
    const key = this.#k("unacked_index");
    const { client } = this.#scope;
    const renew = async (ds: readonly Delivery[]) => {
      const tags = ds.map((d) => d.deliveryTag);
      const changed = await client.zadd(key, "XX", "CH", ...tags.flatMap((tag) => [now, tag]));
      if (Number(changed) >= new Set(tags).size) return [];
      const scores = await client.zmscore(key, ...tags);
      return ds.filter((_, i) => scores[i] === null);
    };
    const gone = await this.#scope.run(
      () => Promise.all(chunked(deliveries).map(renew)),
      { keys: [key] },
    );
    return gone.flat();
  }
}

/** The delivery with its count of consumers that died holding it one higher. */
function counted(d: Delivery): Delivery {
  const n = Number(d.headers[DELIVERY_COUNT_HEADER]) || 0;
  return { ...d, headers: { ...d.headers, [DELIVERY_COUNT_HEADER]: n + 1 } };
}
