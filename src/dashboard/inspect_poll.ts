/**
 * The dashboard's background inspect: `active_queues` and `stats` (the
 * queues and pool size in the Workers table) asked of every worker every
 * 10 s, and asked again soon of the online workers that did not answer.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { InspectCommand, Inspector } from "./feed.ts";
import type { ViewModel } from "./view_model.ts";
import { sleep } from "../broker/sleep.ts";

const log = getLogger(["celeriac", "dashboard"]);

/**
 * Options of {@link pollInspect}.
 *
 * @example
 * ```ts ignore
 * const options: InspectPollOptions = { inspector, model, signal, intervalMs: 10_000 };
 * ```
 */
export interface InspectPollOptions {
  /** Sends the inspect commands. */
  inspector: Inspector;
  /** Where the replies go (`applyActiveQueues`, `applyStats`). */
  model: ViewModel;
  /** Stops polling. */
  signal: AbortSignal;
  /** Between two rounds asking every worker (ms). Default 10,000. */
  intervalMs?: number;
  /**
   * Delay before re-asking the online workers a round missed (ms), all of
   * them in one addressed ask; it doubles after each re-ask that still
   * misses one, and never goes past the next full round. Default 1000.
   */
  retryMs?: number;
  /** Seconds a round asking every worker collects replies. Default 2. */
  timeout?: number;
  /**
   * Seconds a re-ask waits; it ends as soon as every worker asked
   * answered. Default 5.
   */
  retryTimeout?: number;
}

const COMMANDS: readonly InspectCommand[] = ["active_queues", "stats"];

/**
 * Ask `active_queues` and `stats` every `intervalMs`, and re-ask (addressed
 * to them only) the online workers whose reply a round missed, sooner than
 * the next round: a busy worker or a loaded machine answering late does not
 * leave the Workers table empty for another interval. Nothing waits on it;
 * rounds never overlap. Resolves once `signal` aborts.
 *
 * @example
 * ```ts ignore
 * const stop = new AbortController();
 * const polling = pollInspect({ inspector, model, signal: stop.signal });
 * stop.abort();
 * await polling;
 * ```
 *
 * @param options see {@link InspectPollOptions}
 */
export async function pollInspect(options: InspectPollOptions): Promise<void> {
  const { inspector, model, signal } = options;
  const intervalMs = options.intervalMs ?? 10_000;
  const retryMs = options.retryMs ?? 1000;
  const missing = new Map<InspectCommand, string[]>(COMMANDS.map((c) => [c, []]));
  // Stopping does not wait for an inspector that ignores the signal.
  const stopped = new Promise<Record<string, unknown>>((resolve) => {
    if (signal.aborted) resolve({});
    else signal.addEventListener("abort", () => resolve({}), { once: true });
  });
  let next = 0;
  let retry = retryMs;
  while (!signal.aborted) {
    const full = Date.now() >= next;
    if (full) {
      next = Date.now() + intervalMs;
      retry = retryMs;
    }
    await Promise.all(COMMANDS.map(async (command) => {
      const asked = full ? null : missing.get(command)!;
      if (asked?.length === 0) return;
      let replies: Record<string, unknown> = {};
      try {
        replies = await Promise.race([
          inspector(
            command,
            asked
              ? { destination: asked, timeout: options.retryTimeout ?? 5, signal }
              : { timeout: options.timeout ?? 2, signal },
          ),
          stopped,
        ]);
        if (command === "stats") model.applyStats(replies);
        else model.applyActiveQueues(replies);
      } catch (err) {
        log.debug("inspect {command} failed: {error}", {
          command,
          error: err instanceof Error ? err.message : String(err),
        });
      }
      const online = new Set(model.workers.onlineNames());
      missing.set(
        command,
        (asked ?? [...online]).filter((n) => !Object.hasOwn(replies, n) && online.has(n)),
      );
    }));
    const pending = [...missing.values()].some((m) => m.length > 0);
    const wait = Math.max(0, next - Date.now());
    await sleep(pending ? Math.min(retry, wait) : wait, signal);
    if (pending) retry = Math.min(retry * 2, intervalMs);
  }
}
