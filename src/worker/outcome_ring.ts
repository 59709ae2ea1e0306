/**
 * A Web Worker's lone plain outcome (numbers and a meta: a failure, a
 * retry, a follow-up... is posted, as is a batch of several) on its way to
 * the main thread through its shared ring (`shared_ring.ts`) instead of a
 * post.
 *
 * @module
 */

import type { RunOutcome } from "./executor.ts";
import type { RingReader, RingWriter } from "./shared_ring.ts";
import { utf8Text } from "../protocol/utf8_text.ts";

/** A batch: count (u32, padded) and the writer's clock (f64). */
const BATCH_BYTES = 16;
/** An outcome: seq, flags, runtime, blocked (f64), meta length (u32; {@link NO_META}). */
const OUTCOME_BYTES = 36;
const NO_META = 0xffffffff;
const OK = 1;
const BLOCKED = 2;

const encoder = new TextEncoder();

/** The fields a plain outcome may have set: a field added to `RunOutcome` later is posted. */
const PLAIN = new Set(["seq", "ok", "runtime", "blocked", "meta"]);

/** Whether an outcome is plain: numbers and a meta only. */
function plain(o: RunOutcome): boolean {
  for (const k in o) {
    if (!PLAIN.has(k) && (o as unknown as Record<string, unknown>)[k] !== undefined) return false;
  }
  return true;
}

/**
 * Write a lone plain outcome to the ring (a batch of several is posted:
 * see `writeRuns` in `run_ring.ts` for why).
 *
 * @example
 * ```ts
 * import { newRing, RingReader, RingWriter } from "./shared_ring.ts";
 * import { readOutcomes, writeOutcomes } from "./outcome_ring.ts";
 * const memory = newRing();
 * writeOutcomes(new RingWriter(memory), [{ seq: 1, ok: true, runtime: 0.1, meta: "{}" }], 0, 5);
 * readOutcomes(new RingReader(memory), 0).outcomes[0].meta; // "{}"
 * ```
 *
 * @param ring the Web Worker's end
 * @param outcomes the batch
 * @param posts messages the Web Worker posted before it
 * @param now its `performance.now()`
 * @returns false when the batch is not one plain outcome, or it does not fit (post it then)
 */
export function writeOutcomes(
  ring: RingWriter,
  outcomes: readonly RunOutcome[],
  posts: number,
  now: number,
): boolean {
  if (outcomes.length !== 1) return false;
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  let max = BATCH_BYTES;
  for (const o of outcomes) {
    if (!plain(o)) return false;
    max += OUTCOME_BYTES + (o.meta?.length ?? 0) * 3;
  }
  return ring.write(max, posts, (v, start, bytes) => {
    v.setUint32(start, outcomes.length, true);
    v.setFloat64(start + 8, now, true);
    let at = start + BATCH_BYTES;
    for (const o of outcomes) {
      v.setFloat64(at, o.seq, true);
      v.setFloat64(at + 8, (o.ok ? OK : 0) | (o.blocked === undefined ? 0 : BLOCKED), true);
      v.setFloat64(at + 16, o.runtime, true);
      v.setFloat64(at + 24, o.blocked ?? 0, true);
      let metaLength = NO_META;
      if (o.meta !== undefined) {
        metaLength = encoder.encodeInto(o.meta, bytes.subarray(at + OUTCOME_BYTES)).written;
      }
      v.setUint32(at + 32, metaLength, true);
      at += OUTCOME_BYTES + (metaLength === NO_META ? 0 : metaLength);
    }
    return at - start;
  });
}

/** What {@link readOutcomes} found: the outcomes, and the last batch's clock (NaN with none). */
export interface OutcomesRead {
  outcomes: RunOutcome[];
  now: number;
}

/**
 * Read the outcomes written after at most `posts` posts, in order.
 *
 * @example
 * ```ts ignore
 * const { outcomes, now } = readOutcomes(reader, postsHandled);
 * ```
 *
 * @param ring the main thread's end
 * @param posts posts of the Web Worker handled so far
 * @returns what was read
 */
export function readOutcomes(ring: RingReader, posts: number): OutcomesRead {
  const outcomes: RunOutcome[] = [];
  let now = NaN;
  ring.read(posts, (v, start, bytes) => {
    const n = v.getUint32(start, true);
    now = v.getFloat64(start + 8, true);
    let at = start + BATCH_BYTES;
    for (let i = 0; i < n; i++) {
      const flags = v.getFloat64(at + 8, true);
      const o: RunOutcome = {
        seq: v.getFloat64(at, true),
        ok: (flags & OK) !== 0,
        runtime: v.getFloat64(at + 16, true),
      };
      if (flags & BLOCKED) o.blocked = v.getFloat64(at + 24, true);
      const metaLength = v.getUint32(at + 32, true);
      at += OUTCOME_BYTES;
      if (metaLength !== NO_META) {
        o.meta = utf8Text(bytes.subarray(at, at + metaLength));
        at += metaLength;
      }
      outcomes.push(o);
    }
  });
  return { outcomes, now };
}
