/**
 * One reader of `celeriac.parked` at a time, across processes. A scan
 * (a listing or a requeue) holds what it reads with `basic.get` until it
 * ends, so two scans at once each miss what the other holds: two
 * requeues can each be handed one copy of a message parked twice and
 * both move it, and a listing can hide the second copy from a requeue
 * that moves the first. So a scan first declares the exclusive queue
 * `celeriac.parked.scan-lock` on its connection, and deletes it when it
 * is done; another connection's declaration of it is refused
 * (`RESOURCE_LOCKED`) meanwhile, and its scan waits for its turn. RabbitMQ
 * deletes an exclusive queue with its connection: a process that dies
 * mid-scan leaves no lock behind once RabbitMQ sees its connection gone
 * (at once for a process that exits, after the heartbeat timeout for a
 * host that vanished).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { HeldChannel } from "./amqp_channel.ts";
import type { AmqpSession } from "./amqp_connection.ts";
import { explainRefusedAccess } from "./amqp_failures.ts";
import { PARKED_QUEUE } from "./amqp_topology.ts";
import { ParkedScanBusyError } from "./errors.ts";
import { sleep } from "./sleep.ts";

const log = getLogger(["celeriac", "broker", "amqp"]);

/**
 * The exclusive queue a scan of `celeriac.parked` holds while it runs.
 *
 * @example
 * ```ts
 * import { SCAN_LOCK_QUEUE } from "./amqp_scan_lock.ts";
 * // rabbitmqctl list_queues name exclusive | grep scan-lock: a scan is running
 * SCAN_LOCK_QUEUE; // "celeriac.parked.scan-lock"
 * ```
 */
export const SCAN_LOCK_QUEUE = `${PARKED_QUEUE}.scan-lock`;

/** RabbitMQ's reply code for an exclusive queue that another connection holds. */
const RESOURCE_LOCKED = 405;

/** The longest pause between two tries (they start at 20 ms and double). */
const MAX_PAUSE_MS = 500;

/**
 * Run `scan` holding the scan lock on `session`'s connection: wait until
 * `deadline` (a `performance.now()` time, set when the listing or requeue
 * was asked for) for another connection's scan to end (trying again at
 * 20 ms, 40 ms, ... at most every 500 ms, and once more at the deadline), then reject with a
 * {@link ParkedScanBusyError}. The lock is deleted when `scan` settles; one
 * whose connection was lost is gone with it. A refused declaration (the
 * user's configure permission does not cover the name) rejects with what
 * to grant.
 *
 * @example
 * ```ts ignore
 * import { withScanLock } from "./amqp_scan_lock.ts";
 * const moved = await withScanLock(session, { deadline: performance.now() + 30_000, waitMs: 30_000 }, () =>
 *   requeueSome(session));
 * ```
 *
 * @param session the connection to hold the lock on
 * @param wait `deadline`: when to stop waiting for another process's scan;
 *   `waitMs`: the wait it was set from (for the error's message)
 * @param scan what to run holding it
 * @returns what `scan` resolves with
 */
export async function withScanLock<T>(
  session: AmqpSession,
  wait: ScanWait,
  scan: () => Promise<T>,
): Promise<T> {
  const lock = await takeScanLock(session, wait);
  try {
    return await scan();
  } finally {
    await lock.channel.deleteQueue(SCAN_LOCK_QUEUE).catch((err: Error) => {
      // Gone with a lost connection; else held until this connection closes.
      if (session.lost.aborted) return;
      log.warn(
        "Could not delete {queue}: other processes' listings and requeues of parked messages wait until this broker closes: {error}",
        { queue: SCAN_LOCK_QUEUE, error: err.message },
      );
    });
    await lock.close();
  }
}

/**
 * How long a listing or requeue waits for its turn: until `deadline` (a
 * `performance.now()` time, set when it was asked for); `waitMs` is the
 * wait that deadline was set from, named in a {@link ParkedScanBusyError}.
 *
 * @example
 * ```ts
 * import type { ScanWait } from "./amqp_scan_lock.ts";
 * const wait: ScanWait = { deadline: performance.now() + 30_000, waitMs: 30_000 };
 * ```
 */
export interface ScanWait {
  /** When to give up, a `performance.now()` time. */
  deadline: number;
  /** The wait the deadline was set from, in ms. */
  waitMs: number;
}

/**
 * Wait for this broker's scan ahead (`ahead` settling) until `wait.deadline`,
 * the same deadline as for another process's lock: a call queued behind a
 * long requeue of this broker gives up when one waiting for another
 * process's would. Resolves when `ahead` settles first; else rejects with a
 * {@link ParkedScanBusyError} (`heldBy` "this broker") at the deadline.
 *
 * @example
 * ```ts
 * import { untilTurn } from "./amqp_scan_lock.ts";
 * await untilTurn(Promise.resolve(), { deadline: performance.now(), waitMs: 0 }); // resolves: nothing ahead
 * ```
 *
 * @param ahead the scans this broker started before, settled once they all are over
 * @param wait when to stop waiting, and the wait it was set from
 */
export function untilTurn(ahead: Promise<unknown>, wait: ScanWait): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new ParkedScanBusyError(SCAN_LOCK_QUEUE, wait.waitMs, undefined, "this broker"));
    }, Math.max(0, wait.deadline - performance.now()));
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    ahead.then(done, done);
  });
}

/** Declare the lock queue on a channel of its own, trying again while another connection holds it. */
async function takeScanLock(session: AmqpSession, wait: ScanWait): Promise<HeldChannel> {
  const { deadline, waitMs } = wait;
  let pause = 20;
  for (let tries = 1;; tries++) {
    const held = await HeldChannel.open(session);
    try {
      await held.channel.assertQueue(SCAN_LOCK_QUEUE, {
        exclusive: true,
        durable: false,
        autoDelete: false,
      });
      return held;
    } catch (err) {
      await held.close();
      if ((err as { code?: unknown }).code !== RESOURCE_LOCKED) throw explainRefusedAccess(err);
      if (performance.now() >= deadline) {
        throw new ParkedScanBusyError(SCAN_LOCK_QUEUE, waitMs, err);
      }
      if (tries === 1) {
        log.info("Another process is reading {queue}; waiting up to {ms} ms for its turn", {
          queue: PARKED_QUEUE,
          ms: waitMs,
        });
      }
    }
    // A lost connection ends the wait: the next try fails on it, and the caller's retry takes over.
    // The last pause ends at the deadline, where one last try is made.
    await sleep(Math.min(pause, Math.max(0, deadline - performance.now())), session.lost);
    pause = Math.min(pause * 2, MAX_PAUSE_MS);
  }
}
