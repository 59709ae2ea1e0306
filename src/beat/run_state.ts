/**
 * How a run state is written in the schedule store (JSON), and read back.
 *
 * @module
 */

import type { RunState } from "./schedules.ts";

/**
 * Serialise a run state: `{"lastRunAt":"<ISO>","totalRunCount":n}`, and
 * `"schedule":"<owner>"` when `owner` is given: which app's schedule ran the
 * entry (see {@link decodeRunOwner}).
 *
 * @example
 * ```ts
 * import { encodeRunState } from "@celeriac/celeriac/protocol";
 * encodeRunState({ lastRunAt: 0, totalRunCount: 2 });
 * // '{"lastRunAt":"1970-01-01T00:00:00.000Z","totalRunCount":2}'
 * ```
 *
 * @param state the state
 * @param owner the schedule that ran it (default none)
 * @returns its stored form
 */
export function encodeRunState(state: RunState, owner?: string): string {
  return JSON.stringify({
    lastRunAt: new Date(state.lastRunAt).toISOString(),
    totalRunCount: state.totalRunCount,
    ...(owner === undefined ? {} : { schedule: owner }),
  });
}

/**
 * The schedule a stored run state was written for, or `null` when it names
 * none (written by an older version, or unreadable).
 *
 * @example
 * ```ts
 * import { decodeRunOwner, encodeRunState } from "@celeriac/celeriac/protocol";
 * decodeRunOwner(encodeRunState({ lastRunAt: 0, totalRunCount: 0 }, "s1a2b3c4d")); // "s1a2b3c4d"
 * ```
 *
 * @param text the stored form
 * @returns the owner, or `null`
 */
export function decodeRunOwner(text: string | undefined): string | null {
  try {
    const owner = JSON.parse(text ?? "null")?.schedule;
    return typeof owner === "string" ? owner : null;
  } catch {
    return null;
  }
}

/**
 * Read a stored run state; `null` when it is missing or unreadable (the
 * entry then starts afresh, as a new entry does).
 *
 * @example
 * ```ts
 * import { decodeRunState } from "@celeriac/celeriac/protocol";
 * decodeRunState('{"lastRunAt":"1970-01-01T00:00:01.000Z","totalRunCount":1}');
 * // { lastRunAt: 1000, totalRunCount: 1 }
 * ```
 *
 * @param text the stored form
 * @returns the state, or `null`
 */
export function decodeRunState(text: string | undefined): RunState | null {
  if (text === undefined) return null;
  try {
    const v = JSON.parse(text);
    const lastRunAt = Date.parse(v?.lastRunAt);
    const totalRunCount = Number(v?.totalRunCount);
    if (!Number.isFinite(lastRunAt) || !Number.isInteger(totalRunCount)) return null;
    return { lastRunAt, totalRunCount };
  } catch {
    return null;
  }
}
