/**
 * Decoding AMQP field tables (message headers) with every value type
 * Python's py-amqp and RabbitMQ write, exactly, straight to the plain
 * values a `Message`'s headers hold: amqplib reads neither py-amqp's
 * `L` (signed 64-bit, what py-amqp writes for any integer beyond ±2^31,
 * such as a millisecond timestamp) nor `U` (signed 16-bit), and throws on
 * them, which ends the whole connection. It also rounds 64-bit integers
 * beyond 2^53 to the nearest double.
 *
 * Tags, as py-amqp (and AMQP 0-9-1) and RabbitMQ use them: `t` boolean,
 * `b`/`B` signed/unsigned 8-bit, `U`/`s` signed 16-bit (py-amqp, RabbitMQ),
 * `u` unsigned 16-bit, `I` signed and `i` unsigned 32-bit, `L`/`l` signed
 * 64-bit (py-amqp, RabbitMQ), `f`/`d` floats, `D` decimal (digits signed,
 * as py-amqp writes them), `S` string, `x` bytes, `T` timestamp, `F` table,
 * `A` array, `V` null. 64-bit integers are numbers within ±2^53 and
 * `bigint`s beyond; a timestamp (seconds) is a `Date`, a decimal the
 * number `digits / 10 ** places`, bytes a `Uint8Array` of their own. A
 * nested table is a plain object whatever its keys (one holding `"!"` and
 * `"value"` is not read as amqplib's typed form).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { utf8At } from "./amqp_text_cache.ts";

/**
 * A field table that cannot be decoded (an unknown type tag, a length
 * past its end).
 *
 * @example
 * ```ts
 * import { decodeFieldTable, FieldTableError } from "./amqp_field_table.ts";
 * try {
 *   decodeFieldTable(new Uint8Array([1, 107, 63]));
 * } catch (err) {
 *   if (err instanceof FieldTableError) console.log(err.message); // ... type tag "?" ...
 * }
 * ```
 */
export class FieldTableError extends Error {
  override readonly name = "FieldTableError";
  /** Stable error code. */
  readonly code = "AMQP_FIELD_TABLE";
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The type tags, by their byte. */
const T_BOOL = 0x74; // t
const T_INT8 = 0x62; // b
const T_UINT8 = 0x42; // B
const T_INT16 = 0x55; // U
const T_INT16_RABBIT = 0x73; // s
const T_UINT16 = 0x75; // u
const T_INT32 = 0x49; // I
const T_UINT32 = 0x69; // i
const T_INT64 = 0x4c; // L
const T_INT64_RABBIT = 0x6c; // l
const T_FLOAT = 0x66; // f
const T_DOUBLE = 0x64; // d
const T_DECIMAL = 0x44; // D
const T_STRING = 0x53; // S
const T_BYTES = 0x78; // x
const T_TIMESTAMP = 0x54; // T
const T_TABLE = 0x46; // F
const T_ARRAY = 0x41; // A
const T_VOID = 0x56; // V

function int64(n: bigint): number | bigint {
  return n >= -SAFE && n <= SAFE ? Number(n) : n;
}

/** Reads one table or array in place; `at` moves along the bytes up to `end`. */
class TableReader {
  readonly #buf: Buffer;
  #at: number;
  readonly #end: number;

  /**
   * @param buf the bytes (not copied)
   * @param at where the entries start
   * @param end where they end
   */
  constructor(buf: Buffer, at: number, end: number) {
    this.#buf = buf;
    this.#at = at;
    this.#end = end;
  }

  #take(n: number): number {
    const at = this.#at;
    if (at + n > this.#end) {
      throw new FieldTableError(
        `A field table ends inside a value (needs ${n} bytes at ${at} of ${this.#end})`,
      );
    }
    this.#at += n;
    return at;
  }

  #shortText(): string {
    const len = this.#buf[this.#take(1)];
    return utf8At(this.#buf, this.#take(len), len);
  }

  /** The length before a long string, byte array or nested value. */
  #length(): number {
    return this.#buf.readUInt32BE(this.#take(4));
  }

  /** A nested table or array: a reader of its bytes; `#at` moves past them. */
  #nested(): TableReader {
    const len = this.#length();
    const at = this.#take(len);
    return new TableReader(this.#buf, at, at + len);
  }

  table(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (this.#at < this.#end) {
      const key = this.#shortText();
      const value = this.#value();
      // A plain store keeps the object in V8's fast mode (defineProperty for
      // every key cost ~4 µs per Celery header table); only "__proto__" needs
      // defineProperty to stay a header under --unsafe-proto.
      if (key === "__proto__") {
        Object.defineProperty(out, key, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else out[key] = value;
    }
    return out;
  }

  #value(): unknown {
    const b = this.#buf;
    const tag = b[this.#take(1)];
    switch (tag) {
      case T_STRING: {
        const len = this.#length();
        return utf8At(b, this.#take(len), len);
      }
      case T_VOID:
        return null;
      case T_INT32:
        return b.readInt32BE(this.#take(4));
      case T_BOOL:
        return b[this.#take(1)] !== 0;
      case T_TABLE:
        return this.#nested().table();
      case T_ARRAY:
        return this.#nested().array();
      case T_INT64:
      case T_INT64_RABBIT:
        return int64(b.readBigInt64BE(this.#take(8)));
      case T_DOUBLE:
        return b.readDoubleBE(this.#take(8));
      case T_INT8:
        return b.readInt8(this.#take(1));
      case T_UINT8:
        return b.readUInt8(this.#take(1));
      case T_INT16:
      case T_INT16_RABBIT:
        return b.readInt16BE(this.#take(2));
      case T_UINT16:
        return b.readUInt16BE(this.#take(2));
      case T_UINT32:
        return b.readUInt32BE(this.#take(4));
      case T_FLOAT:
        return b.readFloatBE(this.#take(4));
      case T_DECIMAL: {
        const places = b[this.#take(1)];
        return b.readInt32BE(this.#take(4)) / 10 ** places;
      }
      case T_BYTES: {
        const len = this.#length();
        const at = this.#take(len);
        return new Uint8Array(b.buffer.slice(b.byteOffset + at, b.byteOffset + at + len));
      }
      case T_TIMESTAMP:
        return new Date(Number(b.readBigUInt64BE(this.#take(8))) * 1000);
      default:
        throw new FieldTableError(
          `A field table holds a value of unknown type tag "${
            String.fromCharCode(tag)
          }" (byte ${tag}); AMQP 0-9-1, py-amqp and RabbitMQ define none such`,
        );
    }
  }

  array(): unknown[] {
    const out: unknown[] = [];
    while (this.#at < this.#end) out.push(this.#value());
    return out;
  }
}

/**
 * Decode the bytes of a field table (without its 4-byte length).
 *
 * @example py-amqp's `L` for a millisecond timestamp
 * ```ts
 * import { decodeFieldTable } from "./amqp_field_table.ts";
 * const bytes = new Uint8Array([7, ...new TextEncoder().encode("sent_ms"), 76, 0, 0, 1, 147, 155, 215, 82, 0]);
 * decodeFieldTable(bytes); // { sent_ms: 1733486400000 }
 * ```
 *
 * @param bytes the table's entries
 * @returns the table
 * @throws {FieldTableError} for an unknown type tag or a value cut short
 */
export function decodeFieldTable(bytes: Uint8Array): Record<string, unknown> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return new TableReader(buf, 0, buf.length).table();
}

/**
 * Decode the field table at `buf[at, end)` (without its 4-byte length) in
 * place, with no Buffer made for it or its nested values.
 *
 * @example
 * ```ts
 * import { Buffer } from "node:buffer";
 * import { decodeFieldTableAt } from "./amqp_field_table.ts";
 * decodeFieldTableAt(Buffer.from([0, 0, 1, 107, 86]), 2, 5); // { k: null }
 * ```
 *
 * @param buf the bytes around the table
 * @param at where its entries start
 * @param end where they end
 * @returns the table
 * @throws {FieldTableError} for an unknown type tag or a value cut short
 */
export function decodeFieldTableAt(
  buf: Buffer,
  at: number,
  end: number,
): Record<string, unknown> {
  return new TableReader(buf, at, end).table();
}
