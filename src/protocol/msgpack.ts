/**
 * The msgpack codec (kombu's `msgpack` serializer: `use_bin_type=True`,
 * `raw=False`). Loaded on demand by {@link loadCodecs}, so programs that
 * only speak JSON never load it.
 *
 * @module
 */

import { decode, encode } from "@msgpack/msgpack";
import { EncodeError } from "./errors.ts";
import { pyIsoFormat } from "./time.ts";

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

function toMsgpackValue(value: unknown): unknown {
  if (typeof value === "bigint" && (value < INT64_MIN || value > UINT64_MAX)) {
    // msgpack integers are 64-bit; the encoder would silently wrap larger ones.
    throw new EncodeError(`Integer ${value} does not fit in 64 bits: msgpack cannot encode it`);
  }
  if (value instanceof Date) return pyIsoFormat(value, "Z");
  if (Array.isArray(value)) return value.map(toMsgpackValue);
  if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value)) {
    if (value instanceof Map || value instanceof Set) {
      throw new EncodeError(`A ${value.constructor.name} cannot be encoded: use a plain object`);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[k] = toMsgpackValue(v);
    }
    return out;
  }
  return value;
}

function fromMsgpackValue(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = fromMsgpackValue(value[i]);
    return value;
  }
  if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value)) {
    const obj = value as Record<string, unknown>;
    for (const k of Object.keys(obj)) obj[k] = fromMsgpackValue(obj[k]);
  }
  return value;
}

/**
 * Encode a value as msgpack the way Python's kombu reads it: dates as ISO
 * strings, integers up to 64 bits, `Uint8Array` as bin.
 *
 * @example
 * ```ts ignore
 * const bytes = msgpackEncode([[1, 2], {}, {}]);
 * ```
 *
 * @param value the value
 * @returns the bytes
 * @throws {EncodeError} for integers beyond 64 bits, `Map` and `Set`
 */
export function msgpackEncode(value: unknown): Uint8Array {
  return encode(toMsgpackValue(value), { useBigInt64: true, ignoreUndefined: true });
}

/**
 * Decode msgpack; integers beyond 2^53 come back as `bigint`, bin as `Uint8Array`.
 *
 * @example
 * ```ts ignore
 * msgpackDecode(msgpackEncode({ a: 1 })); // { a: 1 }
 * ```
 *
 * @param bytes the encoded bytes
 * @returns the value
 */
export function msgpackDecode(bytes: Uint8Array): unknown {
  return fromMsgpackValue(decode(bytes, { useBigInt64: true }));
}
