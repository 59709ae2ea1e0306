/**
 * Start-up steps a worker waits for a few seconds only: reading the ids
 * revoked before it started, subscribing to remote control. On a Redis
 * Cluster whose `{celeriac}` master is down (no replica), or a server that
 * does not answer, the worker starts anyway, so the queues whose servers
 * answer are consumed, and the step goes on in the background until it
 * succeeds (said in the log) or the worker stops.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { BrokerConnectionError } from "../broker/errors.ts";
import { retryWhileDown } from "../broker/outage.ts";
import { sleep, unlessAborted } from "../broker/sleep.ts";

const log = getLogger(["celeriac", "worker"]);

/** How long a worker's start waits for such a step before it goes on in the background, ms. */
export const START_STEP_WAIT_MS = 5_000;
/** How long the background waits after a failed try, ms. */
const RETRY_AFTER_MS = 2_000;

/**
 * A step of {@link startOrLater}.
 *
 * @example
 * ```ts
 * import type { LaterStep } from "./start_later.ts";
 * const step: LaterStep<number> = {
 *   what: "read revoked ids",
 *   run: () => Promise.resolve(0),
 *   done: (n) => `read ${n} revoked id(s)`,
 *   meanwhile: "tasks revoked before the start are honoured once they are read",
 * };
 * ```
 */
export interface LaterStep<T> {
  /** What it does, for the log ("read revoked ids"). */
  what: string;
  /** Does it once (each try). */
  run: () => Promise<T>;
  /** Uses what it returned; what to log once it succeeded in the background. */
  done: (value: T) => string;
  /** What is missing while it goes on in the background, for the log. */
  meanwhile: string;
}

/**
 * Options of {@link startOrLater}.
 *
 * @example
 * ```ts
 * import type { StartLaterOptions } from "./start_later.ts";
 * const options: StartLaterOptions = { hostname: "w1@host", limit: 300 };
 * ```
 */
export interface StartLaterOptions {
  /** The worker's name, for the log. */
  hostname: string;
  /** Seconds each try rides out an outage (see `retryWhileDown`); default 300. */
  limit?: number;
  /** Ends the start's wait (the start's signal). */
  signal?: AbortSignal;
  /** Ends the step in the background (the worker's shutdown). */
  stop?: AbortSignal;
  /** How long the start waits, ms; default {@link START_STEP_WAIT_MS}. */
  waitMs?: number;
}

/**
 * Run a start-up step: resolves once it succeeded, or after `waitMs` with
 * the step going on in the background (a failure there is logged and the
 * step tried again while the server is unreachable, until it succeeds or
 * `stop` aborts; another error is logged and ends it).
 *
 * @example
 * ```ts ignore
 * await startOrLater(step, { hostname: "w1@host", signal: startUp, stop: shutdown });
 * ```
 *
 * @param step what to do and say
 * @param options name, limits and signals
 * @throws what the step throws when it fails within the wait (a wrong password: the start fails)
 */
export async function startOrLater<T>(
  step: LaterStep<T>,
  options: StartLaterOptions,
): Promise<void> {
  const { hostname, limit, signal } = options;
  const once = (abort?: AbortSignal) =>
    unlessAborted(retryWhileDown(step.run, { limit, what: step.what, signal: abort }), abort);
  const first = once(options.stop ?? signal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const waited = new Promise<typeof NOT_YET>((res) => {
    timer = setTimeout(() => res(NOT_YET), options.waitMs ?? START_STEP_WAIT_MS);
  });
  let value: T | typeof NOT_YET;
  try {
    value = await unlessAborted(Promise.race([first, waited]), signal);
  } finally {
    clearTimeout(timer);
  }
  if (value !== NOT_YET) {
    step.done(value);
    return;
  }
  log.warn(
    "{hostname}: {what}: no answer yet (the server does not answer); starting anyway, " +
      "going on in the background: {meanwhile}",
    { hostname, what: step.what, meanwhile: step.meanwhile },
  );
  later(step, first, once, options);
}

const NOT_YET = Symbol("not yet");

/** The step after the start: says when it succeeded, tries again after a failure. */
function later<T>(
  step: LaterStep<T>,
  first: Promise<T>,
  once: (abort?: AbortSignal) => Promise<T>,
  options: StartLaterOptions,
): void {
  const { hostname, stop } = options;
  const done = (value: T) => {
    if (stop?.aborted) return;
    log.info("{hostname}: {done}", { hostname, done: step.done(value) });
  };
  const again = async (err: unknown): Promise<void> => {
    while (!stop?.aborted) {
      if (!(err instanceof BrokerConnectionError && err.transient)) {
        log.error("{hostname}: {what} failed ({error}); not tried again", {
          hostname,
          what: step.what,
          error: (err as Error).message,
        });
        return;
      }
      log.warn("{hostname}: {what} failed ({error}); trying again", {
        hostname,
        what: step.what,
        error: (err as Error).message,
      });
      await sleep(RETRY_AFTER_MS, stop);
      if (stop?.aborted) return;
      try {
        return done(await once(stop));
      } catch (e) {
        err = e;
      }
    }
  };
  first.then(done, again);
}
