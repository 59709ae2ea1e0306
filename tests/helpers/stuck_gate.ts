/**
 * The gate `fc.block` (tests/apps/first_contact_app.ts) spins on: a task
 * stuck in synchronous code however long its limit's timer takes on a
 * loaded host, until its test opens the gate.
 */

import { exists, until } from "./waits.ts";

/** A gate file, in a temporary directory of its own. */
export interface StuckGate {
  /** The path to give `fc.block`. */
  readonly path: string;
  /** Open the gate and wait (10 s at most) until the stuck task saw it and ended. */
  open(): Promise<void>;
  /** Open the gate, so that a task still stuck ends, and remove the directory. */
  remove(): Promise<void>;
}

/**
 * A closed gate.
 *
 * @example
 * ```ts
 * const gate = await stuckGate();
 * pool.run([poolRunRequest("fc.block", [gate.path], { timeLimits: { hard: 0.2, soft: null } })]);
 * await gate.open();
 * await gate.remove();
 * ```
 * @returns the gate
 */
export async function stuckGate(): Promise<StuckGate> {
  const dir = await Deno.makeTempDir({ prefix: "stuck-gate-" });
  const path = `${dir}/gate`;
  const open = async () => {
    await Deno.writeTextFile(path, "");
    await until("the stuck task saw its gate open", () => exists(`${path}.done`), 10_000, 10);
  };
  return {
    path,
    open,
    async remove() {
      // A task that never started writes no `.done`: nothing to wait for then.
      await open().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}
