/** Tasks for revoke_waiting_test.ts: one that holds its thread until released, one that returns at once. */

import { Celery } from "../../mod.ts";

export const app = new Celery();

/**
 * Note the start in `dir/started`, then hold the thread (synchronous code: a
 * Web Worker takes no message meanwhile) until `dir/release` exists, 60 s at most.
 */
export const hold = app.task("rw.hold", (dir: string) => {
  Deno.writeTextFileSync(`${dir}/started`, "");
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    try {
      Deno.statSync(`${dir}/release`);
      return "released";
    } catch {
      // not released yet
    }
  }
  return "never released";
});

/** Returns at once. */
export const quick = app.task("rw.quick", () => "ran");
