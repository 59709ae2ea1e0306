/**
 * The way AMQP message headers were read before they were decoded straight
 * to plain values (as of e6f70bf7): amqp_field_table.ts's reader gave
 * timestamps and decimals in amqplib's `{"!": type, value}` form and byte
 * arrays as copies, then amqp_table.ts's `fromAmqpTable` walked the table
 * again into plain values. Kept verbatim (errors made plain `Error`s) as
 * the reference tests/amqp_plain_headers_test.ts compares the new decoder
 * with.
 */

import { Buffer } from "node:buffer";
import { utf8At } from "../../src/broker/amqp_text_cache.ts";

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
      throw new Error(
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
        throw new Error(
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

/** The old path: the typed decode, then `fromAmqpTable`. */
export function decodeBefore(bytes: Uint8Array): Record<string, unknown> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return fromAmqpTable(new TableReader(buf, 0, buf.length).table());
}

function isTyped(value: object): value is { "!": string; value: unknown } {
  return Object.hasOwn(value, "!") && Object.hasOwn(value, "value");
}

function fromAmqpValue(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(fromAmqpValue);
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (isTyped(value)) {
    if (value["!"] === "timestamp") return new Date(Number(value.value) * 1000);
    if (value["!"] === "decimal") {
      const d = value.value as { places: number; digits: number };
      return d.digits / 10 ** d.places;
    }
    return value.value;
  }
  return fromAmqpTable(value as Record<string, unknown>);
}

function fromAmqpTable(table: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (table === undefined) return out;
  for (const k of Object.keys(table)) {
    const v = table[k];
    out[k] = v === null || typeof v !== "object" ? v : fromAmqpValue(v);
  }
  return out;
}
