/**
 * Decoding AMQP field tables (message headers) with every value type
 * Python's py-amqp and RabbitMQ write, exactly: amqplib reads neither
 * py-amqp's `L` (signed 64-bit, what py-amqp writes for any integer beyond
 * ±2^31, such as a millisecond timestamp) nor `U` (signed 16-bit), and
 * throws on them, which ends the whole connection. It also rounds 64-bit
 * integers beyond 2^53 to the nearest double.
 *
 * Tags, as py-amqp (and AMQP 0-9-1) and RabbitMQ use them: `t` boolean,
 * `b`/`B` signed/unsigned 8-bit, `U`/`s` signed 16-bit (py-amqp, RabbitMQ),
 * `u` unsigned 16-bit, `I` signed and `i` unsigned 32-bit, `L`/`l` signed
 * 64-bit (py-amqp, RabbitMQ), `f`/`d` floats, `D` decimal (digits signed,
 * as py-amqp writes them), `S` string, `x` bytes, `T` timestamp, `F` table,
 * `A` array, `V` null. 64-bit integers are numbers within ±2^53 and
 * `bigint`s beyond. Timestamps and decimals keep amqplib's
 * `{"!": type, value}` form, which `fromAmqpValue` reads.
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
    const tag = String.fromCharCode(b[this.#take(1)]);
    switch (tag) {
      case "t":
        return b[this.#take(1)] !== 0;
      case "b":
        return b.readInt8(this.#take(1));
      case "B":
        return b.readUInt8(this.#take(1));
      case "U":
      case "s":
        return b.readInt16BE(this.#take(2));
      case "u":
        return b.readUInt16BE(this.#take(2));
      case "I":
        return b.readInt32BE(this.#take(4));
      case "i":
        return b.readUInt32BE(this.#take(4));
      case "L":
      case "l":
        return int64(b.readBigInt64BE(this.#take(8)));
      case "f":
        return b.readFloatBE(this.#take(4));
      case "d":
        return b.readDoubleBE(this.#take(8));
      case "D": {
        const places = b[this.#take(1)];
        return { "!": "decimal", value: { places, digits: b.readInt32BE(this.#take(4)) } };
      }
      case "S": {
        const len = this.#length();
        return utf8At(b, this.#take(len), len);
      }
      case "x": {
        const len = this.#length();
        const at = this.#take(len);
        return new Uint8Array(b.buffer.slice(b.byteOffset + at, b.byteOffset + at + len));
      }
      case "T":
        return { "!": "timestamp", value: Number(b.readBigUInt64BE(this.#take(8))) };
      case "F":
        return this.#nested().table();
      case "A":
        return this.#nested().array();
      case "V":
        return null;
      default:
        throw new FieldTableError(
          `A field table holds a value of unknown type tag "${tag}" (byte ${
            b[this.#at - 1]
          }); AMQP 0-9-1, py-amqp and RabbitMQ define none such`,
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
