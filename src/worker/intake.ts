/**
 * The intake of a worker: decode what the broker delivers, refuse what
 * cannot run, hold ETA tasks, queue rate-limited ones for a token, and hand
 * the rest to the pool — announcing each step on the lifecycle.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Delivery, TokenGrant, TokenRequest } from "../broker/port.ts";
import type { Task } from "../client/task.ts";
import { codecsToLoad, loadCodecs } from "../protocol/codecs.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { decodeTaskHeaders, type TaskRequest } from "../protocol/task_request.ts";
import type { RunRequest } from "./executor.ts";
import { rejectedTask, taskOf } from "./lifecycle.ts";
import { LocalTokenBuckets, RateLimiter } from "./rate_limit.ts";
import { oneLine } from "./log_values.ts";
import { pyException, refusalInfo, revokedEntry, startedEntry } from "./result_entries.ts";
import { parkUnsettled, thrownDetail, thrownText } from "./last_resort.ts";
import { finishedBefore, screen } from "./screening.ts";
import { putBack, settleDuplicate, settleNotRun } from "./outcomes.ts";
import { Settlement } from "./settlement.ts";
import { runRequest } from "./run_request.ts";
import { type TimerHandle, TimerQueue } from "./timer_queue.ts";
import type { Running, WorkerState } from "./worker_state.ts";

const log = getLogger(["celeriac", "worker"]);

/** A task waiting for its ETA or for a rate-limit token. */
interface Waiting {
  delivery: Delivery;
  req: TaskRequest;
  task: Task<never, unknown>;
  /** Its place in the order received. */
  received: number;
  handle?: TimerHandle;
}

/** What routing a batch's deliveries one by one shares. */
interface Batch {
  /** The tasks whose results were already terminal when the batch came. */
  done: Awaited<ReturnType<typeof finishedBefore>>;
  /** When the batch came (ms). */
  now: number;
  /** The tasks prepared for the pool. */
  runs: RunRequest[];
  /** Where those are settled. */
  s: Settlement;
  /** The deliveries ended on arrival. */
  ended: Delivery[];
  /** Where those are settled. */
  ends: Settlement;
}

/**
 * Takes deliveries to the pool. ETA tasks are held unacknowledged (leases
 * renewed by the worker where the broker has them; on AMQP held at most
 * `etaHoldLimit`, then published again); rate-limited tasks wait in the
 * {@link RateLimiter}.
 */
export class Intake {
  /** Rate limits and the tasks waiting for a token. */
  readonly limiter: RateLimiter<Waiting>;
  readonly #s: WorkerState;
  readonly #held = new TimerQueue<Waiting>((h) => this.#due(h));
  /** Held ETA tasks by id: a list, as two messages may carry one id. */
  readonly #heldById = new Map<string, Waiting[]>();
  readonly #localBuckets = new LocalTokenBuckets();
  #seq = 0;
  #received = 0;
  #closed = false;
  /** Tasks that came due (ETA, or a token granted) after {@link Intake.close}: put back with the rest. */
  readonly #late: Waiting[] = [];

  /** @param state the worker's shared state */
  constructor(state: WorkerState) {
    this.#s = state;
    this.limiter = new RateLimiter<Waiting>({
      acquire: (requests) => this.#acquireTokens(requests),
      onReady: (items) => this.#admit(items),
    });
  }

  /** How many ETA tasks are held, waiting to be due. */
  get etaHeld(): number {
    return this.#held.size;
  }

  /** How many tasks wait for a rate-limit token. */
  get backlog(): number {
    return this.limiter.size;
  }

  /**
   * The deliveries held unacknowledged by the intake (ETA and rate-limited).
   *
   * @returns them
   */
  holding(): Delivery[] {
    return [...this.#held.items(), ...this.limiter.held()].map((h) => h.delivery);
  }

  /**
   * Decode and route a batch of deliveries.
   *
   * @param deliveries what the broker gave
   * @param ended collects the deliveries it ends on arrival (parked, revoked or expired, or
   *   acknowledged as duplicates), for a caller that parks the batch when this throws: not
   *   those; default none
   * @param ends where it settles those, written once the others are handed to the pool (by the
   *   caller when this throws: it was not); default its own
   */
  async receive(
    deliveries: Delivery[],
    ended: Delivery[] = [],
    ends: Settlement = new Settlement(),
  ): Promise<void> {
    const unloaded: Delivery[] = [];
    for (const d of deliveries) {
      if (!this.#decodesBody(d)) continue;
      try {
        const needs = codecsToLoad(d.contentType, d.headers.compression);
        if (needs) await loadCodecs(needs);
      } catch (err) {
        // Its codec did not load: it alone is parked; the rest of the batch is routed.
        this.#parkUnroutable(d, err, ends);
        ended.push(d);
        unloaded.push(d);
      }
    }
    const done = await finishedBefore(this.#s.backend, deliveries);
    if (this.#closed) return await this.#giveBack(deliveries);
    const now = Date.now();
    const s = new Settlement();
    const runs: RunRequest[] = [];
    const batch: Batch = { done, now, runs, s, ended, ends };
    for (const d of deliveries) {
      if (unloaded.length && unloaded.includes(d)) continue;
      try {
        this.#route(d, batch);
      } catch (err) {
        // One the worker already took (ended, held, or running): the caller parks the batch.
        if (this.#took(d, ended)) throw err;
        this.#parkUnroutable(d, err, ends);
        ended.push(d);
      }
    }
    if (runs.length) this.#s.pool.run(runs);
    this.#s.settle(ends);
    this.#s.settle(s);
  }

  /**
   * Decode and route one delivery of a batch: ended on arrival (in
   * `b.ends`, listed in `b.ended`), held, waiting for a token, or prepared
   * for the pool (in `b.runs`).
   */
  #route(d: Delivery, b: Batch): void {
    const { lifecycle, app } = this.#s;
    const { ended, ends } = b;
    const received = ++this.#received;
    let req: TaskRequest;
    try {
      req = decodeTaskHeaders(
        d,
        this.#s.broker.headersChecked === true,
        this.#s.options.maxDecompressedSize,
      );
    } catch (err) {
      const headers = taskOf(d);
      const taskId = err instanceof ProtocolError ? err.taskId ?? null : headers.taskId;
      const reason = `malformed task message: ${(err as Error).message}`;
      ended.push(d);
      ends.park({
        type: "rejected",
        delivery: d,
        req: null,
        taskId,
        taskName: headers.taskName,
        reason,
        kind: "malformed",
        atIntake: true,
      }, refusalInfo(err));
      return;
    }
    const screened = screen(d, req, b.done, ends, this.#s.options.maxDeliveries);
    if (screened) {
      // What it would have done next, again from its stored result (duplicateCanvas).
      const stored = screened === "suppressed" ? b.done.get(req.id) : undefined;
      if (stored) settleDuplicate(this.#s, ends, req, d, stored);
      ended.push(d);
      return;
    }
    const task = app.tasks.get(req.task);
    if (!task?.handler) {
      const reason = `unregistered task "${req.task}"`;
      const info = pyException("NotRegistered", "celery.exceptions", [req.task]);
      ended.push(d);
      ends.park(rejectedTask(d, req, reason, "unregistered", true), info);
      return;
    }
    if (this.#s.revoked.has(req.id)) {
      ended.push(d);
      this.#notRun(ends, d, req, "revoked", true);
      return;
    }
    if (req.expires && req.expires.getTime() <= b.now) {
      ended.push(d);
      this.#notRun(ends, d, req, "expired", true);
      return;
    }
    // The registered task's own name string (the registry holds tasks by
    // name) instead of the message's copy: what keeps the request's strings
    // after it (task events, a 50 ms window) keeps one string per task name.
    req.task = task.name;
    const held = req.eta !== null && req.eta.getTime() > b.now;
    lifecycle.emit({ type: "received", req, delivery: d, held });
    if (held) {
      ownBody(d);
      this.#hold({ delivery: d, req, task, received });
      return;
    }
    if (this.limiter.rate(req.task) !== null) {
      ownBody(d);
      // Emitted before it waits, as received and held: a listener that throws parks this message
      // alone (#route's caller), never its batch.
      lifecycle.emit({ type: "waiting", req, delivery: d });
      this.limiter.submit(req.task, { delivery: d, req, task, received });
      return;
    }
    b.runs.push(this.#prepare(d, req, task, b.s, received));
  }

  /** Whether routing `d` got as far as ending, holding or running it. */
  #took(d: Delivery, ended: Delivery[]): boolean {
    if (ended.includes(d) || this.holding().includes(d)) return true;
    return this.#s.running.values().some((r) => r.delivery === d);
  }

  /**
   * Park a delivery whose routing threw (by itself: the rest of its batch
   * is routed), with the error as reason and a FAILURE stored for the task
   * id its headers carry.
   */
  #parkUnroutable(d: Delivery, err: unknown, ends: Settlement): void {
    const reason = `worker error while receiving it: ${thrownText(err)}`;
    log.error("Receiving message {taskId} failed ({error}); parking it", {
      taskId: oneLine(taskOf(d).taskId),
      error: thrownDetail(err),
    });
    parkUnsettled(ends, d, null, reason, null);
  }

  /**
   * Revoke tasks the intake holds (ETA or waiting for a token): they are
   * stored as REVOKED and acknowledged at once.
   *
   * @param ids task ids
   */
  revoke(ids: readonly string[]): void {
    const s = new Settlement();
    for (const id of ids) {
      // Every message held under the id (a duplicate id too), not only the last held.
      // A copy: #unhold splices the list this loop would otherwise walk.
      for (const h of [...(this.#heldById.get(id) ?? [])]) {
        if (this.#held.cancel(h.handle!)) {
          this.#unhold(h);
          this.#notRun(s, h.delivery, h.req, "revoked", false);
        }
      }
    }
    const wanted = new Set(ids);
    for (const h of this.limiter.remove((x) => wanted.has(x.req.id))) {
      this.#notRun(s, h.delivery, h.req, "revoked", false);
    }
    this.#s.settle(s);
  }

  /**
   * Drop the held tasks (ETA or waiting for a token) whose lease ran out:
   * a sweep restored their message to its queue, so it is delivered again
   * (to this worker or another) and the copy held here must not run too.
   * A sweep may park the message instead (its entry unreadable, or its
   * exchange routing its routing key to no queue): the brokers do not say
   * which, so that copy is dropped as well and the task waits in the park
   * list. The take loop is woken: a worker at its `etaTaskLimit` or its
   * rate-limit backlog cap may take again.
   *
   * @param gone deliveries the broker no longer holds for this worker
   */
  dropLost(gone: readonly Delivery[]): void {
    const lost = new Set(gone);
    const dropped = this.limiter.remove((h) => lost.has(h.delivery));
    for (const h of this.#held.items()) {
      if (lost.has(h.delivery) && this.#held.cancel(h.handle!)) {
        this.#unhold(h);
        dropped.push(h);
      }
    }
    for (const h of dropped) {
      this.#s.lifecycle.announce({ type: "returned", req: h.req, why: "lease-lost" });
    }
    if (dropped.length === 0) return;
    this.#s.wake(); // fewer held: a take loop at its ETA or backlog limit may take again
    log.warn(
      "Dropped {n} held task(s) whose lease ran out before it was renewed: a sweep took their messages back, restored to their queues (delivered again) or parked (an unreadable entry, or an exchange that routes the routing key to no queue)",
      { n: dropped.length },
    );
  }

  /**
   * Receive nothing more (a cold shutdown): a batch still on its way in (a
   * take that returned as its signal aborted, or waiting for the states of
   * redelivered tasks) goes back to its queues instead of to the pool, and
   * a held task that comes due (its ETA, or its rate-limit token) waits for
   * {@link Intake.requeueAll}.
   */
  close(): void {
    this.#closed = true;
  }

  async #giveBack(deliveries: Delivery[]): Promise<void> {
    try {
      await this.#s.broker.requeue(deliveries);
    } catch (err) {
      log.warn("Could not put back {n} message(s) received at shutdown: {error}", {
        n: deliveries.length,
        error: (err as Error).message,
      });
    }
  }

  /**
   * Put every task the intake holds back in its queue (shutdown), with
   * `running` (a cold shutdown's), in the order they were received.
   *
   * A broker that fails meanwhile (the shutdown may follow its failure) is
   * logged, not thrown, so that the shutdown goes on: what was not
   * acknowledged comes back as the broker restores it (Redis and KV after
   * the visibility timeout, RabbitMQ when the connection closes).
   *
   * @param running running tasks taken back from the pool, to put back too
   */
  async requeueAll(running: readonly Running[] = []): Promise<void> {
    const held = [...this.#held.clear(), ...this.limiter.drain(), ...this.#late.splice(0)];
    this.#heldById.clear();
    for (const h of held) {
      this.#s.lifecycle.announce({ type: "returned", req: h.req, why: "shutdown" });
    }
    const back = held.map((h) => ({ delivery: h.delivery, acked: false, received: h.received }));
    const all = [...back, ...running];
    try {
      await putBack(this.#s, all);
    } catch (err) {
      log.error(
        "Could not put back {n} task(s) at shutdown: {error}. The unacknowledged come back when the broker restores them; {acked} acknowledged running task(s) are lost",
        {
          n: all.length,
          error: (err as Error).message,
          acked: all.filter((t) => t.acked).length,
        },
      );
    }
  }

  /**
   * Whether the main thread may decode the message's body, and so needs its
   * codecs: a protocol-1 message keeps its task name there, and one settled
   * without running (revoked, expired; held for its ETA or a rate limit,
   * which a revoke or its expiry may end) is stored with its canvas (the
   * chain after it, its chord's join), which the body holds.
   */
  #decodesBody(d: Delivery): boolean {
    const h = d.headers;
    if (typeof h.task !== "string") return true;
    return (typeof h.id === "string" && this.#s.revoked.has(h.id)) || h.expires != null ||
      h.eta != null || this.limiter.rate(h.task) !== null;
  }

  #notRun(
    s: Settlement,
    d: Delivery,
    req: TaskRequest,
    reason: "revoked" | "expired",
    atIntake: boolean,
  ): void {
    // Settled, then announced: a listener that throws is logged (the rest of the batch goes on).
    settleNotRun(this.#s, s, req, d, revokedEntry(req, reason));
    s.acks.push(d);
    this.#s.lifecycle.announce({ type: "revoked", req, reason, atIntake });
  }

  /** Shared buckets when the broker has them (Redis), else this worker's own. */
  #acquireTokens(requests: readonly TokenRequest[]): Promise<TokenGrant[]> {
    const broker = this.#s.broker;
    if (broker.acquireTokens) return broker.acquireTokens(requests);
    return Promise.resolve(this.#localBuckets.acquire(requests));
  }

  #admit(items: Waiting[]): void {
    for (const h of items) this.#due(h, true);
    this.#s.wake();
  }

  /**
   * Hold an ETA task, unacknowledged, until it is due. Where the broker has
   * leases they are renewed while it waits; where it has none (AMQP) it is
   * held at most `etaHoldLimit` and then published again.
   */
  #hold(h: Waiting): void {
    const eta = h.req.eta!.getTime();
    const limit = this.#s.broker.visibilityTimeout === null
      ? Date.now() + (this.#s.options.etaHoldLimit ?? 600) * 1000
      : Infinity;
    this.#s.lifecycle.emit({ type: "held", req: h.req, delivery: h.delivery });
    h.handle = this.#held.add(Math.min(eta, limit), h);
    const same = this.#heldById.get(h.req.id);
    if (same) same.push(h);
    else this.#heldById.set(h.req.id, [h]);
  }

  /** Forget a held task by its id (it is due, or revoked). */
  #unhold(h: Waiting): void {
    const same = this.#heldById.get(h.req.id);
    const at = same?.indexOf(h) ?? -1;
    if (at < 0) return;
    if (same!.length === 1) this.#heldById.delete(h.req.id);
    else same!.splice(at, 1);
  }

  /** A held task is due, or a rate-limited one got its token (`admitted`). */
  #due(h: Waiting, admitted = false): void {
    this.#unhold(h);
    if (this.#closed) {
      this.#late.push(h);
      return;
    }
    const { delivery: d, req, task, received } = h;
    const s = new Settlement();
    if (this.#s.revoked.has(req.id)) {
      this.#notRun(s, d, req, "revoked", false);
    } else if (req.expires && req.expires.getTime() <= Date.now()) {
      this.#notRun(s, d, req, "expired", false);
    } else if (req.eta && req.eta.getTime() > Date.now()) {
      this.#s.lifecycle.announce({ type: "returned", req, why: "eta-hold-limit" });
      s.publishes.push({
        taskId: req.id,
        message: d,
        target: { exchange: d.exchange, routingKey: d.routingKey },
      });
      s.acks.push(d);
    } else if (!admitted && this.limiter.rate(req.task) !== null) {
      // Announced, not emitted: no per-message catch here, a throw would leave this task (and
      // the rest of #admit's tasks) neither waiting nor settled.
      this.#s.lifecycle.announce({ type: "waiting", req, delivery: d });
      this.limiter.submit(req.task, { delivery: d, req, task, received });
      return;
    } else {
      this.#s.pool.run([this.#prepare(d, req, task, s, received)]);
    }
    this.#s.settle(s);
    this.#s.wake(); // one ETA task fewer held: the take loop may take again
  }

  #prepare(
    d: Delivery,
    req: TaskRequest,
    task: Task<never, unknown>,
    s: Settlement,
    received: number,
  ): RunRequest {
    const st = this.#s;
    const seq = ++this.#seq;
    const lateAck = task.options.acksLate ?? st.options.acksLate ?? false;
    // Early ack: written once the pool reports the task started (a pool that cannot tell: now).
    const ackNow = !lateAck && !st.pool.started;
    if (ackNow) {
      s.acks.push(d);
      s.startedAcks.push(seq);
    }
    st.running.set(seq, {
      delivery: d,
      req,
      acked: ackNow,
      acksEarly: !lateAck,
      ackEnded: false,
      started: performance.now(),
      received,
    });
    if (!lateAck && !ackNow) st.startAcks.watch(seq);
    st.lifecycle.announce({ type: "started", seq, req, delivery: d, acked: !lateAck });
    if (task.options.trackStarted && st.backend) s.stores.push(startedEntry(req, st.hostname));
    return runRequest(st, seq, d, req, task);
  }
}

/**
 * Give a delivery that may wait long (ETA, rate limit) a body buffer of its
 * own when its body is a view of a larger one (the Redis taker decodes a
 * take's bodies into one buffer), so that it does not keep the others' bytes.
 */
function ownBody(d: Delivery): void {
  if (d.body.byteLength !== d.body.buffer.byteLength) d.body = d.body.slice();
}
