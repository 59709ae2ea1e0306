/**
 * What the worker does with what the pool reports: outcomes of runs, Web
 * Workers that died, tasks past their hard time limit. Each task's end is
 * announced on the lifecycle, and its results, follow-ups and
 * acknowledgement are settled.
 *
 * @module
 */

import { exceptionInfo } from "../protocol/exceptions.ts";
import type { ResultMeta, TaskState } from "../protocol/result_meta.ts";
import type { TaskRequest } from "../protocol/task_request.ts";
import type { Message } from "../protocol/message.ts";
import type { StoreEntry } from "../backend/port.ts";
import { TimeLimitExceeded, WorkerLostError } from "../client/worker_errors.ts";
import type { RunOutcome, RunRequest } from "./executor.ts";
import { canvasOutcome, duplicateCanvas, notRunCanvas, withChildren } from "./chords.ts";
import { inheritedHeaders, type Parent } from "./follow_ups.ts";
import { failureEntry, pyException, revokedEntry } from "./result_entries.ts";
import { type DueRetry, settleRetries } from "./retries.ts";
import { Lifecycle } from "./lifecycle.ts";
import { runRequest } from "./run_request.ts";
import { Settlement } from "./settlement.ts";
import type { Running, WorkerState } from "./worker_state.ts";

/** A lifecycle no one listens to: what settles outcomes already announced. */
const UNHEARD = new Lifecycle();

/**
 * Settle the outcomes of runs: store results, publish follow-ups, park
 * refused messages, publish retries, acknowledge late-ack deliveries.
 *
 * @param st the worker's state
 * @param outcomes what the pool reported
 * @param announce false to settle them without announcing them (`settleOrPark`'s fallback for
 *   outcomes the throwing pass announced)
 */
export function settleOutcomes(st: WorkerState, outcomes: RunOutcome[], announce = true): void {
  const s = new Settlement();
  const retries: DueRetry[] = [];
  const earlyAcked: Running[] = [];
  const now = new Date();
  const lifecycle = announce ? st.lifecycle : UNHEARD;
  for (const o of outcomes) {
    const r = st.running.get(o.seq);
    if (!r) continue;
    st.running.delete(o.seq);
    const { req, delivery } = r;
    // A terminate that came after its handler returned stopped nothing (Celery leaves a finished
    // task alone): its outcome settles as any other. One it kept from running is terminated.
    const signum = st.terminated.get(o.seq);
    st.terminated.delete(o.seq);
    if (signum !== undefined && o.revoked) {
      terminated(st, s, r, o.seq, signum, earlyAcked, lifecycle);
      continue;
    }
    if (o.revoked) {
      // Revoked after it was handed to the pool, before its handler was called: not run.
      lifecycle.announce({ type: "revoked", req, reason: "revoked", atIntake: false, seq: o.seq });
      settleNotRun(st, s, req, delivery, revokedEntry(req, "revoked"));
      ackAtEnd(s, r, earlyAcked);
      continue;
    }
    if (o.refused) {
      s.refuse({
        type: "rejected",
        delivery,
        req,
        taskId: req.id,
        taskName: req.task,
        reason: o.refused,
        kind: "refused",
        atIntake: false,
        seq: o.seq,
      });
      if (o.meta) {
        s.storeWithPark(delivery, {
          taskId: req.id,
          status: "FAILURE",
          meta: o.meta,
          replyTo: req.replyTo,
        });
      }
      continue;
    }
    if (o.retry) {
      lifecycle.announce({ type: "retried", seq: o.seq, req, outcome: { ...o, retry: o.retry } });
      // Early ack not written yet (it ended before its start was read): acknowledged now, as it
      // would be had the read come first, so that a failed republish only stores its FAILURE.
      if (r.acksEarly && !r.acked) {
        r.acked = true;
        s.earlyAcks.push(delivery);
      }
      retries.push({ delivery, req, acked: r.acked, outcome: o });
      continue;
    }
    const status: TaskState = o.ok ? "SUCCESS" : "FAILURE";
    const sent = st.children.take(req.id);
    const followUp = o.followUp;
    if (followUp === undefined) {
      // No canvas: the meta with the children the task sent, and nothing else to build.
      if (o.meta && !o.stored) {
        const meta = withChildren(o.meta, sent);
        s.stores.push({ taskId: req.id, status, meta, replyTo: req.replyTo });
      }
    } else {
      const canvas = canvasOutcome(o, followUp, req, parentOf(st, req), now, sent);
      if (canvas.meta && !o.stored) {
        s.stores.push({ taskId: req.id, status, meta: canvas.meta, replyTo: req.replyTo });
      }
      // Loops, not push(...): a follow-up group may have more members than a call takes arguments.
      for (const e of canvas.stores) s.stores.push(e);
      for (const p of canvas.publishes) s.publishes.push(p);
      for (const j of canvas.joins) s.joins.push(j);
    }
    if (o.ok) {
      lifecycle.announce({ type: "succeeded", seq: o.seq, req, outcome: o });
    } else {
      const exc = o.exc ?? pyException("Exception", "builtins", []);
      lifecycle.announce({
        type: "failed",
        seq: o.seq,
        req,
        cause: "raised",
        exc,
        message: exc.exc_message.map(String).join(", "),
        outcome: o,
      });
    }
    ackAtEnd(s, r, earlyAcked);
  }
  st.settle(s, earlyAcked);
  if (retries.length) {
    st.track(() =>
      settleRetries(retries, {
        broker: st.broker,
        backend: st.backend,
        publish: (m, t) => st.publish(m, t),
        origin: st.hostname,
        outageRetryLimit: st.outageRetryLimit,
        lifecycle: st.lifecycle,
      }), { held: retries });
  }
  st.wake();
}

/**
 * A Web Worker died with these tasks: late-ack tasks that reject on worker
 * loss are requeued, counted in their delivery count as when a worker
 * process dies holding them (so `maxDeliveries` parks one that kills every
 * Web Worker); the others fail with `WorkerLostError`. Those it held
 * that had not started run on another Web Worker (see `runAgain`), never
 * failed; a revoked one is put back in its queue (requeued if
 * unacknowledged, republished if already acknowledged). Neither waits for
 * the failures to be stored: a backend down past `outageRetryLimit` loses
 * none of them.
 *
 * @param st the worker's state
 * @param seqs the dispatch numbers it held that had started
 * @param reason why it died
 * @param notStarted the dispatch numbers it held that had not started
 */
export function settleLost(
  st: WorkerState,
  seqs: number[],
  reason: string,
  notStarted: number[] = [],
): void {
  const s = new Settlement();
  const earlyAcked: Running[] = [];
  const again = runAgain(st, notStarted);
  /** Not started and not to run again here (revoked, terminated): put back as they were. */
  const back = returnAll(st, s, again.rest, "worker-lost", earlyAcked, reason);
  /** Running when it died: counted as given back by a consumer that died holding them. */
  const requeues: Running[] = [];
  for (const seq of seqs) {
    const r = take(st, s, seq, earlyAcked);
    if (!r) continue;
    const task = st.app.tasks.get(r.req.task);
    if (
      !r.acked && !r.acksEarly &&
      (task?.options.rejectOnWorkerLost ?? st.options.rejectOnWorkerLost ?? false)
    ) {
      st.lifecycle.announce({
        type: "returned",
        req: r.req,
        why: "worker-lost",
        seq,
        detail: reason,
      });
      requeues.push(r);
      continue;
    }
    fail(st, s, r, seq, earlyAcked, "worker-lost", new WorkerLostError(reason), reason);
  }
  st.settle(s, earlyAcked);
  putBackNow(st, back, requeues);
  if (again.requests.length) st.pool.run(again.requests);
  st.wake();
}

/**
 * Task `seq` ran past its hard limit: it fails with `TimeLimitExceeded`;
 * the tasks stopped with it, never started, run on another Web Worker (see
 * `runAgain`; a revoked one is put back in its queue), never failed,
 * without waiting for that failure to be stored.
 *
 * @param st the worker's state
 * @param seq the task past its limit
 * @param seconds the limit
 * @param abandoned the other tasks its Web Worker held, not started
 */
export function settleTimeLimit(
  st: WorkerState,
  seq: number,
  seconds: number,
  abandoned: number[],
): void {
  const s = new Settlement();
  const earlyAcked: Running[] = [];
  const r = take(st, s, seq, earlyAcked);
  if (r) {
    const err = new TimeLimitExceeded({ seconds, task: r.req.task, id: r.req.id });
    fail(st, s, r, seq, earlyAcked, "time-limit", err);
  }
  const again = runAgain(st, abandoned);
  const back = returnAll(st, s, again.rest, "time-limit", earlyAcked);
  st.settle(s, earlyAcked);
  putBackNow(st, back);
  if (again.requests.length) st.pool.run(again.requests);
  st.wake();
}

/**
 * The tasks a Web Worker held but never started, when it died or was ended:
 * those to hand to the pool again under the same dispatch number (another
 * Web Worker, or its replacement, runs them), as Celery's worker runs a
 * reserved task once a process is free. They were received, counted and
 * announced started once (task-started, `inspect stats` total, STARTED);
 * put back in their queues, each would be received, counted and announced
 * again, and wait its turn anew. One revoked or terminated meanwhile is in
 * `rest`, put back as before (its intake settles it as revoked).
 */
function runAgain(st: WorkerState, seqs: number[]): { requests: RunRequest[]; rest: number[] } {
  const requests: RunRequest[] = [];
  const rest: number[] = [];
  for (const seq of seqs) {
    const r = st.running.get(seq);
    const task = r && st.app.tasks.get(r.req.task);
    if (!r || !task || st.terminated.has(seq) || st.revoked.has(r.req.id)) rest.push(seq);
    else requests.push(runRequest(st, seq, r.delivery, r.req, task));
  }
  return { requests, rest };
}

/**
 * Put tasks back in their queues at once, beside the settlement of the
 * tasks stopped with them: it needs only the broker, so a result backend
 * that is down (the stores of that settlement failing) does not lose the
 * early-acknowledged ones nor keep the others until their visibility
 * timeout.
 */
function putBackNow(st: WorkerState, back: Running[], requeues: Running[] = []): void {
  if (back.length === 0 && requeues.length === 0) return;
  st.track(async () => {
    await putBack(st, back);
    await putBack(st, requeues, true);
  }, { held: [...back, ...requeues] });
}

/**
 * Put tasks that were stopped through no fault of their own back in their
 * queues: unacknowledged ones are requeued in the order they were received
 * (so they are at the head of their queues in that order), acknowledged ones
 * published again.
 *
 * @param st the worker's state
 * @param tasks the tasks
 * @param consumerDied count the unacknowledged ones as given back by a
 *   consumer that died holding them (their Web Worker died running them)
 */
export async function putBack(
  st: WorkerState,
  tasks: readonly Pick<Running, "delivery" | "acked" | "received">[],
  consumerDied = false,
): Promise<void> {
  const unacked = tasks.filter((t) => !t.acked).sort((a, b) => a.received - b.received)
    .map((t) => t.delivery);
  if (unacked.length) await st.broker.requeue(unacked, consumerDied ? { consumerDied } : undefined);
  for (const t of tasks.filter((x) => x.acked)) {
    await st.broker.publish(t.delivery, {
      exchange: t.delivery.exchange,
      routingKey: t.delivery.routingKey,
    });
  }
}

/**
 * Take task `seq` off the running ones; one revoked with terminate is settled
 * as such here, and only a task to settle otherwise is returned.
 */
function take(
  st: WorkerState,
  s: Settlement,
  seq: number,
  earlyAcked: Running[],
): Running | undefined {
  const r = st.running.get(seq);
  if (!r) return undefined;
  st.running.delete(seq);
  const signum = st.terminated.get(seq);
  if (signum === undefined) return r;
  st.terminated.delete(seq);
  terminated(st, s, r, seq, signum, earlyAcked);
  return undefined;
}

/** Tasks stopped before they started: announced as returned, to be put back in their queues. */
function returnAll(
  st: WorkerState,
  s: Settlement,
  seqs: number[],
  why: "worker-lost" | "time-limit",
  earlyAcked: Running[],
  detail?: string,
): Running[] {
  const back: Running[] = [];
  for (const seq of seqs) {
    const r = take(st, s, seq, earlyAcked);
    if (!r) continue;
    st.lifecycle.announce({
      type: "returned",
      req: r.req,
      why,
      seq,
      ...(detail === undefined ? {} : { detail }),
    });
    back.push(r);
  }
  return back;
}

/**
 * A task that failed through no error of its own code (its Web Worker died,
 * its hard limit passed): FAILURE stored with `err`, acknowledged.
 */
function fail(
  st: WorkerState,
  s: Settlement,
  r: Running,
  seq: number,
  earlyAcked: Running[],
  cause: "worker-lost" | "time-limit",
  err: Error,
  message = err.message,
): void {
  const exc = exceptionInfo(err);
  st.lifecycle.announce({ type: "failed", seq, req: r.req, cause, exc, message });
  s.stores.push({ ...failureEntry(r.req.id, exc, null), replyTo: r.req.replyTo });
  ackAtEnd(s, r, earlyAcked);
}

/** A task revoked with terminate: REVOKED; an early-acked one joins `earlyAcked` (its entry unstored). */
function terminated(
  st: WorkerState,
  s: Settlement,
  r: Running,
  seq: number,
  signum: number,
  earlyAcked: Running[],
  lifecycle = st.lifecycle,
): void {
  lifecycle.announce({
    type: "revoked",
    req: r.req,
    reason: "terminated",
    atIntake: false,
    seq,
    signum,
  });
  settleNotRun(st, s, r.req, r.delivery, revokedEntry(r.req, "terminated"));
  ackAtEnd(s, r, earlyAcked);
}

/**
 * Acknowledge a task that ended, with its settlement: a late ack after its
 * results are stored; an early ack already written (or under way) is left
 * (`earlyAcked`: only its results remain); an early ack not written yet (the
 * task ended before its start was read, or never started: revoked,
 * terminated) at once, beside the rest ({@link Settlement.earlyAcks}).
 */
function ackAtEnd(s: Settlement, r: Running, earlyAcked: Running[]): void {
  if (r.acked) earlyAcked.push(r);
  else if (r.acksEarly) {
    r.acked = true;
    s.earlyAcks.push(r.delivery);
    earlyAcked.push(r);
  } else s.acks.push(r.delivery);
}

/** A task as the parent of what it sends (chain steps, callbacks, its chord's body). */
function parentOf(st: WorkerState, req: TaskRequest): Parent {
  return {
    id: req.id,
    rootId: req.rootId ?? req.id,
    origin: st.hostname,
    defaultQueue: st.app.config.defaultQueue,
    route: (task, args, kwargs, options) => st.app.routeSignature(task, args, kwargs, options),
    headers: inheritedHeaders(req.headers),
  };
}

/**
 * Store the REVOKED entry of a task that will not run, with what its canvas
 * needs (failed chain steps after it, its chord's joins).
 *
 * @example
 * ```ts ignore
 * settleNotRun(st, batch, req, delivery, revokedEntry(req, "revoked"));
 * ```
 *
 * @param st the worker's state
 * @param s the settlement to add to
 * @param req the task
 * @param message its message
 * @param entry its REVOKED entry
 */
export function settleNotRun(
  st: WorkerState,
  s: Settlement,
  req: TaskRequest,
  message: Message,
  entry: StoreEntry,
): void {
  s.stores.push(entry);
  const { stores, joins } = notRunCanvas(
    req,
    message,
    entry,
    parentOf(st, req),
    st.options.maxDecompressedSize,
  );
  // A loop, not push(...): a chain may have more steps than a call takes arguments.
  for (const e of stores) s.stores.push(e);
  for (const j of joins) s.joins.push(j);
}

/**
 * Settle a redelivered task acknowledged as a suppressed duplicate with
 * what it does again from the result it stored ({@link duplicateCanvas}):
 * a chord header member's join, a SUCCESS's callbacks and next chain step,
 * a FAILURE's sent errbacks.
 *
 * @example
 * ```ts ignore
 * settleDuplicate(st, batch, req, delivery, storedMeta);
 * ```
 *
 * @param st the worker's state
 * @param s the settlement to add to (its stores, resends and joins go before its acknowledgements)
 * @param req the task
 * @param message its message
 * @param meta the result stored for it
 */
export function settleDuplicate(
  st: WorkerState,
  s: Settlement,
  req: TaskRequest,
  message: Message,
  meta: ResultMeta,
): void {
  const again = duplicateCanvas(
    req,
    message,
    meta,
    parentOf(st, req),
    st.tasks,
    new Date(),
    st.options.maxDecompressedSize,
  );
  // Loops, not push(...): a follow-up group may have more members than a call takes arguments.
  for (const e of again.stores) s.stores.push(e);
  for (const p of again.publishes) s.resends.push(p);
  for (const j of again.joins) s.joins.push(j);
}
