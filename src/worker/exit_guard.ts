/**
 * Inside a pool Web Worker: task code that ends the thread — `Deno.exit()`
 * (which `node:process`'s `exit` calls too) or `close()` — tells the main
 * thread first. Deno fires no event on the `Worker` object when its thread
 * ends that way (no `error`, no `close`), so without word from it the pool
 * would keep posting tasks to a thread that is gone. Installed before the
 * app module loads, so task code only ever sees the guarded functions.
 *
 * @module
 */

/// <reference lib="deno.worker" />

/**
 * Replace `Deno.exit` and `close` in this Web Worker's scope: each calls
 * `dying` (once, whatever it throws) with what was called, then ends the
 * thread as before.
 *
 * @example
 * ```ts
 * guardExit((how) => self.postMessage({ type: "dying", how }));
 * ```
 *
 * @param dying told what task code called, before the thread ends
 */
export function guardExit(dying: (how: string) => void): void {
  const exit = Deno.exit;
  const close = globalThis.close;
  let told = false;
  const tell = (how: string) => {
    if (told) return;
    told = true;
    try {
      dying(how);
    } catch {
      // The thread ends all the same; the main thread then learns nothing more than before.
    }
  };
  (Deno as { exit: (code?: number) => never }).exit = (code?: number): never => {
    tell(`Deno.exit(${code ?? ""})`);
    return exit(code);
  };
  globalThis.close = () => {
    tell("close()");
    close();
  };
}
