/**
 * A warning for a call that names a routing key without an exchange: as in
 * Celery, the key is not used and the task goes to its queue (the default
 * one unless it names another), where Celeriac once sent it to a queue named
 * by the key.
 *
 * @module
 */

import { lazyLogger } from "./lazy_logger.ts";

const log = lazyLogger(["celeriac", "routing"]);

/** Routing keys warned about; past this many, no more are (a key per call would grow it). */
const MAX_WARNED = 1000;
const warned = new Set<string>();

/**
 * Warn once per distinct routing key given without an exchange, saying which
 * queue the task goes to and what to pass instead. Call it only when the
 * options name a `routingKey` and no `exchange`.
 *
 * @example
 * ```ts
 * import { warnLoneRoutingKey } from "./lone_routing_key.ts";
 * warnLoneRoutingKey("invoices", "celery"); // logs once: the task goes to queue "celery"
 * ```
 *
 * @param routingKey the call's routing key
 * @param queue the queue the task goes to
 */
export function warnLoneRoutingKey(routingKey: string, queue: string): void {
  if (warned.has(routingKey) || warned.size >= MAX_WARNED) return;
  warned.add(routingKey);
  log.warn(
    'routingKey "{routingKey}" without an exchange is not used (as in Celery): the task goes to ' +
      'queue "{queue}". To send it to queue "{routingKey}", pass queue: "{routingKey}"; to route by ' +
      "the key, name the exchange too (exchange and routingKey).",
    { routingKey, queue },
  );
}
