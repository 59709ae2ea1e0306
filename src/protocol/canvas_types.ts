/**
 * The types of a canvas plan (see canvas.ts): the task messages a canvas
 * sends, the chords to store first, and the planning options.
 *
 * @module
 */

import type { Embed, SignatureDict } from "./message.ts";
import type { ResultTuple } from "./signature.ts";

/**
 * One task message a canvas sends.
 *
 * @example
 * ```ts
 * import { planCanvas } from "@celeriac/celeriac/protocol";
 * const plan = planCanvas({
 *   task: "tasks.add", args: [2, 2], kwargs: {}, options: {}, subtask_type: null, immutable: false,
 * });
 * plan.sends[0].args; // [2, 2]
 * ```
 */
export interface CanvasSend {
  /** Task name. */
  task: string;
  /** Task id. */
  id: string;
  /** Positional arguments (partial args merged). */
  args: unknown[];
  /** Keyword arguments. */
  kwargs: Record<string, unknown>;
  /** Callbacks, errbacks, remaining chain (reversed) and chord body. */
  embed: Embed;
  /** Execution options of the signature (`queue`, `countdown`, `priority`, ...). */
  options: Record<string, unknown>;
  /** `group` header. */
  group: string | null;
  /** `group_index` header. */
  groupIndex: number | null;
}

/**
 * Everything a canvas publishes.
 *
 * @example
 * ```ts
 * import {
 *   encodeCanvasSend,
 *   openBackend,
 *   openBroker,
 *   planCanvas,
 * } from "@celeriac/celeriac/protocol";
 * const plan = planCanvas({
 *   task: "t.add", args: [1, 2], kwargs: {}, options: {}, subtask_type: null, immutable: false,
 * });
 * const backend = await openBackend("redis://127.0.0.1:6379/0");
 * const broker = await openBroker("redis://127.0.0.1:6379/0");
 * for (const { groupId, size } of plan.chordSizes) await backend.setChordSize?.(groupId, size);
 * for (const send of plan.sends) {
 *   const message = encodeCanvasSend(send, { now: new Date(), origin: "gen1@host", replyTo: "oid" });
 *   const queue = typeof send.options.queue === "string" ? send.options.queue : "celery";
 *   await broker.publish(message, { routingKey: queue });
 * }
 * ```
 */
export interface CanvasPlan {
  /** Task messages, in publishing order. */
  sends: CanvasSend[];
  /**
   * Chord sizes to store before any header member can finish; `header` the
   * header's member results when one is a group, to save as the group
   * (`celery-taskset-meta-<groupId>`) for the join.
   */
  chordSizes: ChordSize[];
  /** The result: a task, or a group of member results. */
  result: ResultTuple;
  /**
   * What Celery records in the sending task's `children` when it applies
   * the canvas (its `add_to_parent`): the result of what is applied first —
   * a chain's first step, a chord's header group (its body when the header
   * is empty, as that is sent at once), a group, a task.
   */
  applied: ResultTuple;
  /**
   * Whether a chord is frozen into a message to start later (a chain step
   * after the first, `group | next` upgraded to one included): as chords
   * applied now, it needs a result backend that can join chords.
   */
  laterChords: boolean;
}

/**
 * A chord to store before its header is sent.
 *
 * @example
 * ```ts
 * import type { ChordSize } from "@celeriac/celeriac/protocol";
 * const size: ChordSize = { groupId: "g", size: 2 };
 * ```
 */
export interface ChordSize {
  /** The chord's group id. */
  groupId: string;
  /** How many member results complete it. */
  size: number;
  /** Its header's member results, when one of them is a group. */
  header?: ResultTuple[];
}

/**
 * Options of {@link planCanvas}.
 *
 * @example
 * ```ts
 * import type { PlanOptions } from "@celeriac/celeriac/protocol";
 * const options: PlanOptions = { args: [5], replyTo: "oid", groupIndex: "chord" };
 * ```
 */
export interface PlanOptions {
  /** Arguments prepended to the signature's own (a parent's result); ignored when immutable. */
  args?: readonly unknown[];
  /** Keyword arguments merged over the signature's own; ignored when immutable. */
  kwargs?: Readonly<Record<string, unknown>>;
  /** Steps still to run after this one, in reverse order (as `embed.chain`). */
  chain?: readonly SignatureDict[] | null;
  /** Execution options merged over the signature's (`queue`, `countdown`, ...). */
  options?: Readonly<Record<string, unknown>>;
  /** Makes task ids; default `crypto.randomUUID`. */
  newId?: () => string;
  /** Written as `options.reply_to` into frozen signatures (Celery's producer oid). */
  replyTo?: string;
  /**
   * Which members get `group_index`: `"chord"` (Celery 5.2: chord headers
   * only; plain group members send null) or `"always"` (Celery ≥ 5.3.4).
   * Default `"chord"`.
   */
  groupIndex?: "chord" | "always";
}
