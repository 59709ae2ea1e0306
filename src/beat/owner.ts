/**
 * Which app's schedule a run state belongs to. Two apps with different
 * schedules may share a store namespace by mistake (the default
 * `beatNamespace` on one Redis database): then one beat leads for both, and
 * the other's entries never run. Each run state names its schedule's owner,
 * so that the leader forgets only the run states of its own schedule's
 * entries, and a standby of the other app can tell that it waits on a
 * stranger.
 *
 * The owner of a schedule is the owner most of its config entries' run
 * states already name (replicas of one app, or a new version of it that
 * dropped or added entries, share it); for a schedule none of whose entries
 * ran yet, a fingerprint of its entry names.
 *
 * @module
 */

import { decodeRunOwner } from "./run_state.ts";

/**
 * The owner of the schedule whose config entries are `names`.
 *
 * @example
 * ```ts
 * import { scheduleOwner } from "./owner.ts";
 * scheduleOwner(["tick"], new Map()); // the fingerprint of ["tick"], e.g. "s3f1c2a9b"
 * ```
 *
 * @param names the entry names of the app's `beatSchedule`
 * @param runs the stored run states, by entry name
 * @returns the owner
 */
export function scheduleOwner(names: readonly string[], runs: Map<string, string>): string {
  const votes = new Map<string, number>();
  for (const name of names) {
    const owner = decodeRunOwner(runs.get(name));
    if (owner !== null) votes.set(owner, (votes.get(owner) ?? 0) + 1);
  }
  let best: string | null = null;
  for (const [owner, n] of votes) if (best === null || n > votes.get(best)!) best = owner;
  return best ?? fingerprint(names);
}

/**
 * Whether a standby of the schedule `names` waits on a leader that runs a
 * different schedule: none of its config entries has a run state, and some
 * run state names another owner.
 *
 * @example
 * ```ts
 * import { foreignSchedule } from "./owner.ts";
 * foreignSchedule(["b"], new Map([["a", '{"schedule":"s0"}']])); // true
 * ```
 *
 * @param names the entry names of the app's `beatSchedule`
 * @param runs the stored run states, by entry name
 * @returns whether the runs are another schedule's only
 */
export function foreignSchedule(names: readonly string[], runs: Map<string, string>): boolean {
  if (names.length === 0 || names.some((n) => runs.has(n))) return false;
  const mine = fingerprint(names);
  return [...runs.values()].some((raw) => {
    const owner = decodeRunOwner(raw);
    return owner !== null && owner !== mine;
  });
}

/** FNV-1a of the sorted names: the same on every replica of one app. */
function fingerprint(names: readonly string[]): string {
  let h = 0x811c9dc5;
  for (const c of [...names].sort().join("\n")) {
    h = Math.imul(h ^ c.codePointAt(0)!, 0x01000193) >>> 0;
  }
  return `s${h.toString(16).padStart(8, "0")}`;
}
