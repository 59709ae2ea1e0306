/**
 * A Web Worker for thread_leak_test: starts a Web Worker of its own every
 * 10 ms, each ended 100 ms later, so that one starts while the main thread
 * starts another, as task code starting Web Workers does (and, in
 * `deno test --parallel`, other test modules: they share the process). On
 * "hold" it starts no more and ends none.
 */

const idle = URL.createObjectURL(
  new Blob(["self.onmessage = () => {};"], { type: "text/javascript" }),
);
let held = false;
const timer = setInterval(() => {
  const w = new Worker(idle, { type: "module" });
  setTimeout(() => held || w.terminate(), 100);
}, 10);
self.onmessage = () => {
  held = true;
  clearInterval(timer);
  self.postMessage("held");
};
self.postMessage("churning");
