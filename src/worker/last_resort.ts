/**
 * Last-resort handlers of the worker's main thread: an error thrown while
 * receiving a batch, or while settling the outcomes the pool reports, must
 * neither end the process nor lose a delivery. What cannot be handled the
 * normal way is parked with the error as its reason (and a FAILURE stored
 * for its task id when one can be read), and announced (`rejected`, kind
 * `unsettled`: logged and counted in the worker's `parked`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Delivery } from "../broker/port.ts";
import { describeValue } from "../protocol/task_fields.ts";
import type { TaskRequest } from "../protocol/task_request.ts";
import type { RunOutcome } from "./executor.ts";
import { withChildren } from "./chords.ts";
import { taskOf } from "./lifecycle.ts";
import type { Intake } from "./intake.ts";
import { failureEntry, pyException, REFUSED_MODULE } from "./result_entries.ts";
import { Settlement } from "./settlement.ts";
import type { Running, WorkerState } from "./worker_state.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * What a thrown value says, for a park's reason: an Error's message, or
 * the value described (anything may be thrown: a string, null, ...).
 *
 * @example
 * ```ts
 * import { thrownText } from "./last_resort.ts";
 * thrownText(new TypeError("broke")); // "broke"
 * thrownText("broke"); // 'thrown value "broke" (not an Error)'
 * ```
 *
 * @param err what was thrown
 * @returns its text
 */
export function thrownText(err: unknown): string {
  return err instanceof Error ? err.message : `thrown value ${describeValue(err)} (not an Error)`;
}

/**
 * What a thrown value says, for a log line: an Error's stack, else
 * {@link thrownText}.
 *
 * @example
 * ```ts
 * import { thrownDetail } from "./last_resort.ts";
 * thrownDetail(null); // "thrown value null (not an Error)"
 * ```
 *
 * @param err what was thrown
 * @returns its text, with the stack when it has one
 */
export function thrownDetail(err: unknown): string {
  return err instanceof Error ? err.stack ?? err.message : thrownText(err);
}

/**
 * Receive a batch; when the intake throws, park every delivery of the batch
 * the worker does not hold (held for an ETA or a rate token) with the error
 * as reason. A delivery prepared for the pool but never handed over is
 * taken back from the running set and parked too. Those the intake ended
 * on arrival (parked, revoked or expired, acknowledged as duplicates) are
 * settled as it settled them: its settlement of them was not written.
 *
 * @example
 * ```ts ignore
 * if (got.length) await receiveOrPark(state, intake, got);
 * ```
 *
 * @param st the worker's state
 * @param intake the intake
 * @param deliveries the batch
 */
export async function receiveOrPark(
  st: WorkerState,
  intake: Intake,
  deliveries: Delivery[],
): Promise<void> {
  const ended: Delivery[] = [];
  const ends = new Settlement();
  try {
    await intake.receive(deliveries, ended, ends);
  } catch (err) {
    const held = new Set(intake.holding());
    const settled = new Set(ended);
    const seqOf = new Map<Delivery, [number, Running]>();
    for (const [seq, r] of st.running) seqOf.set(r.delivery, [seq, r]);
    const reason = `worker error while receiving it: ${thrownText(err)}`;
    log.error("Receiving a batch of {n} message(s) failed ({error}); parking them", {
      n: deliveries.length,
      error: thrownDetail(err),
    });
    st.settle(ends);
    const s = new Settlement();
    for (const d of deliveries) {
      if (held.has(d) || settled.has(d)) continue;
      const running = seqOf.get(d);
      if (running) st.running.delete(running[0]);
      // One handed to the pool was announced as received; the others end here on arrival.
      parkUnsettled(s, d, running?.[1].req ?? null, reason, null);
    }
    st.settle(s);
    st.wake();
  }
}

/**
 * Park `d` in `s` as the last resort does, announced once written (kind
 * `unsettled`; `req` when it was received: not at intake), with `meta`
 * stored for its task, else a FAILURE `InternalError` with the reason when
 * its task id can be read.
 *
 * @example
 * ```ts ignore
 * parkUnsettled(settlement, delivery, null, `worker error while receiving it: ${err.message}`, null);
 * ```
 *
 * @param s the settlement to park it in
 * @param d the delivery
 * @param req its decoded request when it was received, else null
 * @param reason why, listed with the parked message and stored
 * @param meta the result to store in place of the FAILURE, if any
 */
export function parkUnsettled(
  s: Settlement,
  d: Delivery,
  req: TaskRequest | null,
  reason: string,
  meta: { status: "SUCCESS" | "FAILURE"; meta: string } | null,
): void {
  const headers = taskOf(d);
  const taskId = req?.id ?? headers.taskId;
  const taskName = req?.task ?? headers.taskName;
  s.refuse({
    type: "rejected",
    delivery: d,
    req,
    taskId,
    taskName,
    reason,
    kind: "unsettled",
    atIntake: req === null,
  });
  if (meta && taskId) s.storeWithPark(d, { taskId, status: meta.status, meta: meta.meta });
  else if (taskId) {
    s.storeWithPark(
      d,
      failureEntry(taskId, pyException("InternalError", REFUSED_MODULE, [reason]), null),
    );
  }
}

/**
 * Settle outcomes with `settle`; when it throws, settle each outcome
 * alone, and an outcome that still throws is written the plain way: its
 * result stored (so its caller sees it) and its delivery parked with the
 * error as reason (its follow-ups are not sent; an operator can requeue
 * it). Outcomes the throwing pass had taken were announced by it: they
 * are settled alone without a second announcement, and with what it had
 * consumed (the children they sent, a terminate) given back. A lifecycle
 * listener that throws does not get here: the announcements log it.
 *
 * @example
 * ```ts ignore
 * onOutcomes: (outs) => settleOrPark(state, outs, settleOutcomes),
 * ```
 *
 * @param st the worker's state
 * @param outcomes what the pool reported
 * @param settle the normal handler
 */
export function settleOrPark(
  st: WorkerState,
  outcomes: RunOutcome[],
  settle: (st: WorkerState, outcomes: RunOutcome[], announce?: boolean) => void,
): void {
  // An array in the outcomes' order rather than a map: the fallback's only copy, made per batch.
  const before = new Array<Running | undefined>(outcomes.length);
  for (let i = 0; i < outcomes.length; i++) before[i] = st.running.get(outcomes[i].seq);
  // What settling consumes besides the running entry (the children a task sent, a terminate),
  // kept for the fallback (usually nothing to keep): it settles each outcome as a pass would.
  const kids = st.children.size === 0 ? null : before.map((r) => r && st.children.peek(r.req.id));
  const terms = st.terminated.size === 0 ? null : outcomes.map((o) => st.terminated.get(o.seq));
  try {
    settle(st, outcomes);
    return;
  } catch (err) {
    log.error("Settling {n} outcome(s) failed ({error}); settling them one by one", {
      n: outcomes.length,
      error: thrownDetail(err),
    });
  }
  const s = new Settlement();
  // Those the first pass took (in order, up to the one that threw) were announced: not again.
  const took = outcomes.map((o, i) => before[i] !== undefined && !st.running.has(o.seq));
  for (const [i, o] of outcomes.entries()) {
    const r = before[i];
    if (!r) continue;
    st.running.set(o.seq, r);
    const sent = kids?.[i];
    if (sent) st.children.restore(r.req.id, sent);
    const signum = terms?.[i];
    if (signum !== undefined) st.terminated.set(o.seq, signum);
    try {
      settle(st, [o], !took[i]);
    } catch (err) {
      st.running.delete(o.seq);
      st.terminated.delete(o.seq);
      st.children.take(r.req.id);
      const reason = `worker error after the task ran: ${thrownText(err)}`;
      const meta = o.meta && !o.refused && !o.retry && !o.stored
        ? {
          status: o.ok ? "SUCCESS" as const : "FAILURE" as const,
          meta: withChildren(o.meta, sent ?? []),
        }
        : null;
      parkUnsettled(s, r.delivery, r.req, reason, meta);
    }
  }
  st.settle(s);
  st.wake();
}
