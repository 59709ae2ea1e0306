/**
 * The worker's canvas sends: publishing follow-ups in batches (storing
 * chord sizes first), and the chord join when a chord header member
 * finishes: the one member that completes the chord publishes the body
 * with the results, or fails it with Celery's `ChordError` (and calls or
 * sends the body's errbacks).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ResultBackend } from "../backend/port.ts";
import { VALUES_PER_COMMAND } from "../broker/chunks.ts";
import { BatchPublishError, ExchangeNotFoundError } from "../broker/errors.ts";
import type { Publication, PublishTarget } from "../broker/port.ts";
import { checkSends } from "../client/arity.ts";
import { publishInOrder } from "../client/send.ts";
import type { Task } from "../client/task.ts";
import { type CodecNeeds, loadCodecs } from "../protocol/codecs.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { exceptionInfo } from "../protocol/exceptions.ts";
import { pyJsonDumps } from "../protocol/json.ts";
import type { Message, SignatureDict } from "../protocol/message.ts";
import type { ExceptionInfo } from "../protocol/result_meta.ts";
import {
  callbackError,
  chordError,
  decodeGroupMeta,
  encodeGroupMeta,
  type ResultTuple,
} from "../protocol/signature.ts";
import type { ChordJoin } from "./chords.ts";
import { chordBodyId, chordFailures, failChordBody } from "./chord_failure.ts";
import { applySignature, type FollowUps, type Outgoing } from "./follow_ups.ts";
import { failedMemberJoins } from "./member_joins.ts";
import { failureEntry } from "./result_entries.ts";

const log = getLogger(["celeriac", "worker", "canvas"]);

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
  /**
   * The worker's tasks: an old-style errback (`request, exc, traceback`) of
   * a chord body failed by its header whose task is among them is called
   * in-process instead of sent (errbacks.ts), as Celery's
   * `chord_error_from_stack` does. Default: none (every errback is sent).
   */
  readonly tasks?: ReadonlyMap<string, Task<never, unknown>>;
  /** The worker's node name, in the request such an errback gets. Default: "". */
  readonly hostname?: string;
}

/** What `publishAll` does besides publishing. */
export interface PublishAllOptions {
  /**
   * Called with each run's follow-ups that could not be sent (their
   * message cannot be encoded, or their exchange does not exist). Default:
   * each gets a FAILURE with its error, and a chord header member among them
   * joins its chord as failed.
   */
  unsendable?(failed: readonly UnsendableFollowUp[]): Promise<void>;
}

/** A follow-up that could not be sent, and why. */
export interface UnsendableFollowUp {
  /** The follow-up. */
  out: Outgoing;
  /** The encoding or publishing error. */
  err: Error;
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
  failed: readonly UnsendableFollowUp[],
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
  unsendable: UnsendableFollowUp[];
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
  const unsendable: UnsendableFollowUp[] = [];
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
  for (const { groupId, size, header } of out.chordSizes ?? []) {
    if (!io.backend?.setChordSize) {
      log.error("Chord {group} not started: the result backend cannot join chords", {
        group: groupId,
      });
      continue;
    }
    if (header) await io.backend.saveGroup?.(groupId, encodeGroupMeta(groupId, header));
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
 * @example
 * ```ts ignore
 * await publishAll(followUps.publishes, io);
 * ```
 *
 * @param publishes the messages
 * @param io backend and publisher
 * @param options what happens to follow-ups that cannot be sent
 */
export async function publishAll(
  publishes: readonly Outgoing[],
  io: CanvasIo,
  options: PublishAllOptions = {},
): Promise<void> {
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
    if (!run.unsendable.length) continue;
    await (options.unsendable?.(run.unsendable) ?? storeUnsendable(run.unsendable, io));
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

/** The `ChordError` a join error fails a chord with, as Celery's "Join error". */
function joinError(err: ProtocolError): ExceptionInfo {
  return {
    exc_type: "ChordError",
    exc_message: [`Join error: ${err.message}`],
    exc_module: "celery.exceptions",
  };
}

/**
 * Fail a chord's body with `exc` (a `ChordError`), as
 * chord_failure.ts's `failChordBody` does, and send its errbacks; an outer
 * chord the body is a member of joins as failed.
 */
async function failChord(
  j: ChordJoin,
  exc: ExceptionInfo,
  io: CanvasIo,
  stored = false,
): Promise<void> {
  log.warn("Chord {group} failed: {message}", {
    group: j.part.groupId,
    message: exc.exc_message[0],
  });
  const errbacks = await failChordBody(
    j.body,
    exc,
    { ...io, backend: io.backend! },
    j.parent,
    stored,
  );
  const rest = j.body.options?.chain;
  // A nested chord's body (or a chain step after it) is a member of the outer chord.
  const outer = [j.body, ...(Array.isArray(rest) ? rest as SignatureDict[] : [])];
  const more = failedMemberJoins(outer, pyJsonDumps(exc), j.parent);
  if (more.length) await joinChords(more, io);
  await publishAll(errbacks, io);
}

/**
 * Send a chord's body. One that cannot be sent (its message cannot be
 * encoded: an unknown serializer, say) fails the chord as Celery's
 * "Callback error", its errbacks called or sent; the messages of its
 * members that cannot be sent (a group body's) get their own FAILURE too.
 */
async function publishBody(j: ChordJoin, publishes: Outgoing[], io: CanvasIo): Promise<void> {
  const bodyId = chordBodyId(j.body);
  let failed = false;
  await publishAll(publishes, io, {
    async unsendable(unsent) {
      const members = unsent.filter((u) => u.out.taskId !== bodyId);
      if (members.length) await storeUnsendable(members, io);
      // Once, even when the body's messages go out in several runs.
      if (failed) return;
      failed = true;
      await failChord(j, callbackError(exceptionInfo(unsent[0].err)), io);
    },
  });
}

/**
 * The results a chord's body gets: the members' in join order or, when the
 * chord's header was saved as a group (Celery's `apply_chord` does so when
 * it holds a group result), in the header's shape, a group member's
 * results as a list of their own (Celery's `GroupResult.restore` and
 * `join`). A result not among the members is read from the backend.
 */
async function headerResults(
  groupId: string,
  members: readonly { taskId: string; result: unknown }[],
  backend: ResultBackend,
): Promise<unknown[]> {
  const saved = await backend.restoreGroup?.(groupId);
  if (!saved) return members.map((m) => m.result);
  const byId = new Map(members.map((m) => [m.taskId, m.result]));
  const valueOf = async (t: ResultTuple): Promise<unknown> => {
    if (t.members) return await Promise.all(t.members.map(valueOf));
    return byId.has(t.id) ? byId.get(t.id) : (await backend.get(t.id))?.result ?? null;
  };
  return await Promise.all(decodeGroupMeta(saved).members!.map(valueOf));
}

/**
 * Join finished chord header members; the member that completes a chord
 * sends its body, or fails it with `ChordError` (the body's errbacks get
 * its id), then removes the join keys (after a failure too).
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
      // The body fails once (through the header's first member), so its waiters hear.
      if (backend && (j.part.groupIndex ?? 0) === 0) {
        await failChord(j, {
          exc_type: "ChordError",
          exc_message: [
            `The result backend (${backend.transport}) cannot join chords: use redis:// or kv://`,
          ],
          exc_module: "celery.exceptions",
        }, io);
      }
      continue;
    }
    let members;
    // Stored by the backend with the claim of a spoiled join, so that a worker dying right
    // after it leaves the chord failed; a join that rejects after asking for them stored them.
    let stored = false;
    const failure = (err: ProtocolError) => {
      stored = true;
      return chordFailures(j.body, joinError(err));
    };
    try {
      members = await backend.chordPartReturn(j.part, failure);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      // Join keys another tool wrote: the body fails, as Celery's "Join error", so its waiters hear;
      // the keys go, so the later members do not fail it again.
      await failChord(j, joinError(err), io, stored);
      await backend.chordCleanup?.(j.part.groupId);
      continue;
    }
    if (!members) continue;
    const failed = members.find((m) => m.state === "FAILURE" || m.state === "REVOKED");
    if (failed) {
      await failChord(j, chordError(failed.taskId, asException(failed.result)), io);
      // As after the body's send: a member joining again later (redelivered) finds no chord to
      // fail again. Celery 5.2.6 keeps the keys here (until they expire).
      await backend.chordCleanup?.(j.part.groupId);
      continue;
    }
    const now = new Date();
    const f: FollowUps = { publishes: [], children: [], broken: [] };
    applySignature(
      j.body,
      [await headerResults(j.part.groupId, members, backend)],
      null,
      j.parent,
      now,
      f,
      // As celery.chord_unlock's send of a body, and Celery's callback.delay(): a call a task
      // this worker defines cannot take (Task.typing) is a TypeError, and nothing is sent.
      { check: (sends) => checkSends(sends, (name) => io.tasks?.get(name)) },
    );
    if (f.broken.length) {
      // A body that cannot be planned, or whose calls do not fit, fails as Celery's
      // "Callback error", its errbacks called.
      await failChord(j, callbackError(f.broken[0].exc), io);
    } else await publishBody(j, f.publishes, io);
    await backend.chordCleanup?.(j.part.groupId);
  }
}
