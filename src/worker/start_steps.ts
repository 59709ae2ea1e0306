/**
 * Steps of the worker's start (see `Worker.start`) that need only the
 * worker's state: declaring the queues it consumes, through a server that
 * restarts meanwhile; reading the ids revoked before it started, which
 * then reach the tasks already taken as a revoke broadcast does; and
 * subscribing to remote control.
 *
 * @module
 */

import type { Broker } from "../broker/port.ts";
import { retryWhileDown } from "../broker/outage.ts";
import { unlessAborted } from "../broker/sleep.ts";
import type { Intake } from "./intake.ts";
import { type RemoteControl, warnIfNameTaken } from "./remote_control.ts";
import { toTerminate } from "./revoke.ts";
import { type StartLaterOptions, startOrLater } from "./start_later.ts";
import type { WorkerState } from "./worker_state.ts";

/**
 * Declare each queue, waiting for a server that drops meanwhile (restarting
 * while workers start) as later steps wait for it, instead of failing the
 * start with a `BrokerConnectionError`.
 *
 * @example
 * ```ts ignore
 * await declareQueues(s, broker, ["celery"], startUp.signal);
 * ```
 *
 * @param s the worker's state (its `outageRetryLimit`)
 * @param broker the worker's broker
 * @param queues the queues consumed
 * @param signal the start's signal: ends the wait
 */
export async function declareQueues(
  s: WorkerState,
  broker: Broker,
  queues: readonly string[],
  signal: AbortSignal,
): Promise<void> {
  for (const q of queues) {
    const declare = retryWhileDown(() => broker.declareQueue(q), {
      limit: s.outageRetryLimit,
      what: `declare queue ${q}`,
      signal,
    });
    await unlessAborted(declare, signal);
  }
}

/**
 * Read the revoked ids stored in the broker, waited for as
 * {@link startOrLater} says. Read after the start, the ids also reach the
 * tasks already taken, as a revoke broadcast does: held ones are dropped,
 * those handed to the pool are not started. The stored entries do not say
 * terminate, so running ones go on (Celery's too).
 *
 * @example
 * ```ts ignore
 * await readRevokedLater(s, broker, intake, { hostname, limit: 300, signal, stop });
 * ```
 *
 * @param s the worker's state (revoked set, running tasks, pool)
 * @param broker the worker's broker
 * @param intake the worker's intake (tasks held for an ETA or a rate token)
 * @param later the worker's name, limit and signals
 */
export async function readRevokedLater(
  s: WorkerState,
  broker: Broker,
  intake: Intake,
  later: StartLaterOptions,
): Promise<void> {
  await startOrLater({
    what: "read revoked ids",
    run: () => broker.listRevoked(),
    done: (revoked) => {
      for (const e of revoked) s.revoked.add([e.id], e.expiresAt.getTime());
      const ids = revoked.map((e) => e.id);
      intake.revoke(ids);
      const { seqs } = toTerminate(s.running, s.terminated, ids);
      if (seqs.length) s.pool.revoke(seqs);
      return `read ${revoked.length} revoked id(s); they are honoured from now`;
    },
    meanwhile: "tasks revoked before the start are honoured once they are read",
  }, later);
}

/**
 * Subscribe to remote control, waited for as {@link startOrLater} says;
 * once subscribed (unless the worker stopped), check for another node of
 * the same name ({@link warnIfNameTaken}). The subscription ends when
 * `later.stop` aborts (the shutdown), which undoes it.
 *
 * @example
 * ```ts ignore
 * await subscribeControlLater(pidbox, { hostname, signal, stop }, (check) => nameCheck = check);
 * ```
 *
 * @param pidbox the worker's remote control
 * @param later the worker's name, limit and signals; `stop` is required
 * @param nameChecked receives the name check's promise, for the shutdown to wait for
 */
export async function subscribeControlLater(
  pidbox: RemoteControl,
  later: StartLaterOptions & { stop: AbortSignal },
  nameChecked: (check: Promise<void>) => void,
): Promise<void> {
  const stop = later.stop;
  await startOrLater({
    what: "subscribe to remote control",
    run: () => pidbox.start(stop),
    done: () => {
      if (!stop.aborted) nameChecked(warnIfNameTaken(pidbox, later.hostname, stop));
      return "subscribed to remote control";
    },
    meanwhile: "remote control (inspect, revoke and shutdown broadcasts) reaches this " +
      "worker once it is subscribed",
  }, later);
}
