/**
 * Steps of the worker's shutdowns (see `Worker.stop` and
 * `Worker.terminate`): a cold shutdown hands back the tasks still running,
 * and both wait for their requeues and settlements unless a server they
 * need is unreachable — then what is left is left to redelivery, as Celery
 * leaves unacknowledged messages.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { cannotWrite, OutageWatch } from "../broker/outage.ts";
import { softShutdown } from "./scale_limits.ts";
import type { Running, WorkerState } from "./worker_state.ts";

const log = getLogger(["celeriac", "worker"]);

/** Milliseconds a cold shutdown waits for a batch on its way in to go back (see Intake.close). */
const LOOP_GRACE_MS = 2000;

/**
 * Run a shutdown step and wait for it, but not out an outage of a server
 * it needs: what it has not done is left to fail when the app closes its
 * connections, and the messages stay unacknowledged, delivered again by
 * the broker (as Celery leaves them).
 *
 * @example
 * ```ts ignore
 * await unlessOutage(s, () => intake.requeueAll(), "requeue prefetched messages");
 * ```
 *
 * @param s the worker's state (its node name, for the warning)
 * @param step the step
 * @param what what the step does, for the warning
 */
export async function unlessOutage(
  s: WorkerState,
  step: () => Promise<void>,
  what: string,
): Promise<void> {
  const watch = new OutageWatch();
  if (await watch.unless(watch.run(step))) leftBehind(s, what, watch.error);
}

/**
 * Wait for the settlements under way, but not out an outage of a server
 * they need.
 *
 * @example
 * ```ts ignore
 * await settleUnlessOutage(s);
 * ```
 *
 * @param s the worker's state
 */
export async function settleUnlessOutage(s: WorkerState): Promise<void> {
  if (!await s.outages.unless(s.drainSettling())) return;
  // Read before anything else runs: the operation that made unless() leave still waits.
  const err = s.outages.error;
  s.leaveSettlingBehind();
  leftBehind(s, "store results and acknowledge messages", err);
}

/** Say what a shutdown does not wait for, and why: `err`, what its step waits out. */
function leftBehind(s: WorkerState, what: string, err: Error | null): void {
  // A KV file on a full disk is reached but cannot be written: say that, not "unreachable".
  const down = cannotWrite(err) ? `cannot write (${err.message})` : "a server is unreachable";
  log.warn(
    "{hostname}: {down}: not waiting to {what}; messages not acknowledged yet are delivered again",
    { hostname: s.hostname, down, what },
  );
}

/**
 * A cold shutdown's hand-back of the running tasks: after the soft
 * shutdown's time (`softShutdownTimeout`) for them to finish, those still
 * running are returned (the `returned` event, why `shutdown`) and aborted
 * in the pool; the caller requeues them once a batch the take loop has on
 * its way in went back first (waited for at most {@link LOOP_GRACE_MS}):
 * what was received before it is put in front.
 *
 * @example
 * ```ts ignore
 * const running = await returnRunning(s, consumer.done);
 * await intake.requeueAll(running);
 * ```
 *
 * @param s the worker's state
 * @param takeLoop settles when the take loop has ended
 * @returns the tasks that were still running
 */
export async function returnRunning(s: WorkerState, takeLoop: Promise<void>): Promise<Running[]> {
  const soft = (s.options.softShutdownTimeout ?? 0) * 1000;
  if (soft > 0 && s.running.size > 0) {
    log.warn("{hostname}: soft shutdown, {n} running task(s) get {s} s to finish", {
      hostname: s.hostname,
      n: s.running.size,
      s: soft / 1000,
    });
    await softShutdown(() => s.running.size, () => s.sleep(), soft);
  }
  const seqs = [...s.running.keys()];
  const running = [...s.running.values()];
  s.running.clear();
  for (const [i, r] of running.entries()) {
    s.lifecycle.announce({ type: "returned", req: r.req, why: "shutdown", seq: seqs[i] });
  }
  s.pool?.abort(seqs);
  s.wake();
  log.warn("{hostname}: cold shutdown, requeueing {n} running task(s)", {
    hostname: s.hostname,
    n: running.length,
  });
  let grace: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([takeLoop, new Promise((r) => grace = setTimeout(r, LOOP_GRACE_MS))]);
  clearTimeout(grace);
  return running;
}
