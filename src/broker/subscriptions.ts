/**
 * Receiving broadcasts (`Broker.subscribe`): the {@link SubscribeOptions}
 * and the live {@link Subscription} a caller can flush.
 *
 * @module
 */

/**
 * Options of {@link Broker.subscribe}.
 *
 * @example Listening to remote-control broadcasts for ten seconds
 * ```ts
 * import type { Broker, SubscribeOptions } from "@celeriac/celeriac/protocol";
 * async function listen(broker: Broker): Promise<void> {
 *   const options: SubscribeOptions = {
 *     signal: AbortSignal.timeout(10_000),
 *     queue: "celeriac@host.celery.pidbox",
 *   };
 *   await broker.subscribe("celery.pidbox", (m) => console.log(m.headers), options);
 * }
 * ```
 */
export interface SubscribeOptions {
  /**
   * Stops the subscription. Aborted while it is being set up, the set-up
   * that completes later subscribes and consumes nothing (and undoes the
   * bindings it made).
   */
  signal: AbortSignal;
  /** The subscriber's own queue, where the transport needs one. */
  queue?: string;
  /**
   * Routing-key pattern to receive, for a topic exchange (`#`: every key).
   * Default: what a fanout delivers (the empty key). On Celery's direct
   * reply exchange `reply.celery.pidbox`, the key replies are sent with
   * (the client's oid): they arrive in `queue`, bound with it as kombu's
   * Mailbox binds `<oid>.reply.celery.pidbox`; the queue is removed when
   * `signal` aborts.
   */
  bindingKey?: string;
}

/**
 * A live subscription ({@link Broker.subscribe}), for a caller that must
 * not miss what reached the transport before a deadline (remote-control
 * replies after a stalled event loop).
 *
 * @example Collecting until a deadline, then what had arrived by then
 * ```ts
 * import type { Broker, Message } from "@celeriac/celeriac/protocol";
 * async function collect(broker: Broker, ms: number): Promise<Message[]> {
 *   const got: Message[] = [];
 *   const controller = new AbortController();
 *   const sub = await broker.subscribe("celeryev", (m) => got.push(m), {
 *     signal: controller.signal,
 *     bindingKey: "#",
 *   });
 *   await new Promise((resolve) => setTimeout(resolve, ms)); // the deadline
 *   if (sub) await sub.flush();
 *   controller.abort();
 *   return got;
 * }
 * ```
 */
export interface Subscription {
  /**
   * Hand `onMessage` what reached the transport and was not handed over
   * yet (KV: one more read of the queue; RabbitMQ: a round trip on the
   * consuming channel, after which the deliveries sent before it were
   * read; Redis replies: a fence LPUSHed to the reply list, popped after
   * what was there before), then resolve. Resolves at once once the subscription ended.
   */
  flush(): Promise<void>;
}
