/**
 * A wait that an AbortSignal ends early.
 *
 * @module
 */

/**
 * Wait `ms`, or less if `signal` aborts first (at once when it already has).
 * Resolves either way; it never rejects.
 *
 * @example
 * ```ts
 * import { sleep } from "./sleep.ts";
 * const closing = new AbortController();
 * closing.abort();
 * await sleep(60_000, closing.signal); // resolves at once
 * ```
 *
 * @param ms how long
 * @param signal ends the wait early
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * Resolves when `p` settles or `signal` aborts, whichever comes first; it
 * never rejects (what `p` settles with is left to its own handlers).
 *
 * @example
 * ```ts
 * import { untilAborted } from "./sleep.ts";
 * const stop = new AbortController();
 * stop.abort();
 * await untilAborted(new Promise(() => {}), stop.signal); // resolves at once
 * ```
 *
 * @param p the promise waited for
 * @param signal ends the wait early
 */
export function untilAborted(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    p.then(done, done);
  });
}

/**
 * Settle as `p` does, unless `signal` aborts first (or already has): then
 * `undo` runs (closing what `p` was opening, which should also end `p`),
 * and once it finished the promise rejects with the signal's reason. What
 * `p` settles with after that is ignored.
 *
 * @example
 * ```ts
 * import { unlessAborted } from "./sleep.ts";
 * const stop = new AbortController();
 * stop.abort(new Error("stopped"));
 * const never = new Promise<void>(() => {});
 * await unlessAborted(never, stop.signal, async () => {}).catch((e) => e.message); // "stopped"
 * ```
 *
 * @param p the operation waited for
 * @param signal ends the wait early; none: wait for `p`
 * @param undo run once the signal aborted first; its errors are ignored
 * @returns what `p` resolves with
 * @throws the signal's reason when it aborted first, else what `p` rejects with
 */
export async function unlessAborted<T>(
  p: Promise<T>,
  signal: AbortSignal | undefined,
  undo: () => Promise<unknown> = () => Promise.resolve(),
): Promise<T> {
  if (!signal) return await p;
  type Outcome = { ok: true; value: T } | { ok: false; error: unknown };
  const settled = p.then(
    (value): Outcome => ({ ok: true, value }),
    (error: unknown): Outcome => ({ ok: false, error }),
  );
  const aborted = Promise.withResolvers<null>();
  const onAbort = () => aborted.resolve(null);
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) onAbort();
  let first: Outcome | null;
  try {
    first = await Promise.race([settled, aborted.promise]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (first === null) {
    await undo().catch(() => {});
    throw signal.reason;
  }
  if (!first.ok) throw first.error;
  return first.value;
}

/**
 * Milliseconds a close waits for each of the server's last answers (QUIT,
 * a last clean-up command, a restore sweep under way) before it goes on: a
 * server that stopped answering over a connection that stays up must not
 * keep a worker's shutdown waiting.
 *
 * @example
 * ```ts
 * CLOSE_WAIT_MS; // 2000
 * ```
 */
export const CLOSE_WAIT_MS = 2000;

/**
 * Wait for `p`, a step of a close, at most {@link CLOSE_WAIT_MS}; what it
 * settles with is ignored (it never rejects).
 *
 * @example
 * ```ts
 * import { closeWait } from "./sleep.ts";
 * await closeWait(Promise.resolve()); // true
 * ```
 *
 * @param p the step
 * @returns whether `p` settled in time
 */
export async function closeWait(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  const step = p.then(() => settled = true, () => settled = true).then(() => {});
  await untilAborted(step, AbortSignal.timeout(CLOSE_WAIT_MS));
  return settled;
}
