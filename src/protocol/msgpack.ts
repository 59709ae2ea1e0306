/**
 * The msgpack codec (kombu's `msgpack` serializer: `use_bin_type=True`,
 * `raw=False`). Loaded on demand by {@link loadCodecs}, so programs that
 * only speak JSON never load it.
 *
 * @module
 */

import { decode, Encoder } from "@msgpack/msgpack";
import { refusal, Refused } from "./encodable.ts";
import { PyFloat } from "./json.ts";
import { pyIsoFormat } from "./time.ts";

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

function toMsgpackValue(value: unknown, seen: Set<object>, inArray: boolean): unknown {
  if (typeof value === "bigint" && (value < INT64_MIN || value > UINT64_MAX)) {
    // msgpack integers are 64-bit; the encoder would silently wrap larger ones.
    throw new Refused(`Integer ${value} does not fit in 64 bits: msgpack cannot encode it`);
  }
  if (value instanceof Date) {
    if (!Number.isFinite(value.getTime())) throw new Refused("Invalid Date cannot be encoded");
    return pyIsoFormat(value, "Z");
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  // Written as a float by the encoder (below), as Python's msgpack writes `1.0`.
  if (value instanceof PyFloat) return value;
  if (ArrayBuffer.isView(value)) return value;
  const why = refusal(value, inArray);
  if (why) throw new Refused(why);
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) throw new Refused("Cannot encode a value that contains itself (a cycle)");
  seen.add(value);
  let key: string | number = 0;
  try {
    if (Array.isArray(value)) {
      const out = new Array<unknown>(value.length);
      for (let i = 0; i < value.length; i++) {
        key = i;
        out[i] = toMsgpackValue(value[i], seen, true);
      }
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      key = k;
      if (v !== undefined) out[k] = toMsgpackValue(v, seen, false);
    }
    return out;
  } catch (err) {
    throw err instanceof Refused ? err.under(key) : err;
  } finally {
    seen.delete(value);
  }
}

/** A decoded integer as a number when it fits one exactly, else the bigint. */
function fromInteger(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}

/**
 * Integers that fit a number as numbers, in place, without recursion: the
 * decoder itself nests without a limit, and a body nested thousands deep
 * (a few KB) must reach the body's depth check, not overflow the stack.
 */
function fromMsgpackValue(root: unknown): unknown {
  if (typeof root === "bigint") return fromInteger(root);
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) continue;
    const obj = value as Record<string, unknown>;
    for (const k of Array.isArray(value) ? value.keys() : Object.keys(obj)) {
      const item = obj[k];
      if (typeof item === "bigint") obj[k] = fromInteger(item);
      else if (item !== null && typeof item === "object") stack.push(item);
    }
  }
  return root;
}

/** The parts of @msgpack/msgpack's (pinned) Encoder that write one value. */
interface EncoderSteps {
  doEncode(object: unknown, depth: number): void;
  encodeNumberAsFloat(value: number): void;
}

/**
 * A new encoder that writes a {@link PyFloat} as a float 64, as Python's
 * msgpack writes `1.0` (the library writes every whole number as an
 * integer, and Python would get `1`).
 */
function pyEncoder(): Encoder {
  const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
  const steps = encoder as unknown as EncoderSteps;
  const doEncode = steps.doEncode.bind(encoder);
  steps.doEncode = (object, depth) =>
    object instanceof PyFloat ? steps.encodeNumberAsFloat(object.value) : doEncode(object, depth);
  return encoder;
}

/**
 * Encode a value as msgpack the way Python's kombu reads it: dates as ISO
 * strings, integers up to 64 bits, `Uint8Array` as bin, a {@link PyFloat}
 * as a float (`new PyFloat(1)` arrives as `1.0`).
 *
 * @example
 * ```ts
 * const bytes = msgpackEncode([[1, 2], {}, {}]);
 * ```
 *
 * @param value the value
 * @returns the bytes
 * @throws {EncodeError} for integers beyond 64 bits, cycles, `Map`, `Set`, functions,
 *   symbols, `undefined` in arrays and `Error` objects; its `path` says where
 */
export function msgpackEncode(value: unknown): Uint8Array {
  let plain: unknown;
  try {
    plain = toMsgpackValue(value, new Set(), false);
  } catch (err) {
    throw err instanceof Refused ? err.toError() : err;
  }
  return pyEncoder().encode(plain);
}

/**
 * Decode msgpack; integers beyond 2^53 come back as `bigint`, bin as `Uint8Array`.
 *
 * @example
 * ```ts
 * msgpackDecode(msgpackEncode({ a: 1 })); // { a: 1 }
 * ```
 *
 * @param bytes the encoded bytes
 * @returns the value
 */
export function msgpackDecode(bytes: Uint8Array): unknown {
  return fromMsgpackValue(decode(bytes, { useBigInt64: true }));
}
