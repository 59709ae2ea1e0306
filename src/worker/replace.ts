/**
 * `ctx.replace(sig)` inside a running task (Celery's `Task.replace`):
 * build the replacement (canvas_replace.ts), send it through the task's
 * app, then stop the handler with a `Replaced` signal.
 *
 * @module
 */

import { canvasDict, type Group, type Signature } from "../client/canvas/signature.ts";
import { Replaced } from "../client/replaced.ts";
import { type ReplacedTask, replacementSignature } from "../protocol/canvas_replace.ts";

/**
 * A task's `replace`, and the replacement it started, if any.
 *
 * @example
 * ```ts ignore
 * const replacer: Replacer = taskReplacer({ id, group, groupIndex, embed });
 * const replaced = await replacer.sent(); // its Replaced signal once sent, else null
 * ```
 */
export interface Replacer {
  /** `ctx.replace`: sends the replacement, then rejects with `Replaced` (or the send's error). */
  replace(sig: Signature<unknown> | Group<unknown[]>): Promise<never>;
  /** The replacement under way, once `replace` was called (the handler may not have awaited it). */
  pending(): Promise<never> | null;
  /**
   * Once any replacement under way settled: its `Replaced` signal if it was
   * sent (the task is replaced, whatever the handler did next), else null.
   */
  sent(): Promise<Replaced | null>;
}

/**
 * The `replace` of one run of a task.
 *
 * @example
 * ```ts ignore
 * const replacer = taskReplacer({ id: req.id, group, groupIndex, embed: body.embed });
 * const ctx = { ...context, replace: replacer.replace };
 * ```
 *
 * @param task the running task: its id, group, group index and canvas
 * @returns its replacer
 */
export function taskReplacer(task: ReplacedTask): Replacer {
  let pending: Promise<never> | null = null;
  const send = async (sig: Signature<unknown> | Group<unknown[]>): Promise<never> => {
    const dict = replacementSignature(canvasDict(sig), task);
    await sig.app.applyCanvas(dict, {});
    throw new Replaced(task.id, dict.task);
  };
  return {
    replace(sig) {
      if (pending) return Promise.reject(new TypeError(`Task ${task.id} is already replaced`));
      pending = send(sig);
      // Handled here too: a handler that does not await it must not crash its Web Worker.
      pending.catch(() => {});
      return pending;
    },
    pending: () => pending,
    sent: async () => {
      try {
        await pending;
      } catch (e) {
        if (e instanceof Replaced) return e;
      }
      return null;
    },
  };
}
