/**
 * Brokers with one method replaced, for tests that need a slow or stalled
 * client around a real broker.
 *
 * @module
 */
import type { Broker } from "../../protocol.ts";

/** `broker` with its method `name` replaced by `fn`. */
export function wrapBroker<K extends keyof Broker>(broker: Broker, name: K, fn: Broker[K]): Broker {
  return new Proxy(broker, {
    get(target, prop) {
      if (prop === name) return fn;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * `broker` that, once a broadcast is sent, blocks the event loop for `ms`
 * in the next turn (the call's timer is set by then; a host too loaded to
 * run this process): no timer and no I/O runs meanwhile, and the expired
 * timeout then fires before a reply in the socket is read.
 */
export function stallAfterBroadcast(broker: Broker, ms: number): Broker {
  const stall = () => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      // busy
    }
  };
  return wrapBroker(broker, "broadcast", async (...args: Parameters<Broker["broadcast"]>) => {
    await broker.broadcast(...args);
    void new Promise((r) => setTimeout(r, 0)).then(stall);
  });
}
