/**
 * Where a task message is published, from the queue it is routed to and
 * the exchange and routing key its options name, as Celery 5.2's
 * `send_task_message` decides it for a queue on a direct exchange.
 *
 * @module
 */

/**
 * The exchange and routing key a task message goes out with: the named
 * exchange with the routing key when the options name both (its bindings
 * pick the queues), else the default exchange with the queue's name as the
 * routing key — a routing key alone or an exchange alone is not used, as
 * Celery uses neither. So `{ queue: "a", routingKey: "k" }` lands in `a`
 * (not in a queue `k`) and `{ routingKey: "k" }` in the default queue, on
 * Redis as on RabbitMQ, where a Celery client's message of the same call
 * lands.
 *
 * @example
 * ```ts
 * import { taskTarget } from "./task_target.ts";
 * taskTarget("celery", "billing", "invoices"); // { exchange: "billing", routingKey: "invoices" }
 * taskTarget("reports", undefined, "invoices"); // { exchange: "", routingKey: "reports" }
 * taskTarget("reports", "billing"); // { exchange: "", routingKey: "reports" }
 * ```
 *
 * @param queue the queue the call is routed to (its `queue`, else the default queue)
 * @param exchange the exchange the call's options name, if any
 * @param routingKey the routing key the call's options name, if any
 * @returns the exchange and routing key to publish with
 */
export function taskTarget(
  queue: string,
  exchange?: string | null,
  routingKey?: string | null,
): { exchange: string; routingKey: string } {
  return exchange && routingKey ? { exchange, routingKey } : { exchange: "", routingKey: queue };
}
