/**
 * The worker's side of canvases: what a finished task adds to its result
 * meta (`children`), stores (chain steps that will not run, broken
 * follow-ups) and sends (callbacks, next chain step, errbacks), and the
 * chord join when a chord header member finishes: the one member that
 * completes the chord publishes the body with the list of results, or
 * fails it with Celery's `ChordError` when a member failed.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ChordPart, ResultBackend, StoreEntry } from "../backend/port.ts";
import { VALUES_PER_COMMAND } from "../broker/chunks.ts";
import { BatchPublishError, ExchangeNotFoundError } from "../broker/errors.ts";
import { publishInOrder } from "../client/send.ts";
import type { Publication, PublishTarget } from "../broker/port.ts";
import { planCanvas } from "../protocol/canvas.ts";
import { type CodecNeeds, loadCodecs } from "../protocol/codecs.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { exceptionInfo } from "../protocol/exceptions.ts";
import { pyJsonDumps, pyJsonLoads } from "../protocol/json.ts";
import type { Embed, Message, SignatureDict } from "../protocol/message.ts";
import type { ExceptionInfo, ResultMeta } from "../protocol/result_meta.ts";
import { chordError, type ResultTuple, resultTuplesText } from "../protocol/signature.ts";
import { decodeTaskBody, type TaskRequest } from "../protocol/task_request.ts";
import type { RunOutcome } from "./executor.ts";
import { chainFailures, failureEntry } from "./result_entries.ts";
import { failedMemberJoins } from "./member_joins.ts";
import {
  applySignature,
  chainSteps,
  failureFollowUps,
  type FollowUps,
  type Outgoing,
  type Parent,
  successFollowUps,
} from "./follow_ups.ts";

const log = getLogger(["celeriac", "worker", "canvas"]);

/** A finished chord header member, to join once its meta is stored. */
export interface ChordJoin {
  /** What the backend records. */
  part: ChordPart;
  /** The chord body (frozen: it has its task id). */
  body: SignatureDict;
  /** The member, as parent of the body. */
  parent: Parent;
}

/** What a finished task stores and sends because of its canvas. */
export interface CanvasOutcome {
  /** The task's meta, with its `children` filled in. */
  meta: string | undefined;
  /** Other metas to store (chain steps that will not run, broken follow-ups). */
  stores: StoreEntry[];
  /** Messages to send. */
  publishes: Outgoing[];
  /** The chord joins to do after storing: its own, and those of chord members after it in its chain. */
  joins: ChordJoin[];
}

/** Where the `children` field sits in a meta encoded by `encodeResultMetaWithJson`. */
const NO_CHILDREN = '"children": [], "date_done": ';

/**
 * Write result tuples into a meta's `children`.
 *
 * @param meta the encoded meta (children empty)
 * @param children the tuples
 * @returns the meta with its children
 */
export function withChildren(meta: string, children: readonly ResultTuple[]): string {
  if (children.length === 0) return meta;
  // The last occurrence is the field itself: what follows it is ids and dates only.
  const at = meta.lastIndexOf(NO_CHILDREN);
  if (at < 0) return meta;
  return meta.slice(0, at) + '"children": ' + resultTuplesText(children) +
    ', "date_done": ' + meta.slice(at + NO_CHILDREN.length);
}

function brokenStores(f: FollowUps, parentId: string): StoreEntry[] {
  return f.broken.flatMap((b) => {
    log.error("Task {id}: follow-up {task} not sent: {error}", {
      id: parentId,
      task: b.task,
      error: String(b.exc.exc_message[0]),
    });
    return b.taskId ? [failureEntry(b.taskId, b.exc, null)] : [];
  });
}

/**
 * The canvas consequences of one finished task (success or failure).
 *
 * @param o the outcome from the Web Worker
 * @param followUp the canvas it carries (`o.followUp`: a task without one has no canvas consequences)
 * @param req the task request
 * @param parent the task as parent of what it sends
 * @param now current time
 * @param sent children the task sent while it ran
 * @returns what to store and send
 */
export function canvasOutcome(
  o: RunOutcome,
  followUp: NonNullable<RunOutcome["followUp"]>,
  req: TaskRequest,
  parent: Parent,
  now: Date,
  sent: readonly ResultTuple[],
): CanvasOutcome {
  const { embed, value } = followUp;
  const f: FollowUps = o.ok
    ? successFollowUps(embed, value, parent, now)
    : failureFollowUps(embed, parent, now);
  const stores = brokenStores(f, req.id);
  const meta = o.meta === undefined ? undefined : withChildren(o.meta, [...sent, ...f.children]);
  const joins: ChordJoin[] = [];
  if (!o.ok && o.meta) {
    // A loop, not push(...): a chain may have more steps than a call takes arguments.
    for (const e of chainFailures(chainSteps(embed), o.meta)) stores.push(e);
    const exc = pyJsonDumps(o.exc ?? null);
    for (const j of failedMemberJoins(embed.chain ?? [], exc, parent)) joins.push(j);
  }
  const own = ownJoin(
    req,
    embed,
    o.ok ? "SUCCESS" : "FAILURE",
    () => pyJsonDumps(o.ok ? value : o.exc ?? null),
    parent,
  );
  if (own) joins.push(own);
  return { meta, stores, publishes: f.publishes, joins };
}

/** The join of a chord header member with its chord; `null` for a task that is none. */
function ownJoin(
  req: TaskRequest,
  embed: Embed,
  state: ChordJoin["part"]["state"],
  resultJson: () => string,
  parent: Parent,
): ChordJoin | null {
  if (!embed.chord || !req.group) return null;
  return {
    part: {
      groupId: req.group,
      groupIndex: req.groupIndex,
      taskId: req.id,
      state,
      resultJson: resultJson(),
    },
    body: embed.chord,
    parent,
  };
}

/** What publishing and joining need from the worker. */
export interface CanvasIo {
  /** The worker's result backend, if any. */
  backend: ResultBackend | null;
  /** Publish through the worker's connection. */
  publish(message: Message, target: PublishTarget): Promise<void>;
  /**
   * Publish a batch in order, in one call (Redis: variadic LPUSHes);
   * without it, `publish` is called for each message as the client's
   * `sendMany` does (the first to each target alone, then the rest together).
   */
  publishMany?(batch: readonly Publication[]): Promise<void>;
  /**
   * Told of each follow-up once published, with its queue: the worker sends
   * its `task-sent` event (`taskSendSentEvent`), as Celery's worker does for
   * what it sends with `apply_async`. Default: nothing.
   */
  sent?(message: Message, target: PublishTarget, queue: string): Promise<void>;
}

/** An outgoing message, encoded. */
function messageOf(p: Outgoing): Message {
  return typeof p.message === "function" ? p.message() : p.message;
}

/**
 * Follow-ups whose message could not be encoded (e.g. raw bytes for a JSON
 * task) or whose exchange does not exist: not sent, and a FAILURE stored
 * under each id so that their waiters get the error, as for a follow-up
 * that could not be planned.
 */
async function storeUnsendable(
  failed: readonly { out: Outgoing; err: Error }[],
  io: CanvasIo,
): Promise<void> {
  log.error(
    "{n} follow-up(s) not sent (first: {id}): {error}",
    {
      n: failed.length,
      id: failed[0].out.taskId,
      error: failed[0].err.message,
    },
  );
  if (!io.backend) return;
  const excs = failed.map(({ err }) => exceptionInfo(err));
  await io.backend.store(failed.map(({ out }, i) => failureEntry(out.taskId, excs[i], null)));
  // A chord header member that is never sent still counts: its failure completes the chord.
  const joins = failed.flatMap(({ out: { taskId, chord } }, i): ChordJoin[] =>
    chord
      ? [{
        part: {
          groupId: chord.groupId,
          groupIndex: chord.groupIndex,
          taskId,
          state: "FAILURE",
          resultJson: pyJsonDumps(excs[i]),
        },
        body: chord.body,
        parent: chord.parent,
      }]
      : []
  );
  if (joins.length) await joinChords(joins, io);
}

/** A run of follow-ups, encoded: what goes out together, and what could not be encoded. */
interface EncodedRun {
  /** Index of the run's first follow-up. */
  start: number;
  /** Index after its last. */
  end: number;
  batch: Publication[];
  /** The follow-up of each message of `batch`. */
  outs: Outgoing[];
  unsendable: { out: Outgoing; err: Error }[];
}

/**
 * Encode the run of follow-ups from `start`: up to `VALUES_PER_COMMAND`,
 * ending before the next follow-up whose chord sizes must be stored first.
 */
function encodeRun(publishes: readonly Outgoing[], start: number): EncodedRun {
  let end = start + 1;
  while (
    end < publishes.length && end - start < VALUES_PER_COMMAND &&
    !publishes[end].chordSizes?.length
  ) end++;
  const batch: Publication[] = [];
  const outs: Outgoing[] = [];
  const unsendable: { out: Outgoing; err: Error }[] = [];
  for (let j = start; j < end; j++) {
    // Encoded here, not when the task settled: an error must not stop the rest of the settlement.
    try {
      batch.push({ message: messageOf(publishes[j]), target: publishes[j].target });
      outs.push(publishes[j]);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      unsendable.push({ out: publishes[j], err: e });
    }
  }
  return { start, end, batch, outs, unsendable };
}

async function storeChordSizes(out: Outgoing, io: CanvasIo): Promise<void> {
  for (const { groupId, size } of out.chordSizes ?? []) {
    if (!io.backend?.setChordSize) {
      log.error("Chord {group} not started: the result backend cannot join chords", {
        group: groupId,
      });
      continue;
    }
    await io.backend.setChordSize(groupId, size);
  }
}

/**
 * Send a run; when an exchange it names does not exist, the messages not
 * sent yet go out one by one, and those to a missing exchange join the
 * run's unsendable follow-ups (a FAILURE each) instead of failing the
 * whole settlement.
 */
async function sendRun(run: EncodedRun, io: CanvasIo): Promise<void> {
  const { batch } = run;
  try {
    await (batch.length > 1 && io.publishMany
      ? io.publishMany(batch)
      : publishInOrder(batch, (message, target) => io.publish(message, target)));
  } catch (err) {
    const outcomes = err instanceof BatchPublishError ? err.outcomes : null;
    if (!((outcomes ? (err as Error).cause : err) instanceof ExchangeNotFoundError)) throw err;
    for (let i = 0; i < batch.length; i++) {
      if (outcomes?.[i] === "sent") continue;
      try {
        await io.publish(batch[i].message, batch[i].target);
      } catch (e) {
        if (!(e instanceof ExchangeNotFoundError)) throw e;
        run.unsendable.push({ out: run.outs[i], err: e });
      }
    }
  }
  if (!io.sent) return;
  const unsent = new Set(run.unsendable.map((u) => u.out));
  for (let i = 0; i < batch.length; i++) {
    const { queue } = run.outs[i];
    if (queue !== undefined && !unsent.has(run.outs[i])) {
      await io.sent(batch[i].message, batch[i].target, queue);
    }
  }
}

/**
 * Publish follow-ups in order, storing chord sizes first where a follow-up
 * starts a chord. Runs of follow-ups go out in batches of up to
 * `VALUES_PER_COMMAND`, each encoded just before it is sent: a group of
 * 200,000 members costs 200 round trips instead of 200,000, and the event
 * loop runs between batches instead of waiting for all of them to be
 * encoded. The next batch is encoded while one is on its way (one turn of
 * the event loop lets its write start): at most one batch is in flight, and
 * one is sent only once the one before it is answered, so they stay in
 * order and a failed batch stops the rest. A follow-up whose message cannot
 * be encoded, or whose exchange does not exist, is not sent: it gets a
 * FAILURE with the error, and the others go on. Each one sent is then
 * told to `io.sent` (its `task-sent` event).
 *
 * @param publishes the messages
 * @param io backend and publisher
 */
export async function publishAll(publishes: readonly Outgoing[], io: CanvasIo): Promise<void> {
  // The worker loads msgpack and compression when a message it takes needs them; a follow-up
  // may ask for them first (a chain step of a task defined with `serializer: "msgpack"`).
  const needs: CodecNeeds = {};
  for (const { codecs } of publishes) {
    if (codecs?.msgpack) needs.msgpack = true;
    if (codecs?.compression) needs.compression = true;
  }
  if (needs.msgpack || needs.compression) await loadCodecs(needs);
  let next = publishes.length > 0 ? encodeRun(publishes, 0) : null;
  while (next !== null) {
    const run = next;
    await storeChordSizes(publishes[run.start], io);
    const sending = sendRun(run, io);
    next = null;
    if (run.end < publishes.length) {
      // Its write goes out in this turn; the next batch is encoded meanwhile.
      await Promise.race([sending, new Promise((r) => setTimeout(r, 0))]);
      next = encodeRun(publishes, run.end);
    }
    await sending;
    if (run.unsendable.length) await storeUnsendable(run.unsendable, io);
  }
}

function asException(v: unknown): ExceptionInfo {
  const o = (v ?? {}) as Partial<ExceptionInfo>;
  return {
    exc_type: typeof o.exc_type === "string" ? o.exc_type : "Exception",
    exc_message: Array.isArray(o.exc_message) ? o.exc_message : [o.exc_message],
    exc_module: typeof o.exc_module === "string" ? o.exc_module : "builtins",
  };
}

/**
 * Fail a chord's body with `exc` (a `ChordError`): its FAILURE is stored,
 * and so are those of the chain steps after it; an outer chord it is a
 * member of joins as failed; the body's errbacks are sent.
 */
async function failChord(j: ChordJoin, exc: ExceptionInfo, io: CanvasIo): Promise<void> {
  const backend = io.backend!;
  const now = new Date();
  const bodyId = planCanvas(j.body, { args: [[]] }).result.id;
  log.warn("Chord {group} failed: {message}", {
    group: j.part.groupId,
    message: exc.exc_message[0],
  });
  const failure = failureEntry(
    bodyId,
    exc,
    `celery.exceptions.ChordError: ${exc.exc_message[0]}\n`,
  );
  // A chord that is a chain step carries the rest of the chain on its body:
  // those steps will never run, so they fail too (as after a failed step).
  const rest = j.body.options?.chain;
  const after = chainSteps({ chain: Array.isArray(rest) ? rest : null });
  await backend.store([failure, ...chainFailures(after, failure.meta)]);
  // A nested chord's body (or a chain step after it) is a member of the outer chord.
  const outer = [j.body, ...(Array.isArray(rest) ? rest as SignatureDict[] : [])];
  const more = failedMemberJoins(outer, pyJsonDumps(exc), j.parent);
  if (more.length) await joinChords(more, io);
  const errbacks: FollowUps = { publishes: [], children: [], broken: [] };
  const links = j.body.options?.link_error;
  for (const eb of (Array.isArray(links) ? links : links ? [links] : []) as SignatureDict[]) {
    applySignature(eb, [bodyId], null, j.parent, now, errbacks);
  }
  await publishAll(errbacks.publishes, io);
}

/**
 * Join finished chord header members; the member that completes a chord
 * sends its body, or fails it with `ChordError` (the body's errbacks get
 * its id), then removes the join keys.
 *
 * @param joins the members
 * @param io backend and publisher
 */
export async function joinChords(joins: readonly ChordJoin[], io: CanvasIo): Promise<void> {
  for (const j of joins) {
    const backend = io.backend;
    if (!backend?.chordPartReturn) {
      log.error(
        "Task {id} is a member of chord {group}, but the result backend ({backend}) cannot join " +
          "chords: its body {body} will not run. Use redis:// or kv://",
        {
          id: j.part.taskId,
          group: j.part.groupId,
          backend: backend?.transport,
          body: j.body.task,
        },
      );
      continue;
    }
    let members;
    try {
      members = await backend.chordPartReturn(j.part);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      // Join keys another tool wrote: the body fails, as Celery's "Join error", so its waiters hear;
      // the keys go, so the later members do not fail it again.
      await failChord(j, {
        exc_type: "ChordError",
        exc_message: [`Join error: ${err.message}`],
        exc_module: "celery.exceptions",
      }, io);
      await backend.chordCleanup?.(j.part.groupId);
      continue;
    }
    if (!members) continue;
    const failed = members.find((m) => m.state === "FAILURE" || m.state === "REVOKED");
    if (failed) {
      await failChord(j, chordError(failed.taskId, asException(failed.result)), io);
      continue;
    }
    const now = new Date();
    const f: FollowUps = { publishes: [], children: [], broken: [] };
    applySignature(j.body, [members.map((m) => m.result)], null, j.parent, now, f);
    const broken = brokenStores(f, j.part.taskId);
    if (broken.length) await backend.store(broken);
    await publishAll(f.publishes, io);
    await backend.chordCleanup?.(j.part.groupId);
  }
}

/**
 * The canvas consequences of a task that will not run (revoked, expired,
 * terminated), so that nothing waits for it forever: the steps after it in
 * its chain are stored as failed with its exception, and a chord header
 * member joins its chord as `REVOKED` (the chord then fails with
 * `ChordError`), as Celery's `mark_as_revoked` does.
 *
 * @example
 * ```ts ignore
 * const entry = revokedEntry(req, "revoked");
 * const { stores, joins } = notRunCanvas(req, delivery, entry, parent);
 * ```
 *
 * @param req the task
 * @param message its message (the body holds the canvas)
 * @param entry its REVOKED entry
 * @param parent the task as parent of its chord's body
 * @param maxDecompressed the most bytes a compressed body may decompress to (the worker's
 *   `maxDecompressedSize`)
 * @returns what to store and the chord joins (its own, chord members after it in its chain)
 */
export function notRunCanvas(
  req: TaskRequest,
  message: Message,
  entry: StoreEntry,
  parent: Parent,
  maxDecompressed?: number,
): { stores: StoreEntry[]; joins: ChordJoin[] } {
  let embed: Embed;
  try {
    embed = (req.body ?? decodeTaskBody(message, req.id, maxDecompressed)).embed;
  } catch {
    // A body this worker cannot read (the intake loaded its codecs): only the task itself is stored.
    return { stores: [], joins: [] };
  }
  const stores = chainFailures(chainSteps(embed), entry.meta);
  const meta = pyJsonLoads(entry.meta) as ResultMeta;
  const resultJson = pyJsonDumps(meta.result);
  const joins = failedMemberJoins(embed.chain ?? [], resultJson, parent);
  const own = ownJoin(req, embed, "REVOKED", () => resultJson, parent);
  if (own) joins.push(own);
  return { stores, joins };
}
