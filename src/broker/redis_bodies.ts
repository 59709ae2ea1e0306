/**
 * The deliveries of a Redis take (redis_take.ts): their bodies decoded into
 * one buffer, a delivery's small body being a view of its take's buffer,
 * and each made of its envelope ({@link toDelivery}).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { decodeEnvelope, decodeEnvelopeWith, type Envelope } from "../protocol/envelope.ts";
import type { Delivery } from "./port.ts";
import type { RedisScope } from "./redis_commands.ts";
import type { EarlyDeliveries } from "./redis_early.ts";
import { queueOfList } from "./redis_keys.ts";
import { parkRaw } from "./redis_parked.ts";
import type { FlatStrings } from "./resp_strings.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/** Bodies of up to this many base64 characters share their take's buffer (see {@link BodyPack}). */
const PACKED_MAX = 1024;
/** The body of a delivery until its take's buffer is cut (never seen outside a take). */
export const PENDING: Uint8Array = new Uint8Array(0);

/**
 * Decodes the small bodies of one take into one buffer: each delivery's body
 * is a view of it, instead of a buffer of its own per message (a V8
 * ArrayBuffer costs an allocation, a backing store and its sweeping, here
 * and again in the Web Worker a body is posted to). A message to a Web
 * Worker that holds only some of a take's bodies gives them a buffer of
 * their own first (`postTo` in pool_member.ts: a post clones a body's whole
 * buffer); a delivery held for long (ETA, rate limit) gets its own copy
 * from the intake, so that it does not keep its take's buffer.
 *
 * @example
 * ```ts ignore
 * const pack = new BodyPack();
 * const packing = pack.begin();
 * const env = packing ? decodeEnvelopeWith(raw, pack.decode) : decodeEnvelope(raw);
 * if (packing) pack.end(env.body === PENDING ? [delivery] : []);
 * ```
 */
export class BodyPack {
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

/**
 * The delivery of an envelope taken from queue list `list` and recorded
 * under `tag` (its body as decoded: a view of its take's buffer, or its own).
 *
 * @example
 * ```ts ignore
 * const d = toDelivery(decodeEnvelope(raw), "celery", tag);
 * ```
 *
 * @param env the decoded envelope
 * @param list the queue list it was taken from (a priority suffix names the queue too)
 * @param tag the tag it is recorded under in `unacked`
 * @returns the delivery
 */
export function toDelivery(env: Envelope, list: string, tag: string): Delivery {
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
  return d;
}

/**
 * The deliveries of a take script's reply (flat: list position, negative
 * for an element it parked; tag; element), in order: an element handed out
 * early is given its recorded tag instead ({@link EarlyDeliveries.recorded}),
 * one the script parked is logged, one that does not decode is parked.
 *
 * @example
 * ```ts ignore
 * const deliveries = await readTake(scope, flat, sources, new BodyPack(), early);
 * ```
 *
 * @param s the broker's connection and key prefix (for parking)
 * @param flat the script's reply
 * @param sources the list each position names (1-based), as the script read them
 * @param pack decodes the take's small bodies into one buffer
 * @param early the taker's early deliveries
 * @returns the deliveries
 */
export async function readTake(
  s: RedisScope,
  flat: FlatStrings,
  sources: readonly string[],
  pack: BodyPack,
  early: EarlyDeliveries,
): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const packing = pack.begin();
  const pending: Delivery[] = [];
  try {
    for (let i = 0; i < flat.length; i += 3) {
      const pos = flat.int(i);
      // Read at once (JSON.parse copies what it keeps): it may share the reply's memory.
      const raw = flat.text(i + 2);
      const list = sources[Math.abs(pos) - 1];
      if (early.size > 0 && early.recorded(raw, flat.own(i + 1))) continue;
      if (pos < 0) {
        log.error("Parked a malformed message from {list}: not a kombu envelope ({sample})", {
          list,
          sample: raw.slice(0, 200),
        });
        continue;
      }
      let env: Envelope;
      try {
        env = packing ? decodeEnvelopeWith(raw, pack.decode) : decodeEnvelope(raw);
      } catch (err) {
        await parkRaw(
          s,
          flat.own(i + 1),
          raw,
          queueOfList(list),
          `malformed message: ${(err as Error).message}`,
        );
        continue;
      }
      // The tag it was recorded under: the envelope's own (the usual case) is the string kept.
      const known = env.deliveryTag;
      const d = toDelivery(env, list, flat.equals(i + 1, known) ? known : flat.own(i + 1));
      if (env.body === PENDING) pending.push(d);
      out.push(d);
    }
  } finally {
    if (packing) pack.end(pending);
  }
  return out;
}
