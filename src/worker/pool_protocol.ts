/**
 * Messages between the worker's main thread and its Web Workers.
 *
 * @module
 */

import type { PublishTarget } from "../broker/port.ts";
import type { CeleryOptions } from "../client/config.ts";
import type { Message } from "../protocol/message.ts";
import type { ResultTuple } from "../protocol/signature.ts";
import type { RunRequest } from "./executor.ts";
import type { PackedOutcomes, PackedRun } from "./run_batch.ts";
import type { Revocation } from "./sandboxes.ts";
import type { StartTableMemory } from "./start_table.ts";

/** Main thread → Web Worker. */
export type ToRunner =
  | {
    type: "init";
    module: string;
    exportName?: string;
    config: CeleryOptions;
    /** The worker's `maxDecompressedSize`. */
    maxDecompressedSize?: number;
    /** Report the heap size with every batch of outcomes. */
    measureMemory?: boolean;
    /** Permissions to give up once the app module is loaded (sandboxes). */
    revoke?: Revocation[];
    /** Whether its tasks run in a permission sandbox (else with the worker's permissions). */
    sandboxed?: boolean;
    /**
     * Tasks the main thread has posted to this Web Worker so far (an
     * Int32Array on a SharedArrayBuffer it keeps adding to): the Web Worker
     * holds outcomes while more tasks wait for it.
     */
    sent?: Int32Array;
    /** Where it writes when its tasks with time limits start (`start_table.ts`). */
    starts?: StartTableMemory;
    /** Where it writes its plain outcomes instead of posting them (`outcome_ring.ts`). */
    outcomes?: SharedArrayBuffer;
    /** Where it reads plain run requests the main thread does not post (`run_ring.ts`). */
    runs?: SharedArrayBuffer;
  }
  | { type: "run"; batch: RunRequest[] }
  | { type: "abort"; seqs: number[] }
  | { type: "soft-time-limit"; seq: number; seconds: number; task: string; id: string }
  | { type: "published"; id: number; error?: string }
  | { type: "stored"; id: number; error?: string };

/**
 * Main thread → Web Worker as the Web Worker receives it: a `run` batch
 * packed ({@link PackedRun}; `postTo` packs it).
 */
export type ToRunnerPosted = Exclude<ToRunner, { type: "run" }> | { type: "run"; batch: PackedRun };

/** Web Worker → main thread. */
export type FromRunner =
  | {
    type: "ready";
    tasks: string[];
    /** Its `performance.now()` as it posts this: the main thread reads its start table with it. */
    now: number;
    /** Its thread's id, when it could read it (`thread_self.ts`). */
    tid?: number;
  }
  | { type: "init-error"; error: string }
  /**
   * A task with time limits is about to run: its limits start now. Posted
   * only when the start table's slot of the task is held by another.
   */
  | { type: "started"; seq: number }
  | {
    type: "outcomes";
    /** Packed ({@link PackedOutcomes}); the pool unpacks them. */
    outcomes: PackedOutcomes;
    /** Heap used plus external memory in bytes, when asked to measure. */
    memory?: number;
    /**
     * Its `performance.now()` as it posts this: the main thread narrows its
     * reading of the start table with it (a `ready` handled late).
     */
    now: number;
  }
  | {
    type: "publish";
    id: number;
    message: Message;
    target: PublishTarget;
    /** The sender's `children` entry, as a `Publisher`'s `child`. */
    child?: ResultTuple | null;
    /** The routed queue, as a `Publisher`'s `queue`. */
    queue?: string;
  }
  | { type: "store"; id: number; seq: number; status: string; meta: string; final?: boolean }
  /**
   * Task code called `how` (`Deno.exit(3)`, `close()`): the thread ends
   * right after this post (outcomes it held are handed on first).
   */
  | { type: "dying"; how: string };

/** Every message type of each side: a type added to the union must be added here too. */
const FROM_RUNNER_TYPES: Record<FromRunner["type"], true> = {
  ready: true,
  "init-error": true,
  started: true,
  outcomes: true,
  publish: true,
  store: true,
  dying: true,
};
const TO_RUNNER_TYPES: Record<ToRunner["type"], true> = {
  init: true,
  run: true,
  abort: true,
  "soft-time-limit": true,
  published: true,
  stored: true,
};

/**
 * Whether a message is one of the pool protocol's, from the runner (`"from"`)
 * or to it (`"to"`). Only these count as posts for the rings' ordering: task
 * code may post messages of its own from its Web Worker.
 *
 * @example
 * ```ts
 * import { isPoolMessage } from "./pool_protocol.ts";
 * isPoolMessage("from", { type: "started", seq: 1 }); // true
 * isPoolMessage("from", { hello: 1 }); // false
 * ```
 *
 * @param side `"from"` for the runner's posts, `"to"` for the main thread's
 * @param data the message's data
 * @returns true for a message of that side's types
 */
export function isPoolMessage(side: "from" | "to", data: unknown): boolean {
  const type = (data as { type?: unknown } | null)?.type;
  return typeof type === "string" &&
    Object.hasOwn(side === "from" ? FROM_RUNNER_TYPES : TO_RUNNER_TYPES, type);
}
