/**
 * worker_app's app, for a Web Worker whose start the test holds: on import
 * this module says "loading" on the BroadcastChannel `GATE` (gate.ts) and
 * finishes loading only once the test answers "go". The pool's start()
 * waits for it, so the test knows start-up is inside the Web Workers' start.
 */

import { GATE } from "./gate.ts";

const channel = new BroadcastChannel(GATE);
const go = Promise.withResolvers<void>();
channel.onmessage = (e: MessageEvent) => {
  if (e.data === "go") go.resolve();
};
channel.postMessage("loading");
await go.promise;
channel.close();

export { app } from "./worker_app.ts";
