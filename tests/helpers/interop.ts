/**
 * Interop plumbing shared by the tests with real Python Celery: a Celeriac
 * worker on the interop tasks (tests/interop/tasks.ts), and the Python
 * client script (tests/interop/pyclient.py) with its outcomes.
 */

import { pyJsonDumps, pyJsonLoads } from "../../src/protocol/json.ts";
import { celeriacWorker, type Proc, runPython } from "./procs.ts";
import { REDIS_URL } from "./redis.ts";

/** One call's outcome as tests/interop/pyclient.py reports it. */
export interface PyOutcome {
  ok?: unknown;
  error?: { type: string; module: string; args: unknown[] };
  id: string;
}

/** Start a Celeriac worker on tests/interop/tasks.ts (2 Web Workers unless `extra` says `-c`). */
export function interopWorker(
  urls: { broker: string; backend: string },
  queue: string,
  extra: string[] = [],
): Promise<Proc> {
  return celeriacWorker([
    "--app",
    "./tests/interop/tasks.ts",
    "--broker",
    urls.broker,
    "--backend",
    urls.backend,
    "-Q",
    queue,
    "-c",
    "2",
    "--loglevel",
    "INFO", // the interop tests read the per-task lines
    ...extra,
  ], { INTEROP_MARKER_REDIS: REDIS_URL });
}

/** Send `calls` from a Python Celery client (env gives broker, backend, queue) and collect outcomes. */
export async function pythonCalls(
  env: Record<string, string>,
  calls: unknown[],
): Promise<PyOutcome[]> {
  return pyJsonLoads(await runPython("pyclient.py", [pyJsonDumps(calls)], env)) as PyOutcome[];
}
