/**
 * The form a batch of run requests travels in from the main thread to a
 * Web Worker, and a batch of outcomes back ({@link packOutcomes}). A post clones its message with V8's serializer, which writes
 * every property name of every object and every value as an element of its
 * own, and makes the receiving isolate look each name up again and build
 * each object: for a request and its `info` (~22 names) that was most of a
 * no-op task's cost on both threads. Packed, a request is its id, its
 * numbers in one `Float64Array` (dispatch number, flags, retries, body
 * position, and the positions of its task name, content type and
 * encoding, queue and hostname in a table of the batch's strings), its
 * body in the batch's one buffer (when the bodies share one, as a Redis
 * take's do), and only the fields that are set among the rarer ones.
 *
 * @module
 */

import type { TaskBody } from "../protocol/message.ts";
import type { RunOutcome, RunRequest } from "./executor.ts";
import { plainRequest, requestFlags } from "./plain_request.ts";
import type { TimeLimits } from "./time_limits.ts";

/** A batch of run requests as posted to a Web Worker (see {@link packRun}). */
export interface PackedRun {
  /** The requests' ids, in order. */
  ids: string[];
  /** {@link NUMS} numbers per request (see {@link packRun}). */
  nums: Float64Array;
  /** The batch's task names, content types and encodings, queues and hostnames, each once. */
  strings: string[];
  /** The buffer every body is a view of, when they share one; else `bodies`. */
  buffer: ArrayBufferLike | null;
  /** Each request's body, when they do not share one buffer. */
  bodies: Uint8Array[] | null;
  /** The rarer fields that are set: request position, field, value, ... */
  extras: unknown[];
}

/** Numbers per request: seq, flags, retries, body offset and length, then five string positions. */
const NUMS = 10;

/** The rarer fields, as {@link PackedRun.extras} names them. */
const HEADERS = 0;
const DECODED = 1;
const TIME_LIMITS = 2;
const ROOT_ID = 3;
const PARENT_ID = 4;
const GROUP = 5;
const ETA = 6;
const EXPIRES = 7;
const GROUP_INDEX = 8;
const REPLACED_TASK_NESTING = 9;

/**
 * Pack run requests for a post to a Web Worker; {@link unpackRun} rebuilds
 * them on the other side.
 *
 * @example
 * ```ts
 * import { packRun, unpackRun } from "./run_batch.ts";
 * import type { RunOutcome, RunRequest } from "./executor.ts";
 * const req: RunRequest = {
 *   seq: 1, task: "tasks.add", id: "id-1", body: new TextEncoder().encode("[[1, 2], {}, {}]"),
 *   contentType: "application/json", contentEncoding: "utf-8", headers: {}, storeResult: true,
 *   info: { retries: 0, rootId: "id-1", parentId: null, group: null, eta: null, expires: null,
 *     queue: "celery", redelivered: false, hostname: "w@h" },
 * };
 * const back = unpackRun(structuredClone(packRun([req])));
 * back[0].info.queue; // "celery"
 * ```
 *
 * @param batch the requests, in order
 * @returns the packed batch
 */
export function packRun(batch: readonly RunRequest[]): PackedRun {
  const n = batch.length;
  const ids: string[] = new Array(n);
  const nums = new Float64Array(n * NUMS);
  const strings: string[] = [];
  const extras: unknown[] = [];
  const buffer = n > 0 ? batch[0].body.buffer : null;
  let shared = true;
  for (let i = 0; i < n; i++) {
    const r = batch[i];
    const info = r.info;
    const at = i * NUMS;
    ids[i] = r.id;
    nums[at] = r.seq;
    nums[at + 1] = requestFlags(r);
    nums[at + 2] = info.retries;
    nums[at + 3] = r.body.byteOffset;
    nums[at + 4] = r.body.byteLength;
    nums[at + 5] = position(strings, r.task);
    nums[at + 6] = position(strings, r.contentType);
    nums[at + 7] = position(strings, r.contentEncoding);
    nums[at + 8] = position(strings, info.queue);
    nums[at + 9] = position(strings, info.hostname);
    if (r.body.buffer !== buffer) shared = false;
    if (!isEmpty(r.headers)) extras.push(i, HEADERS, r.headers);
    if (r.decoded !== undefined) extras.push(i, DECODED, r.decoded);
    if (r.timeLimits !== undefined) extras.push(i, TIME_LIMITS, r.timeLimits);
    if (info.rootId !== r.id) extras.push(i, ROOT_ID, info.rootId);
    if (info.parentId !== null) extras.push(i, PARENT_ID, info.parentId);
    if (info.group !== null) extras.push(i, GROUP, info.group);
    if (info.eta !== null) extras.push(i, ETA, info.eta);
    if (info.expires !== null) extras.push(i, EXPIRES, info.expires);
    if (info.groupIndex !== undefined && info.groupIndex !== null) {
      extras.push(i, GROUP_INDEX, info.groupIndex);
    }
    if (info.replacedTaskNesting) extras.push(i, REPLACED_TASK_NESTING, info.replacedTaskNesting);
  }
  return {
    ids,
    nums,
    strings,
    buffer: shared ? buffer : null,
    bodies: shared ? null : batch.map((r) => r.body),
    extras,
  };
}

/**
 * Rebuild the run requests of a {@link packRun} batch.
 *
 * @example
 * ```ts ignore
 * self.onmessage = (e) => runner.run(tasks, unpackRun(e.data.batch), signals);
 * ```
 *
 * @param packed the batch as received
 * @returns the requests, in order
 */
export function unpackRun(packed: PackedRun): RunRequest[] {
  const { ids, nums, strings, buffer, bodies, extras } = packed;
  const out: RunRequest[] = new Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const at = i * NUMS;
    const id = ids[i];
    const flags = nums[at + 1];
    out[i] = plainRequest(
      nums[at],
      strings[nums[at + 5]],
      id,
      bodies ? bodies[i] : new Uint8Array(buffer!, nums[at + 3], nums[at + 4]),
      strings[nums[at + 6]],
      strings[nums[at + 7]],
      flags,
      nums[at + 2],
      strings[nums[at + 8]],
      strings[nums[at + 9]],
    );
  }
  for (let j = 0; j < extras.length; j += 3) {
    const r = out[extras[j] as number];
    const value = extras[j + 2];
    switch (extras[j + 1]) {
      case HEADERS:
        r.headers = value as Record<string, unknown>;
        break;
      case DECODED:
        r.decoded = value as TaskBody;
        break;
      case TIME_LIMITS:
        r.timeLimits = value as TimeLimits;
        break;
      case ROOT_ID:
        r.info.rootId = value as string | null;
        break;
      case PARENT_ID:
        r.info.parentId = value as string;
        break;
      case GROUP:
        r.info.group = value as string;
        break;
      case ETA:
        r.info.eta = value as Date;
        break;
      case EXPIRES:
        r.info.expires = value as Date;
        break;
      case GROUP_INDEX:
        r.info.groupIndex = value as number;
        break;
      case REPLACED_TASK_NESTING:
        r.info.replacedTaskNesting = value as number;
        break;
    }
  }
  return out;
}

/** The position of `s` in the batch's string table, added when new (a few entries, usually). */
function position(strings: string[], s: string): number {
  for (let i = strings.length - 1; i >= 0; i--) if (strings[i] === s) return i;
  return strings.push(s) - 1;
}

function isEmpty(o: Record<string, unknown>): boolean {
  for (const _ in o) return false;
  return true;
}

/** A batch of outcomes as a Web Worker posts it (see {@link packOutcomes}). */
export interface PackedOutcomes {
  /** Per outcome: seq, flags (ok, blocked given, revoked, stored), runtime, blocked. */
  nums: Float64Array;
  /** Each outcome's meta to store, or `undefined`. */
  metas: (string | undefined)[];
  /** The rarer fields that are set: outcome position, field, value, ... */
  extras: unknown[];
}

const OK = 1;
const BLOCKED = 2;
const REVOKED = 4;
const STORED = 8;
/** The outcome's `repr` is `"None"` (a `-E` worker's no-op or `None`-returning task): a bit, not an extra. */
const REPR_NONE = 16;
/** The rarer fields of an outcome, by their number in {@link PackedOutcomes.extras}. */
const OUTCOME_FIELDS = [
  "exc",
  "refused",
  "followUp",
  "retry",
  "repr",
  "traceback",
  "replacedBy",
] as const;

/**
 * Pack a Web Worker's outcomes for its post to the main thread (a success
 * is its numbers and its meta; the rarer fields only when set);
 * {@link unpackOutcomes} rebuilds them.
 *
 * @example
 * ```ts
 * import { packOutcomes, unpackOutcomes } from "./run_batch.ts";
 * const back = unpackOutcomes(structuredClone(packOutcomes([{ seq: 1, ok: true, runtime: 0.1 }])));
 * back[0].ok; // true
 * ```
 *
 * @param outcomes the outcomes, in order
 * @returns the packed batch
 */
export function packOutcomes(outcomes: readonly RunOutcome[]): PackedOutcomes {
  const n = outcomes.length;
  const nums = new Float64Array(n * 4);
  const metas: (string | undefined)[] = new Array(n);
  const extras: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const o = outcomes[i];
    const at = i * 4;
    nums[at] = o.seq;
    nums[at + 1] = (o.ok ? OK : 0) | (o.blocked === undefined ? 0 : BLOCKED) |
      (o.revoked ? REVOKED : 0) | (o.stored ? STORED : 0) | (o.repr === "None" ? REPR_NONE : 0);
    nums[at + 2] = o.runtime;
    nums[at + 3] = o.blocked ?? 0;
    metas[i] = o.meta;
    // Field by field (a lookup by a computed name would be a generic one per field).
    if (o.exc !== undefined) extras.push(i, 0, o.exc);
    if (o.refused !== undefined) extras.push(i, 1, o.refused);
    if (o.followUp !== undefined) extras.push(i, 2, o.followUp);
    if (o.retry !== undefined) extras.push(i, 3, o.retry);
    if (o.repr !== undefined && o.repr !== "None") extras.push(i, 4, o.repr);
    if (o.traceback !== undefined) extras.push(i, 5, o.traceback);
    if (o.replacedBy !== undefined) extras.push(i, 6, o.replacedBy);
  }
  return { nums, metas, extras };
}

/**
 * Rebuild the outcomes of a {@link packOutcomes} batch (a field not set is
 * `undefined`).
 *
 * @example
 * ```ts ignore
 * worker.onmessage = (e) => onOutcomes(unpackOutcomes(e.data.outcomes));
 * ```
 *
 * @param packed the batch as received
 * @returns the outcomes, in order
 */
export function unpackOutcomes(packed: PackedOutcomes): RunOutcome[] {
  const { nums, metas, extras } = packed;
  const out: RunOutcome[] = new Array(metas.length);
  for (let i = 0; i < metas.length; i++) {
    const at = i * 4;
    const flags = nums[at + 1];
    out[i] = {
      seq: nums[at],
      ok: (flags & OK) !== 0,
      meta: metas[i],
      exc: undefined,
      refused: undefined,
      followUp: undefined,
      retry: undefined,
      runtime: nums[at + 2],
      blocked: (flags & BLOCKED) !== 0 ? nums[at + 3] : undefined,
      revoked: (flags & REVOKED) !== 0 ? true : undefined,
      stored: (flags & STORED) !== 0 ? true : undefined,
      repr: (flags & REPR_NONE) !== 0 ? "None" : undefined,
      traceback: undefined,
      replacedBy: undefined,
    };
  }
  for (let j = 0; j < extras.length; j += 3) {
    const o = out[extras[j] as number] as unknown as Record<string, unknown>;
    o[OUTCOME_FIELDS[extras[j + 1] as number]] = extras[j + 2];
  }
  return out;
}
