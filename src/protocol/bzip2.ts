/**
 * A bzip2 decoder for kombu's `bzip2` compressor (`application/x-bz2`):
 * Python's `bz2.compress` writes one stream; `bz2.decompress` reads
 * streams one after the other. Its block table (4 bytes per byte of a
 * block, up to 3.6 MB) is allocated once per body and grown only as a block
 * needs it, so a body of many tiny blocks or streams costs about what
 * Python's libbzip2 spends on it, not a fresh 3.6 MB table per block.
 *
 * @module
 */

/** Thrown when the body ends inside a stream. */
const ENDED = Symbol("ended");
/** Thrown when the output passes its limit. */
const OVER = Symbol("over the limit");

const BLOCK_MAGIC = [0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
const END_MAGIC = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90];
const MAX_GROUPS = 6;
const MAX_CODE_LENGTH = 20;
const SYMBOLS_PER_GROUP = 50;

/** bzip2's CRC32 (MSB first, polynomial 0x04c11db7), a byte at a time. */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** The decoder's state over one body: input bits, the output, the block table. */
class Decoder {
  pos = 0;
  private bitBuf = 0;
  private bitCount = 0;
  out: Uint8Array;
  at = 0;
  private tt = new Uint32Array(0);

  constructor(private readonly body: Uint8Array, private readonly maxSize: number) {
    this.out = new Uint8Array(Math.min(maxSize, 64 * 1024));
  }

  /** The next `n` bits (n <= 24), most significant first. */
  bits(n: number): number {
    while (this.bitCount < n) {
      if (this.pos >= this.body.length) throw ENDED;
      this.bitBuf = ((this.bitBuf << 8) | this.body[this.pos++]) & 0xffffffff;
      this.bitCount += 8;
    }
    this.bitCount -= n;
    return (this.bitBuf >>> this.bitCount) & ((1 << n) - 1);
  }

  /**
   * Room for `n` more output bytes, and for `more` after them as far as the
   * limit allows (bytes that may come, so they do not count against it);
   * throws {@link OVER} when the `n` pass the limit.
   */
  private room(n: number, more = 0): void {
    if (this.at + n > this.maxSize) throw OVER;
    const want = Math.min(this.at + n + more, this.maxSize);
    if (want <= this.out.length) return;
    let size = this.out.length * 2;
    while (size < want) size *= 2;
    const grown = new Uint8Array(Math.min(this.maxSize, size));
    grown.set(this.out.subarray(0, this.at));
    this.out = grown;
  }

  /** Decode one stream (its output appended), from `BZh` to its end-of-stream CRC. */
  stream(): void {
    for (const expected of [0x42, 0x5a, 0x68]) {
      if (this.bits(8) !== expected) throw new Error("not a bzip2 stream (bad magic)");
    }
    const level = this.bits(8) - 0x30;
    if (level < 1 || level > 9) throw new Error("not a bzip2 stream (bad block size)");
    let combined = 0;
    for (;;) {
      const first = this.bits(8);
      const magic = first === BLOCK_MAGIC[0]
        ? BLOCK_MAGIC
        : first === END_MAGIC[0]
        ? END_MAGIC
        : null;
      if (!magic) throw new Error("bad block header");
      for (let i = 1; i < 6; i++) {
        if (this.bits(8) !== magic[i]) throw new Error("bad block header");
      }
      const crc = ((this.bits(16) << 16) | this.bits(16)) >>> 0;
      if (magic === END_MAGIC) {
        if (crc !== combined) throw new Error("stream CRC mismatch");
        this.bitCount = 0; // a stream ends on a byte boundary
        return;
      }
      const got = this.block(level * 100_000);
      if (got !== crc) throw new Error("block CRC mismatch");
      combined = (((combined << 1) | (combined >>> 31)) ^ crc) >>> 0;
    }
  }

  /** Decode one block after its magic and CRC; returns the CRC of its output. */
  private block(blockMax: number): number {
    if (this.bits(1)) {
      throw new Error("randomised blocks (bzip2 0.9.0 and older) are not supported");
    }
    const origPtr = this.bits(24);
    const symbols: number[] = [];
    const used = this.bits(16);
    for (let i = 0; i < 16; i++) {
      if (!(used & (0x8000 >> i))) continue;
      const bits = this.bits(16);
      for (let j = 0; j < 16; j++) if (bits & (0x8000 >> j)) symbols.push(i * 16 + j);
    }
    if (symbols.length === 0) throw new Error("a block uses no symbols");
    const alphaSize = symbols.length + 2;
    const groups = this.bits(3);
    if (groups < 2 || groups > MAX_GROUPS) throw new Error("bad Huffman group count");
    const selectorCount = this.bits(15);
    if (selectorCount < 1) throw new Error("no selectors");
    const order = Uint8Array.from({ length: groups }, (_, i) => i);
    const selectors = new Uint8Array(selectorCount);
    for (let i = 0; i < selectorCount; i++) {
      let j = 0;
      while (this.bits(1)) if (++j >= groups) throw new Error("bad selector");
      const g = order[j];
      order.copyWithin(1, 0, j);
      order[0] = g;
      selectors[i] = g;
    }
    const tables = Array.from({ length: groups }, () => this.huffman(alphaSize));

    let table = this.table(Math.min(blockMax, 64 * 1024));
    const counts = new Uint32Array(256);
    const mtf = Uint8Array.from(symbols, (_, i) => i);
    let n = 0, run = 0, runBit = 1, left = 0, selector = 0;
    let group = tables[0];
    for (;;) {
      if (left-- === 0) {
        if (selector >= selectorCount) throw new Error("ran out of selectors");
        group = tables[selectors[selector++]];
        left = SYMBOLS_PER_GROUP - 1;
      }
      const sym = group.decode(this);
      if (sym <= 1) { // RUNA, RUNB: a run of the front symbol, its length in bijective base 2
        run += runBit << sym;
        runBit <<= 1;
        if (run > blockMax) throw new Error("a run passes the block size");
        continue;
      }
      if (run > 0) {
        if (n + run > blockMax) throw new Error("a block passes its size");
        if (n + run > table.length) table = this.table(n + run, blockMax);
        const byte = symbols[mtf[0]];
        counts[byte] += run;
        table.fill(byte, n, n + run);
        n += run;
        run = 0;
        runBit = 1;
      }
      if (sym === alphaSize - 1) break;
      if (n >= blockMax) throw new Error("a block passes its size");
      if (n >= table.length) table = this.table(n + 1, blockMax);
      const index = mtf[sym - 1];
      mtf.copyWithin(1, 0, sym - 1);
      mtf[0] = index;
      const byte = symbols[index];
      counts[byte]++;
      table[n++] = byte;
    }
    if (origPtr >= n) throw new Error("bad BWT origin");
    return this.unsort(table, n, counts, origPtr);
  }

  /** The block table, at least `min` entries (grown by doubling, up to `max`). */
  private table(min: number, max = min): Uint32Array {
    if (this.tt.length >= min) return this.tt;
    let size = Math.max(this.tt.length * 2, 64 * 1024);
    while (size < min) size *= 2;
    const grown = new Uint32Array(Math.max(min, Math.min(size, max)));
    grown.set(this.tt);
    this.tt = grown;
    return grown;
  }

  /** Read one group's code lengths and make its decoder. */
  private huffman(alphaSize: number): Huffman {
    const lengths = new Uint8Array(alphaSize);
    let len = this.bits(5);
    for (let i = 0; i < alphaSize; i++) {
      for (;;) {
        if (len < 1 || len > MAX_CODE_LENGTH) throw new Error("bad Huffman code length");
        if (!this.bits(1)) break;
        len += this.bits(1) ? -1 : 1;
      }
      lengths[i] = len;
    }
    return new Huffman(lengths);
  }

  /** Undo the Burrows-Wheeler transform and the initial run-length coding; returns the block CRC. */
  private unsort(tt: Uint32Array, n: number, counts: Uint32Array, origPtr: number): number {
    const next = new Uint32Array(256);
    for (let b = 0, sum = 0; b < 256; b++) {
      next[b] = sum;
      sum += counts[b];
    }
    for (let i = 0; i < n; i++) tt[next[tt[i] & 0xff]++] |= i << 8;
    let crc = 0xffffffff;
    let pos = tt[origPtr] >>> 8;
    let last = -1, same = 0;
    // Each of the block's n bytes is one output byte but for a run's count, which
    // stands for 0 to 255 more: room is made for n and for each count as it comes,
    // and only bytes written count against the limit.
    this.room(0, n);
    for (let k = 0; k < n; k++) {
      const entry = tt[pos];
      const byte = entry & 0xff;
      pos = entry >>> 8;
      if (same === 4) { // the byte after four equal ones: how many more of them
        this.room(byte, n - k - 1);
        for (let c = 0; c < byte; c++) {
          this.out[this.at++] = last;
          crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ last) & 0xff];
        }
        last = -1;
        same = 0;
        continue;
      }
      if (byte === last) same++;
      else {
        last = byte;
        same = 1;
      }
      if (this.at === this.out.length) this.room(1);
      this.out[this.at++] = byte;
      crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff];
    }
    if (same === 4) {
      // libbzip2 reads past the block for the count: a data error, the block refused.
      throw new Error(
        "a block ends after four equal bytes without the count byte that must follow them",
      );
    }
    return ~crc >>> 0;
  }
}

/** A canonical Huffman code, decoded a bit at a time past its shortest length. */
class Huffman {
  private readonly min: number;
  private readonly max: number;
  private readonly limit = new Int32Array(MAX_CODE_LENGTH + 2);
  private readonly base = new Int32Array(MAX_CODE_LENGTH + 2);
  private readonly perm: Uint16Array;

  constructor(lengths: Uint8Array) {
    this.min = Math.min(...lengths);
    this.max = Math.max(...lengths);
    this.perm = new Uint16Array(lengths.length);
    let p = 0, code = 0;
    for (let len = this.min; len <= this.max; len++) {
      const first = p;
      for (let s = 0; s < lengths.length; s++) if (lengths[s] === len) this.perm[p++] = s;
      // Codes of this length are code .. code + count - 1, at perm[first ..].
      this.base[len] = first - code;
      code += p - first;
      this.limit[len] = code - 1;
      code <<= 1;
    }
  }

  decode(d: Decoder): number {
    let len = this.min;
    let v = d.bits(len);
    while (v > this.limit[len]) {
      if (++len > this.max) throw new Error("bad Huffman code");
      v = (v << 1) | d.bits(1);
    }
    const at = this.base[len] + v;
    if (at < 0 || at >= this.perm.length) throw new Error("bad Huffman code");
    return this.perm[at];
  }
}

/**
 * Decode every bzip2 stream in the body, as Python's `bz2.decompress` (what
 * kombu calls) does: streams one after the other, their outputs joined; a
 * stream cut short is an error, and bytes after a whole stream that do not
 * make another whole one are dropped (Python drops them too, with what it
 * had decoded of them).
 *
 * @example
 * ```ts ignore
 * import { bunzip } from "./bzip2.ts";
 * bunzip(bytesFromPythonBz2Compress, 64 * 1024 * 1024);
 * ```
 *
 * @param body the compressed bytes
 * @param maxSize the most bytes the output may have
 * @returns the decompressed bytes, or null when they would be more than `maxSize`
 * @throws {Error} for a first stream that is corrupt or cut short, or a later one cut short
 */
export function bunzip(body: Uint8Array, maxSize: number): Uint8Array | null {
  const d = new Decoder(body, maxSize);
  try {
    for (let first = true; d.pos < body.length; first = false) {
      const start = d.at;
      try {
        d.stream();
      } catch (err) {
        if (first || err === ENDED || err === OVER) throw err;
        d.at = start;
        break;
      }
    }
  } catch (err) {
    if (err === OVER) return null;
    if (err === ENDED) {
      throw new Error("compressed data ended before the end-of-stream marker was reached");
    }
    throw err;
  }
  return d.out.subarray(0, d.at);
}
