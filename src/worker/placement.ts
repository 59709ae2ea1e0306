/**
 * Which Web Worker of a sandbox group the threads pool hands a task to.
 *
 * @module
 */

import type { Group, Member } from "./pool_member.ts";

/**
 * Choose the Web Worker of `group` that takes the next task, or undefined
 * when none takes tasks (all dead or retiring).
 *
 * With `lead` 1 (a task that blocks its thread for long, or of unknown
 * cost) it goes where the least blocking work waits (`work`, then fewest
 * tasks), so CPU-bound tasks after a run of short ones are not queued
 * behind them on one Web Worker. With a larger `lead` (short tasks, see
 * `spreadLead`) it goes to the fewest tasks, or stays with `last` — the
 * Web Worker of the previous task — while that holds fewer than `lead` more
 * tasks than the least loaded and is within its `slots`.
 *
 * @example
 * ```ts ignore
 * const m = placeTask(group, last, spreadLead(blocking.ms(req.task), slots), slots);
 * ```
 *
 * @param group the sandbox group of the task
 * @param last the Web Worker the previous task of this batch went to
 * @param lead how many more tasks than the least loaded a Web Worker may hold and still be chosen
 * @param slots tasks one Web Worker may hold
 * @returns the chosen Web Worker, undefined when none takes tasks
 */
export function placeTask(
  group: Group,
  last: Member | undefined,
  lead: number,
  slots: number,
): Member | undefined {
  let best: Member | undefined;
  for (const m of group.members) {
    if (m.dead || m.retiring) continue;
    if (
      !best ||
      (lead === 1
        ? m.work < best.work || (m.work === best.work && m.load < best.load)
        : m.load < best.load)
    ) best = m;
  }
  if (
    lead > 1 && best && last && last !== best && last.group === group && !last.dead &&
    !last.retiring && last.load < best.load + lead && last.load < slots
  ) return last;
  return best;
}
