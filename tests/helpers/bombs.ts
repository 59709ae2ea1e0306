/**
 * Decompression bombs, one per codec Celeriac decodes: task bodies
 * `[[1, 2], {}, {}]` padded with spaces (still valid JSON) to 64 MiB (zlib:
 * 32 MiB, 32 KB on the wire, under the KV broker's 60,000-byte messages;
 * the others a few KB at most), and the same padded to just under 1 MiB. zlib, brotli and
 * zstd are compressed here; Celeriac has no bzip2 or xz encoder, so those
 * are small seeds Python wrote (`bz2.compress`, `lzma.compress`), the xz
 * bomb being one stream of the head and 64 of 1 MiB of spaces,
 * concatenated (which xz, and Python's `lzma.decompress`, read as one body).
 */

import { brotliCompressSync, deflateSync, zstdCompressSync } from "node:zlib";

/** 1 MiB. */
export const MiB = 1024 * 1024;
/** The size of each bomb's `under` body: one byte under 1 MiB. */
export const UNDER = MiB - 1;
/** The task body the bombs hold. */
export const HEAD: Uint8Array = new TextEncoder().encode("[[1, 2], {}, {}]");

/** {@link HEAD} padded with spaces to `size` bytes. */
export function padded(size: number): Uint8Array {
  const out = new Uint8Array(size).fill(0x20);
  out.set(HEAD);
  return out;
}

const b64 = (s: string) => Uint8Array.fromBase64(s);

/** `bz2.compress(padded(64 MiB))`: 110 bytes. */
const BZ2_OVER = b64(
  "QlpoOTFBWSZTWR18ebsFfjaagMAEMAAACgAKAAggAFCDJiBNVJtRk97UVAS8lFQEttKKgJZneZr7fMu2lFQEvzFBWSZT" +
    "WSijK6kAonUQAcAAAACACCAAIKU0GYySohNikqITxdyRThQkBJb2N8A=",
);
/** `bz2.compress(padded(UNDER))`. */
const BZ2_UNDER = b64(
  "QlpoOTFBWSZTWa+99joAICSagMAEMAAACgAKABggAFCAGAVJTyhtNkkAPvAQBcoIAy+f5W3zGqCAOi7kinChIV977HQ=",
);
/** `lzma.compress(HEAD)`. */
const XZ_HEAD = b64(
  "/Td6WFoAAATm1rRGAgAhARYAAAB0L+WjAQAPW1sxLCAyXSwge30sIHt9XQD7oXPelHTQ/gABKBDlC2xgH7bzfQEAAAAABFla",
);
/** `lzma.compress(b" " * MiB)`: 284 bytes. */
const XZ_SPACES = b64(
  "/Td6WFoAAATm1rRGAgAhARYAAAB0L+Wj7///ANldABBv+7/+o7Fe5fg/sqomVfhocEFwFQ+N/R5MG4pCtxn0aRhxrmYj" +
    "iopNL6MN2X+m44wjEVPgWRjFdYrid/i2lH8MasDedElk4ulcU7IE2PdEDKtfDW1G6eXDdoi3llestk3haR1v+0uIEGxC" +
    "y4g/XACP0E6vJiiUcR89jyThcJ6nI1/sKMuF0ZWYin4qkfIndfcZwAaYTZj92K/VkA/EJVP49ZE2MQWlsO5vwXBNRwzR" +
    "kRGqrWAdus6xJxhcWYbpZlJYvul2rFnk5VsFCPnH2q38+1Iq9+SVJQAAAAAA+deQ8Nzo7OQAAfUBgIBAAHmXf0exxGf7" +
    "AgAAAAAEWVo=",
);
/** `lzma.compress(padded(UNDER))`. */
const XZ_UNDER = b64(
  "/Td6WFoAAATm1rRGAgAhARYAAAB0L+Wj7//+AOVdAC3gwFghFc2aLE91EYKtRz/WSgfrPDJ3Y74iGhuT0nRWeXMhY+4l" +
    "+UicfKZjN9DuCesluIKKM4j7wdy7PIsIOOcBT5Gwhumf33gXPKANh1MHIuXY0zMK6X6x1VSjDPTiivHIOxNbIOBYK8Ve" +
    "UaLnu9V45fQBfdydwAaYTZj92K/VkA/EJVP49ZE2MQWlsO5vwXBNRwzRkRGqrWAdus6xJxhcWYbpZlJYvul2rFnk5VsF" +
    "CPnH2q38+1IrdM0eWyBC+d1TPfgpZAk7gMsqbN+1O/DEvS5fqg8+S2ZCkBMO/xCTuVb+agAAAAAAsi72HnL3YqgAAYEC" +
    "//8/AOBYOlSxxGf7AgAAAAAEWVo=",
);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Computed once, at first use. */
function once(make: () => Uint8Array): () => Uint8Array {
  let made: Uint8Array | undefined;
  return () => made ??= make();
}

/** A codec's bomb: its `compression` header, a 32 or 64 MiB body and a body of {@link UNDER} bytes. */
export interface Bomb {
  mime: string;
  over: () => Uint8Array;
  under: () => Uint8Array;
}

/** One bomb per codec. */
export const BOMBS: Record<"zlib" | "bzip2" | "brotli" | "zstd" | "xz", Bomb> = {
  zlib: {
    mime: "application/x-gzip",
    over: once(() => new Uint8Array(deflateSync(padded(32 * MiB), { level: 9 }))),
    under: once(() => new Uint8Array(deflateSync(padded(UNDER)))),
  },
  bzip2: { mime: "application/x-bz2", over: () => BZ2_OVER, under: () => BZ2_UNDER },
  brotli: {
    mime: "application/x-brotli",
    over: once(() => new Uint8Array(brotliCompressSync(padded(64 * MiB)))),
    under: once(() => new Uint8Array(brotliCompressSync(padded(UNDER)))),
  },
  zstd: {
    mime: "application/zstd",
    over: once(() => new Uint8Array(zstdCompressSync(padded(64 * MiB)))),
    under: once(() => new Uint8Array(zstdCompressSync(padded(UNDER)))),
  },
  xz: {
    mime: "application/x-lzma",
    over: once(() => concat([XZ_HEAD, ...Array.from({ length: 64 }, () => XZ_SPACES)])),
    under: () => XZ_UNDER,
  },
};
