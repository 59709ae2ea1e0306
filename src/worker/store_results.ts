/**
 * Storing outcomes so that none is lost and none loops: a result the backend
 * refuses (too large for it, a write error) is replaced by a stored FAILURE
 * (`kombu.exceptions.EncodeError` naming the size and the reason), and the
 * message is then settled as usual. Only a backend that cannot be reached
 * fails the settlement (the message stays unacknowledged and comes back).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ResultBackend, StoreEntry } from "../backend/port.ts";
import { ResultsRefusedError } from "../backend/rpc_errors.ts";
import { BrokerConnectionError } from "../broker/errors.ts";
import { EncodeError } from "../protocol/errors.ts";
import { pyJsonDumps } from "../protocol/json.ts";
import { encodeResultMetaWithJson } from "../protocol/result_meta.ts";
import { oneLine } from "./log_values.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * The FAILURE stored in place of a result the backend refused.
 *
 * @param entry the refused entry
 * @param err why it was refused
 * @returns a small FAILURE entry for the same task
 */
export function unstorableFailure(entry: StoreEntry, err: unknown): StoreEntry {
  const size = entry.meta.length;
  const message = err instanceof EncodeError
    ? err.message
    : `The ${entry.status} result of task ${entry.taskId} (${size} bytes of JSON) could not ` +
      `be stored: ${err instanceof Error ? err.message : String(err)}`;
  const exc = { exc_type: "EncodeError", exc_message: [message], exc_module: "kombu.exceptions" };
  return {
    taskId: entry.taskId,
    status: "FAILURE",
    replyTo: entry.replyTo,
    correlationId: entry.correlationId,
    meta: encodeResultMetaWithJson(
      {
        taskId: entry.taskId,
        status: "FAILURE",
        result: null,
        traceback: `EncodeError: ${message}`,
        dateDone: new Date(),
      },
      pyJsonDumps(exc),
    ),
  };
}

/**
 * Store entries; an entry the backend refuses is stored as a FAILURE instead
 * (and logged). Resolves once every entry is stored or given up on.
 *
 * @example
 * ```ts ignore
 * await storeResults(backend, [{ taskId, status: "SUCCESS", meta }]);
 * ```
 *
 * @param backend the result backend
 * @param entries what to store
 * @throws {BrokerConnectionError} when the backend cannot be reached
 */
export async function storeResults(
  backend: ResultBackend,
  entries: readonly StoreEntry[],
): Promise<void> {
  try {
    return await backend.store(entries);
  } catch (err) {
    if (err instanceof BrokerConnectionError) throw err;
    if (err instanceof ResultsRefusedError) {
      // The others were sent: only the refused ones get a FAILURE in their place.
      for (const e of err.entries) await storeInstead(backend, e, err.cause);
      return;
    }
    if (entries.length === 1) return await storeInstead(backend, entries[0], err);
  }
  for (const e of entries) {
    try {
      await backend.store([e]);
    } catch (err) {
      if (err instanceof BrokerConnectionError) throw err;
      await storeInstead(backend, e, err);
    }
  }
}

async function storeInstead(backend: ResultBackend, e: StoreEntry, err: unknown): Promise<void> {
  const error = err instanceof Error ? err.message : String(err);
  if (e.status !== "SUCCESS" && e.status !== "FAILURE") {
    log.error("Cannot store the {status} state of task {taskId}: {error}", {
      status: e.status,
      taskId: oneLine(e.taskId),
      error,
    });
    return;
  }
  log.error("Cannot store the {status} result of task {taskId}: {error}; storing FAILURE instead", {
    status: e.status,
    taskId: oneLine(e.taskId),
    error,
  });
  try {
    await backend.store([unstorableFailure(e, err)]);
  } catch (again) {
    if (again instanceof BrokerConnectionError) throw again;
    log.error(
      "Cannot store a FAILURE for task {taskId} either: {error}; its message is settled " +
        "without a stored result",
      { taskId: e.taskId, error: again instanceof Error ? again.message : String(again) },
    );
  }
}
