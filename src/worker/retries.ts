/**
 * Settling retried tasks on the worker's main thread: store RETRY, publish
 * the retry message to the queue the task came from, then acknowledge the
 * original. The original is acknowledged only once its retry is in the
 * broker. The publish rides out a broker outage for `outageRetryLimit`, as
 * follow-up publishes do; a retry that still cannot be published fails the
 * task and parks the message (Celery rejects it), unless it was acknowledged
 * on receipt.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ResultBackend, StoreEntry } from "../backend/port.ts";
import type { Broker, Delivery, PublishTarget, Rejection } from "../broker/port.ts";
import { retryWhileDown } from "../broker/outage.ts";
import { codecsToLoad, loadCodecs } from "../protocol/codecs.ts";
import { exceptionInfo, tracebackText } from "../protocol/exceptions.ts";
import type { Message } from "../protocol/message.ts";
import { encodeResultMeta } from "../protocol/result_meta.ts";
import { encodeRetryMessage } from "../protocol/retry_message.ts";
import type { TaskRequest } from "../protocol/task_request.ts";
import type { RunOutcome } from "./executor.ts";
import { type Lifecycle, rejectedTask, type TaskRejected } from "./lifecycle.ts";
import { announceParks } from "./settlement.ts";
import { oneLine } from "./log_values.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * A task whose handler asked for a retry.
 *
 * @example
 * ```ts ignore
 * const due: DueRetry = { delivery, req, acked: false, outcome };
 * ```
 */
export interface DueRetry {
  /** The delivery being retried. */
  delivery: Delivery;
  /** Its decoded headers. */
  req: TaskRequest;
  /** Whether the delivery was already acknowledged (early ack). */
  acked: boolean;
  /** The outcome, with `retry` and the RETRY `meta`. */
  outcome: RunOutcome;
}

/**
 * What settling retries uses: the worker's connections and node name.
 *
 * @example
 * ```ts ignore
 * const io: RetryIo = { broker, backend, publish: (m, t) => app.publish(m, t), origin: worker.hostname };
 * ```
 */
export interface RetryIo {
  /** The broker the deliveries came from. */
  broker: Broker;
  /** Where RETRY (and a failure) is stored; null without a backend. */
  backend: ResultBackend | null;
  /** Publishes the retry message. */
  publish(message: Message, target: PublishTarget): Promise<void>;
  /** Node name written as the retry's `origin`. */
  origin: string;
  /** Seconds a retry publish is retried while the broker is down; default 300. */
  outageRetryLimit?: number;
  /** Where a delivery parked for a retry not published is announced; default none. */
  lifecycle?: Lifecycle;
}

/**
 * Settle retried tasks: store their RETRY metas, publish each retry to the
 * exchange and routing key its delivery came with, then acknowledge the
 * deliveries whose retry was published. Each publish is retried while the
 * broker is down, for `outageRetryLimit`; a retry that still cannot be
 * published stores FAILURE with the publishing error and parks its delivery
 * when it is unacknowledged (an acknowledged one is gone from the broker),
 * announcing it on `io.lifecycle` once parked (a listener's error is
 * logged: the batch's other retries are acknowledged all the same).
 *
 * @example
 * ```ts ignore
 * await settleRetries(dueRetries, { broker, backend, publish, origin: "celeriac@host" });
 * ```
 *
 * @param due the retried tasks
 * @param io connections and node name
 */
export async function settleRetries(due: readonly DueRetry[], io: RetryIo): Promise<void> {
  const retryMetas: StoreEntry[] = [];
  for (const { req, outcome } of due) {
    if (outcome.meta) {
      retryMetas.push({
        taskId: req.id,
        status: "RETRY",
        meta: outcome.meta,
        replyTo: req.replyTo,
      });
    }
  }
  if (io.backend && retryMetas.length) await io.backend.store(retryMetas);
  const acks: Delivery[] = [];
  const failures: StoreEntry[] = [];
  const rejects: Rejection[] = [];
  const parks: TaskRejected[] = [];
  const outage = { limit: io.outageRetryLimit, what: "publish retries" };
  for (const { delivery: d, req, acked, outcome } of due) {
    const r = outcome.retry!;
    try {
      const needs = codecsToLoad(d.contentType, d.headers.compression);
      if (needs) await loadCodecs(needs);
      const message = encodeRetryMessage({
        request: req,
        original: d,
        args: r.args,
        kwargs: r.kwargs,
        embed: r.embed,
        retries: r.retries,
        eta: r.eta,
        now: new Date(),
        origin: io.origin,
      });
      const target = { exchange: d.exchange, routingKey: d.routingKey };
      await retryWhileDown(() => io.publish(message, target), outage);
      if (!acked) acks.push(d);
    } catch (err) {
      const reason = `retry could not be published: ${(err as Error).message}`;
      log.error("Task {name}[{id}] failed: {reason}", {
        name: oneLine(req.task),
        id: oneLine(req.id),
        reason,
      });
      // An acknowledged delivery (early ack) is the broker's no more: nothing to park.
      if (!acked) {
        rejects.push({ delivery: d, reason, taskId: req.id, taskName: req.task });
        parks.push(rejectedTask(d, req, reason, "unsettled", false));
      }
      failures.push({
        taskId: req.id,
        status: "FAILURE",
        replyTo: req.replyTo,
        meta: encodeResultMeta({
          taskId: req.id,
          status: "FAILURE",
          result: exceptionInfo(err),
          traceback: tracebackText(err),
          dateDone: new Date(),
          groupId: req.group,
          parentId: req.parentId,
        }),
      });
    }
  }
  if (io.backend && failures.length) await io.backend.store(failures);
  const written = rejects.length ? await io.broker.reject(rejects) : rejects;
  if (io.lifecycle) announceParks(io.lifecycle, parks, written);
  if (acks.length) await io.broker.ack(acks);
}
