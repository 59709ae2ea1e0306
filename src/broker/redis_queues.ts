/**
 * The waiting messages of a queue on Redis, over its priority lists
 * (`<queue>` and `<queue>\x06\x16<n>`): counting and deleting them.
 *
 * @module
 */

import { checkQueueName } from "./errors.ts";
import type { RedisScope } from "./redis_commands.ts";
import { PRIORITY_STEPS, priorityList } from "./redis_keys.ts";

/**
 * Delete every waiting message of a queue (all priority lists), in one transaction.
 *
 * @example
 * ```ts ignore
 * import { purgeQueue } from "./redis_queues.ts";
 * console.log(await purgeQueue(scope, "celery"), "deleted");
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param queue the queue
 * @returns how many messages were deleted
 * @throws {TypeError} for an empty queue name
 */
export async function purgeQueue(scope: RedisScope, queue: string): Promise<number> {
  checkQueueName(queue, "purge()");
  const lists = PRIORITY_STEPS.map((s) => scope.k(priorityList(queue, s)));
  const tx = scope.client.multi();
  for (const l of lists) tx.llen(l);
  tx.del(...lists);
  const res = await scope.run(() => tx.exec(), { keys: lists });
  return (res ?? []).slice(0, lists.length).reduce((n, [, v]) => n + Number(v), 0);
}

/**
 * Count the waiting messages of a queue (all priority lists).
 *
 * @example
 * ```ts ignore
 * import { queueDepth } from "./redis_queues.ts";
 * console.log(await queueDepth(scope, "celery"), "waiting");
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param queue the queue
 * @returns how many messages wait
 * @throws {TypeError} for an empty queue name
 */
export async function queueDepth(scope: RedisScope, queue: string): Promise<number> {
  checkQueueName(queue, "queueDepth()");
  const lists = PRIORITY_STEPS.map((s) => scope.k(priorityList(queue, s)));
  const counts = await scope.run(
    () => Promise.all(lists.map((l) => scope.client.llen(l))),
    { keys: lists },
  );
  return counts.reduce((a, b) => a + b, 0);
}
