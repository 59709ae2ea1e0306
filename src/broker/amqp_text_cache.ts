/**
 * Short strings of AMQP frames (header names, short header values, content
 * types, queue names, consumer tags) decoded once and then recognised by
 * their bytes. A Celery message carries some thirty of them, the same in
 * every message; decoding each through `Buffer.toString` is a call into
 * Deno and a new string per message. Equal bytes decode to equal text, so
 * a string found in the cache is the one decoding would give.
 *
 * The cache is direct-mapped: each string of at most {@link CACHED_BYTES}
 * bytes has one slot, picked from its length and three of its bytes; a
 * string that differs from the slot's takes its place.
 *
 * @module
 */

import type { Buffer } from "node:buffer";

/**
 * Longest string kept (bytes); longer ones (task ids) are decoded each time.
 *
 * @example
 * ```ts
 * import { CACHED_BYTES } from "./amqp_text_cache.ts";
 * CACHED_BYTES; // 32
 * ```
 */
export const CACHED_BYTES = 32;

const SLOTS = 1024;
const slotBytes = new Uint8Array(SLOTS * CACHED_BYTES);
const slotLength = new Int16Array(SLOTS).fill(-1);
const slotText: string[] = new Array(SLOTS).fill("");

/**
 * The UTF-8 text of `buf[at, at + len)`, decoded as amqplib decodes it
 * (`Buffer.toString`: invalid bytes become U+FFFD), from the cache when
 * the same bytes were decoded before.
 *
 * @example
 * ```ts
 * import { Buffer } from "node:buffer";
 * import { utf8At } from "./amqp_text_cache.ts";
 * utf8At(Buffer.from("xcelery"), 1, 6); // "celery"
 * ```
 *
 * @param buf the bytes
 * @param at where the text starts
 * @param len its length in bytes
 * @returns the text
 */
export function utf8At(buf: Buffer, at: number, len: number): string {
  if (len === 0) return "";
  if (len > CACHED_BYTES) return buf.toString("utf8", at, at + len);
  const slot = (len * 97 + buf[at] * 31 + buf[at + len - 1] * 7 + buf[at + (len >> 1)]) &
    (SLOTS - 1);
  const base = slot * CACHED_BYTES;
  if (slotLength[slot] === len) {
    let i = 0;
    while (i < len && slotBytes[base + i] === buf[at + i]) i++;
    if (i === len) return slotText[slot];
  }
  const text = buf.toString("utf8", at, at + len);
  for (let i = 0; i < len; i++) slotBytes[base + i] = buf[at + i];
  slotLength[slot] = len;
  slotText[slot] = text;
  return text;
}
