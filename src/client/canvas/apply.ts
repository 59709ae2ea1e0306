/**
 * Publish a planned canvas: its calls' arguments checked first (nothing is
 * sent when one is refused), then chord sizes (so the last header member
 * always finds them), then every message.
 *
 * @module
 */

import type { ResultBackend } from "../../backend/port.ts";
import type { PublishTarget } from "../../broker/port.ts";
import { planCanvas } from "../../protocol/canvas.ts";
import { canvasQueue, canvasTarget, encodeCanvasSend } from "../../protocol/canvas_message.ts";
import { codecsForOptions, loadCodecs } from "../../protocol/codecs.ts";
import type { CompressionName } from "../../protocol/compression_names.ts";
import type { Message, SignatureDict } from "../../protocol/message.ts";
import type { SerializerName } from "../../protocol/serializers.ts";
import { kind } from "../../protocol/canvas_shape.ts";
import { encodeGroupMeta, type ResultTuple } from "../../protocol/signature.ts";
import { checkSends } from "../arity.ts";
import { currentTask } from "../current.ts";
import { ChordUnsupportedError } from "../errors.ts";
import type { Task } from "../task.ts";
import type { AppliedCanvas, CanvasCall } from "./signature.ts";

/** What publishing a canvas needs from the app. */
export interface CanvasPublisher {
  /** Producer oid (`reply_to`). */
  readonly oid: string;
  /** Sender node name. */
  origin(): string;
  /**
   * A send's options with its task's options and then every option its
   * route gives (queue, exchange, routing key, priority, serializer, …)
   * filled in where it names none.
   */
  route(
    task: string,
    args: readonly unknown[],
    kwargs: Record<string, unknown>,
    options: Record<string, unknown>,
  ): Record<string, unknown>;
  /** The queue of a send that neither it, its task nor a route names. */
  readonly defaultQueue: string;
  /** Default serializer and compression. */
  readonly serializer: SerializerName;
  /** Default compression. */
  readonly compression: CompressionName | null;
  /** `group_index` on plain group members too (Celery ≥ 5.3.4). */
  readonly groupIndex: "chord" | "always";
  /**
   * The task the app defines under `name`, if any: each message the canvas
   * sends now is checked against its handler (`checkSends`: a call it
   * cannot take is a `TaskArgumentsError`, as Celery's `apply_async` of each
   * one checks it).
   */
  task(name: string): Task<never, unknown> | undefined;
  /**
   * Publish one message; `child` as a `Publisher`'s (the canvas's entry with
   * the first); `queue` its routed queue (for its `task-sent` event).
   */
  publish(
    message: Message,
    target: PublishTarget,
    child: ResultTuple | null,
    queue: string,
  ): Promise<void>;
  /** The result backend, or null when none is configured. */
  backend(): Promise<ResultBackend> | null;
  /** Get ready to receive results (rpc:// declares its reply queue). */
  prepare(): Promise<void>;
}

/** Messages published at once; more are sent in batches of this size. */
const BATCH = 200;

/**
 * Planning or encoding that held the event loop longer than this (ms) is
 * followed by a turn of it before the next step: a 200,000-member canvas
 * takes seconds to plan, encode and publish, and timers, replies and
 * watchdogs of the same process wait for it in between.
 */
const LONG_STEP_MS = 50;

/** Let the event loop run when the synchronous step that began at `since` was long. */
async function breathe(since: number): Promise<void> {
  if (performance.now() - since > LONG_STEP_MS) await new Promise((r) => setTimeout(r, 0));
}

/**
 * Apply a signature dict: plan it, check its calls, store chord sizes,
 * publish.
 *
 * @example
 * ```ts ignore
 * const tree = await publishCanvas(publisher, sig.toDict(), { args: [] });
 * ```
 *
 * @param p the app's side
 * @param sig the signature dict
 * @param call extra args and options
 * @returns the result tree; a plain task's is marked `ignored` when it was sent with
 *   `ignore_result` (its own, its task's or its route's)
 * @throws {TaskArgumentsError} when a call the canvas sends now (a task, a group's or a chord
 *   header's member, a chain's first step, an empty chord's body) does not fit its task's
 *   handler here; nothing is sent
 * @throws {ChordUnsupportedError} when a chord is applied, or is a later step of a chain, on a
 *   backend that cannot join it
 */
export async function publishCanvas(
  p: CanvasPublisher,
  sig: SignatureDict,
  call: CanvasCall = {},
): Promise<AppliedCanvas> {
  const planning = performance.now();
  const plan = planCanvas(sig, {
    args: call.args,
    kwargs: call.kwargs,
    options: call.options,
    replyTo: p.oid,
    groupIndex: p.groupIndex,
  });
  // As Celery's apply_async of each message it sends now (Task.typing), with the arguments it
  // is sent with; a step sent later (a chain's next step, a chord's body, a callback) gets its
  // parent's result too and is checked by the worker that sends it. All before the first
  // send: Celery sends the members before a refused one.
  checkSends(plan.sends, (name) => p.task(name));
  // As Celery's chain.prepare_steps: a chord among a chain's later steps is refused now too,
  // though it starts only when the step before it finishes.
  if (plan.chordSizes.length > 0 || plan.laterChords) {
    const opening = p.backend();
    if (opening === null) {
      throw new ChordUnsupportedError("none (no result backend is configured)");
    }
    const backend = await opening;
    if (!backend.setChordSize || !backend.chordPartReturn) {
      throw new ChordUnsupportedError(backend.transport);
    }
    for (const { groupId, size, header } of plan.chordSizes) {
      if (header) await backend.saveGroup?.(groupId, encodeGroupMeta(groupId, header));
      await backend.setChordSize(groupId, size);
    }
  }
  if (plan.sends.length > 0) await p.prepare();
  const parent = currentTask.getStore();
  const now = new Date();
  const sender = {
    now,
    origin: p.origin(),
    replyTo: p.oid,
    rootId: parent?.rootId,
    parentId: parent?.id,
    serializer: p.serializer,
    compression: p.compression,
  };
  await breathe(planning);
  let ignored = false;
  for (let i = 0; i < plan.sends.length; i += BATCH) {
    const encoding = performance.now();
    // The codecs are chosen from the routed options: a task's serializer and a
    // route's serializer or compression are known only once routed.
    const sends = plan.sends.slice(i, i + BATCH).map((planned) => ({
      ...planned,
      options: p.route(planned.task, planned.args, planned.kwargs, planned.options),
    }));
    // As Celery's Signature.apply_async (Task.apply_async): a plain task's handle is
    // `ignored`; a chain's, group's or chord's is not (Celery's comes from freeze()).
    if (i === 0 && kind(sig) === null) ignored = sends[0]?.options.ignore_result === true;
    const needs = sends.map((s) => codecsForOptions(s.options, p));
    await loadCodecs({
      msgpack: needs.some((n) => n.msgpack),
      compression: needs.some((n) => n.compression),
    });
    const batch = sends.map((send) => ({
      message: encodeCanvasSend(send, sender),
      target: canvasTarget(send, p.defaultQueue),
      queue: canvasQueue(send, p.defaultQueue),
    }));
    await breathe(encoding);
    await Promise.all(
      batch.map(({ message, target, queue }, j) =>
        p.publish(message, target, i + j === 0 ? plan.applied : null, queue)
      ),
    );
  }
  return ignored ? { ...plan.result, ignored } : plan.result;
}
