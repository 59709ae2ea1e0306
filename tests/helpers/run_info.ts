/** The task context a run request carries, for tests that build requests by hand. */

import type { RunRequest } from "../../src/worker/executor.ts";

/**
 * A run request's `info`: a first try from the default queue, no workflow,
 * with `overrides` applied.
 *
 * @param overrides fields to change
 * @returns the info
 */
export function runInfo(overrides: Partial<RunRequest["info"]> = {}): RunRequest["info"] {
  return {
    retries: 0,
    rootId: null,
    parentId: null,
    group: null,
    eta: null,
    expires: null,
    queue: "celery",
    redelivered: false,
    hostname: "test@local",
    ...overrides,
  };
}
