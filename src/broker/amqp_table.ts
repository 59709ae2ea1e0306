/**
 * AMQP field tables (message headers, declaration arguments) with the value
 * types py-amqp writes, so a Python worker reads Celeriac headers exactly as
 * it reads Celery's: integers within ±2^31 as `I` (signed 32-bit), larger
 * ones as `l` (signed 64-bit), other numbers and `PyFloat`s (Python floats,
 * whole or not) as `d` (double), `null` as `V`, strings as `S`, booleans as
 * `t`, arrays as `A`, objects as `F`, dates as `T`, bytes as `x`.
 *
 * amqplib would pick the smallest integer type (`b`, `s`) on its own; the
 * typed form here uses its `{"!": type, value}` escape to say which.
 * Received tables are decoded straight to plain values by
 * `amqp_field_table.ts`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { PyFloat } from "../protocol/json.ts";

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A value in amqplib's typed form: `{"!": "int", value: 0}`.
 *
 * @example
 * ```ts
 * import type { TypedFieldValue } from "./amqp_table.ts";
 * const retries: TypedFieldValue = { "!": "int", value: 0 }; // encoded as AMQP `I`
 * ```
 */
export interface TypedFieldValue {
  /** amqplib's type name: `int`, `long`, `double`, `timestamp`, `decimal`. */
  "!": string;
  /** The value. */
  value: unknown;
}

function typeNumber(n: number): TypedFieldValue {
  if (Number.isInteger(n) && n >= INT32_MIN && n <= INT32_MAX) return { "!": "int", value: n };
  if (Number.isSafeInteger(n)) return { "!": "long", value: n };
  return { "!": "double", value: n };
}

function typeBigint(n: bigint): TypedFieldValue {
  if (n >= INT32_MIN && n <= INT32_MAX) return { "!": "int", value: Number(n) };
  if (n >= INT64_MIN && n <= INT64_MAX) return { "!": "long", value: n };
  throw new RangeError(`${n} does not fit an AMQP header integer (signed 64-bit)`);
}

/**
 * Type one value for an AMQP field table.
 *
 * @example
 * ```ts
 * import { toAmqpValue } from "./amqp_table.ts";
 * toAmqpValue([null, 30]); // [null, { "!": "int", value: 30 }]
 * toAmqpValue(1.5); // { "!": "double", value: 1.5 }
 * ```
 *
 * @param value a JSON-like value (also `bigint`, `Date`, `Uint8Array`)
 * @returns the value in amqplib's typed form
 * @throws {RangeError} for an integer beyond 64 bits
 * @throws {TypeError} for a value no AMQP type can carry (a function, a symbol)
 */
export function toAmqpValue(value: unknown): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return typeNumber(value);
    case "bigint":
      return typeBigint(value);
    case "undefined":
      return null;
    case "object":
      if (value === null) return null;
      if (Array.isArray(value)) return value.map(toAmqpValue);
      if (value instanceof Date) {
        return { "!": "timestamp", value: Math.floor(value.getTime() / 1000) };
      }
      if (value instanceof PyFloat) return { "!": "double", value: value.value };
      if (value instanceof Uint8Array) return Buffer.from(value);
      return toAmqpTable(value as Record<string, unknown>);
    default:
      throw new TypeError(`A ${typeof value} cannot be sent in AMQP headers`);
  }
}

/**
 * Type every value of a table (headers or declaration arguments).
 *
 * @example Celery's default headers keep their Python types
 * ```ts
 * import { toAmqpTable } from "./amqp_table.ts";
 * toAmqpTable({ retries: 0, timelimit: [null, null], eta: null });
 * // { retries: { "!": "int", value: 0 }, timelimit: [null, null], eta: null }
 * ```
 *
 * @param table keys and JSON-like values; `undefined` values are left out
 * @returns the typed table for amqplib
 */
export function toAmqpTable(table: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(table)) if (v !== undefined) out[k] = toAmqpValue(v);
  return out;
}
