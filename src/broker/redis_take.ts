/**
 * Taking messages from Redis: one atomic script call takes a batch and
 * records it in `unacked` / `unacked_index` (reconciling a take whose
 * reply was lost), malformed elements are parked, and while the queues are
 * empty the taker waits by claiming (see redis_claims.ts), riding out a
 * Redis outage by retrying every {@link RECONNECT_POLL_MS} ms.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { decodeEnvelopeWith, type Envelope } from "../protocol/envelope.ts";
import { sleep } from "./sleep.ts";
import type { Delivery } from "./port.ts";
import { BrokerConnectionError } from "./errors.ts";
import {
  CLAIM_LEASE_SECONDS,
  claimedList,
  claimList,
  CLAIMS_KEY,
  ClaimWatcher,
} from "./redis_claims.ts";
import type { RedisScope } from "./redis_commands.ts";
import { duplicateRedis } from "./redis_connection.ts";
import { PARKED_KEY, queueOfList, rotatedLists } from "./redis_keys.ts";
import { parkRaw } from "./redis_parked.ts";
import { TAKE_SCRIPT } from "./redis_scripts.ts";
import { RespScript, stringArray } from "./resp_scripts.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/**
 * How often a take retries while Redis is unreachable, in milliseconds.
 *
 * @example
 * ```ts
 * import { RECONNECT_POLL_MS } from "./redis_take.ts";
 * RECONNECT_POLL_MS; // 100
 * ```
 */
export const RECONNECT_POLL_MS = 100;

const TAKE = new RespScript(TAKE_SCRIPT);

/** Bodies of up to this many base64 characters share their take's buffer (see {@link BodyPack}). */
const PACKED_MAX = 1024;
/** The body of a delivery until its take's buffer is cut (never seen outside a take). */
const PENDING = new Uint8Array(0);

/**
 * Decodes the small bodies of one take into one buffer: each delivery's body
 * is a view of it, instead of a buffer of its own per message (a V8
 * ArrayBuffer costs an allocation, a backing store and its sweeping, here
 * and again in the Web Worker a body is posted to). A post to a Web Worker
 * copies the whole buffer (the take's small bodies) once per message; a
 * delivery held for long (ETA, rate limit) gets its own copy from the
 * intake, so that it does not keep its take's buffer.
 */
class BodyPack {
  #scratch = new Uint8Array(16 * 1024);
  #at = 0;
  readonly #spans: number[] = [];
  #count = 0;
  #busy = false;

  /** Start a take's bodies; false while another take uses the pack (each then has its own). */
  begin(): boolean {
    if (this.#busy) return false;
    this.#busy = true;
    this.#at = 0;
    this.#count = 0;
    return true;
  }

  /** Decode a base64 body: {@link PENDING} until {@link BodyPack.end}, or bytes of its own. */
  readonly decode = (text: string): Uint8Array => {
    if (text.length > PACKED_MAX) return Uint8Array.fromBase64(text);
    const most = Math.ceil(text.length / 4) * 3;
    if (this.#scratch.length - this.#at < most) {
      const grown = new Uint8Array(Math.max(this.#scratch.length * 2, this.#at + most));
      grown.set(this.#scratch.subarray(0, this.#at));
      this.#scratch = grown;
    }
    const { read, written } = this.#scratch.subarray(this.#at).setFromBase64(text);
    if (read !== text.length) return Uint8Array.fromBase64(text);
    this.#spans[this.#count * 2] = this.#at;
    this.#spans[this.#count * 2 + 1] = written;
    this.#count++;
    this.#at += written;
    return PENDING;
  };

  /** Give the deliveries whose body is {@link PENDING} (in decode order) their views of one buffer. */
  end(pending: readonly Delivery[]): void {
    this.#busy = false;
    if (pending.length === 0) return;
    const packed = this.#scratch.slice(0, this.#at);
    const spans = this.#spans;
    for (let i = 0; i < pending.length; i++) {
      pending[i].body = packed.subarray(spans[i * 2], spans[i * 2] + spans[i * 2 + 1]);
    }
  }
}

function plainBase64(text: string): Uint8Array {
  return Uint8Array.fromBase64(text);
}

/**
 * One broker's takes: its claim watchers (one blocked connection per
 * list) and its take record. It keeps no delivery's raw envelope (parking
 * reads it back from the `unacked` entry, see `envelopeOfUnacked`).
 *
 * @example
 * ```ts ignore
 * import { RedisTaker } from "./redis_take.ts";
 * const taker = new RedisTaker(scope);
 * const deliveries = await taker.take(["celery"], 10, AbortSignal.timeout(5000));
 * await taker.close();
 * ```
 */
export class RedisTaker {
  readonly #scope: RedisScope;
  readonly #watchers = new Map<string, ClaimWatcher>();
  /** This broker's id in its claim lists (see redis_claims.ts). */
  readonly #id = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
  #rotation = 0;
  /** This consumer's take record and the sequence id of its next take. */
  readonly #takeRecord = `celeriac.take.${crypto.randomUUID()}`;
  #takeSeq = 0;
  /** Lists of a take whose reply was lost: the next take repeats it with the same id. */
  #unsureTake: { lists: string[]; seq: number } | null = null;
  /**
   * Claims counted (over every watcher) before the last take that found
   * every list empty; null when the last take may have left messages.
   */
  #emptyAt: number | null = null;
  readonly #bodies = new BodyPack();

  /** @param scope the broker's connection and key prefix */
  constructor(scope: RedisScope) {
    this.#scope = scope;
  }

  /**
   * Take up to `max` messages atomically, waiting while the queues are
   * empty, and while Redis is unreachable (retrying every 100 ms until it is
   * back or `signal` aborts).
   */
  async take(queues: readonly string[], max: number, signal: AbortSignal): Promise<Delivery[]> {
    let down = 0;
    // The last take emptied every list and nothing was claimed since: a take now would find
    // nothing, so wait first (a message queued meanwhile ends the wait at once).
    if (this.#emptyAt !== null && this.#emptyAt === this.#claims(null)) {
      await this.#waitAny(rotatedLists(queues, this.#rotation), signal);
    }
    this.#emptyAt = null;
    while (!signal.aborted) {
      const lists = this.#unsureTake?.lists ?? rotatedLists(queues, this.#rotation);
      const claims = this.#claims(lists);
      const claimedBefore = this.#claims(null);
      let got: Delivery[];
      let taken: number;
      try {
        [got, taken] = await this.#takeNow(lists, max);
      } catch (err) {
        if (!(err instanceof BrokerConnectionError)) throw err;
        // Ride out the outage here, as the AMQP transport does: retry soon after Redis is back.
        if (down === 0) {
          down = Date.now();
          log.warn("Redis is unreachable ({error}); taking again as soon as it is back", {
            error: err.message,
          });
        }
        await sleep(RECONNECT_POLL_MS, signal);
        continue;
      }
      if (down !== 0) {
        log.info("Redis is back after {seconds} s: taking again", {
          seconds: ((Date.now() - down) / 1000).toFixed(1),
        });
        down = 0;
      }
      if (got.length > 0) {
        this.#rotation++;
        if (taken < max) this.#emptyAt = claimedBefore;
        return got;
      }
      if (this.#claims(lists) === claims) await this.#waitAny(lists, signal);
    }
    return [];
  }

  /**
   * Take with the script. When the reply does not arrive (a disconnect), the
   * script may have run: the next take repeats this one with the same id
   * and lists, and the script hands over what it recorded instead of
   * taking again, so nothing waits in `unacked` for the visibility timeout.
   *
   * @returns the deliveries, and how many elements the script took (parked
   *   ones too: fewer than `max` means it left every list empty)
   */
  async #takeNow(lists: string[], max: number): Promise<[Delivery[], number]> {
    const s = this.#scope;
    // Messages this broker claimed while waiting come first (they were sent first).
    const sources = [...lists, ...lists];
    const keys = [
      ...lists.map((l) => s.k(claimList(this.#id, l))),
      ...lists.map((l) => s.k(l)),
      s.k("unacked_index"),
      s.k("unacked"),
      s.k(PARKED_KEY),
      s.k(this.#takeRecord),
    ];
    // A take repeating one whose reply was lost uses that take's id; takes never share one.
    const seq = this.#unsureTake?.seq ?? ++this.#takeSeq;
    const args = [String(max), String(seq)];
    let flat: string[];
    try {
      flat = s.resp
        ? await s.resp.evalScript(TAKE, keys, args, stringArray)
        : await s.run(() => s.client.celeriacTake(keys.length, ...keys, ...args));
    } catch (err) {
      this.#unsureTake = { lists, seq };
      throw err;
    }
    if (this.#unsureTake !== null && flat.length > 0) {
      log.info("Reconciled a take whose reply was lost: {n} message(s) handed over", {
        n: flat.length / 3,
      });
    }
    this.#unsureTake = null;
    const out: Delivery[] = [];
    const pack = this.#bodies;
    const packing = pack.begin();
    const base64 = packing ? pack.decode : plainBase64;
    const pending: Delivery[] = [];
    try {
      for (let i = 0; i < flat.length; i += 3) {
        const pos = Number(flat[i]);
        const tag = flat[i + 1];
        const raw = flat[i + 2];
        const list = sources[Math.abs(pos) - 1];
        if (pos < 0) {
          log.error("Parked a malformed message from {list}: not a kombu envelope ({sample})", {
            list,
            sample: raw.slice(0, 200),
          });
          continue;
        }
        let env: Envelope;
        try {
          env = decodeEnvelopeWith(raw, base64);
        } catch (err) {
          await parkRaw(
            s,
            tag,
            raw,
            queueOfList(list),
            `malformed message: ${(err as Error).message}`,
          );
          continue;
        }
        const d: Delivery = {
          body: env.body,
          contentType: env.contentType,
          contentEncoding: env.contentEncoding,
          headers: env.headers,
          properties: env.properties,
          queue: queueOfList(list),
          deliveryTag: tag,
          redelivered: env.redelivered,
          exchange: env.deliveryInfo.exchange,
          routingKey: env.deliveryInfo.routing_key,
        };
        // Set afterwards rather than spread into the literal: a spread costs an object per message.
        if (env.undecodable !== undefined) d.undecodable = env.undecodable;
        if (env.body === PENDING) pending.push(d);
        out.push(d);
      }
    } finally {
      if (packing) pack.end(pending);
    }
    return [out, flat.length / 3];
  }

  async #waitAny(lists: string[], signal: AbortSignal): Promise<void> {
    const waits = lists.map((l) => this.#watcher(l).wait());
    const { promise: aborted, resolve } = Promise.withResolvers<boolean>();
    const onAbort = () => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await Promise.race([...waits, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Messages claimed so far by the watchers of `lists` (those not watched
   * yet claimed none), or by every watcher when `lists` is null.
   */
  #claims(lists: string[] | null): number {
    let n = 0;
    if (lists === null) { for (const w of this.#watchers.values()) n += w.claims; }
    else for (const l of lists) n += this.#watchers.get(l)?.claims ?? 0;
    return n;
  }

  #watcher(list: string): ClaimWatcher {
    let w = this.#watchers.get(list);
    if (!w) {
      const s = this.#scope;
      const conn = duplicateRedis(s.client, s.rawUrl, "celeriac-watch");
      conn.on("error", () => {});
      const member = claimList(this.#id, list);
      w = new ClaimWatcher(
        conn,
        s.k(list),
        s.k(member),
        (c) => c.zadd(s.k(CLAIMS_KEY), Date.now() / 1000, member),
      );
      this.#watchers.set(list, w);
    }
    return w;
  }

  /**
   * Put claims back at the front of their queues: this broker's own (on
   * close), or every claim not renewed for {@link CLAIM_LEASE_SECONDS}.
   *
   * @param own this broker's claims, rather than abandoned ones
   * @returns how many messages moved
   */
  async returnClaims(own: boolean): Promise<number> {
    const s = this.#scope;
    const members = own
      ? [...this.#watchers.keys()].map((l) => claimList(this.#id, l))
      : await s.client.zrangebyscore(
        s.k(CLAIMS_KEY),
        "-inf",
        Date.now() / 1000 - CLAIM_LEASE_SECONDS,
      );
    let moved = 0;
    for (const member of members) {
      const list = claimedList(member);
      if (list === null) continue;
      moved += await s.client.celeriacReturnClaim(
        s.k(member),
        s.k(list),
        s.k(CLAIMS_KEY),
        member,
      );
    }
    if (moved > 0) log.info("Returned {n} claimed message(s) to their queues", { n: moved });
    return moved;
  }

  /** Stop waiting and put this broker's claims back in their queues. */
  async close(): Promise<void> {
    for (const w of this.#watchers.values()) w.close();
    await this.returnClaims(true).catch((err) =>
      log.warn("Could not return claimed messages: {error}", { error: (err as Error).message })
    );
    this.#watchers.clear();
    // The record only serves this consumer's next take; without this it lingers until it expires.
    await this.#scope.client.del(this.#scope.k(this.#takeRecord)).catch((err) =>
      log.debug("Could not delete the take record: {error}", { error: (err as Error).message })
    );
  }
}
