/** Result entries the rpc:// backend tests store as a worker would. */

import type { StoreEntry } from "../../src/backend/port.ts";
import { encodeResultMeta } from "../../src/protocol/result_meta.ts";

/** A SUCCESS of `taskId` with `result`, replied to the client's `replyTo` queue. */
export function success(taskId: string, result: unknown, replyTo: string): StoreEntry {
  return {
    taskId,
    status: "SUCCESS",
    meta: encodeResultMeta({ taskId, status: "SUCCESS", result }),
    replyTo,
  };
}
