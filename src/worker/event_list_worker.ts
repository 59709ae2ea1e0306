/**
 * The script of the worker's events Web Worker: it writes the task events
 * the main thread recorded (see event_list_thread.ts) as the bytes of
 * `task.multi` lists, so that their text, its encoding and the young
 * generation they fill cost the main thread nothing. It opens no
 * connection: the main thread publishes the lists.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { EventListWriter, EventShape } from "../protocol/event_writer.ts";
import {
  type EventListReply,
  type EventListRequest,
  RECORD_FIELDS,
  RECORD_SHAPE,
} from "./event_list_thread.ts";

let writer: EventListWriter | null = null;
let batchMax = 100;
const shapes: EventShape[] = [];

/** Replay one batch of records into the writer; returns its lists. */
function write(records: unknown[]): Uint8Array[] {
  const w = writer!;
  for (let i = 0; i < records.length;) {
    const code = records[i] as number;
    if (code === RECORD_SHAPE) {
      shapes[records[i + 1] as number] = new EventShape(
        records[i + 2] as string,
        records[i + 3] as string[],
      );
      i += 4;
    } else if (code === RECORD_FIELDS) {
      w.add(
        records[i + 3] as string,
        records[i + 4] as Record<string, unknown>,
        records[i + 1] as number,
        records[i + 2] as number,
      );
      i += 5;
    } else {
      const shape = shapes[code];
      const n = shape.keys.length;
      w.addValues(
        shape,
        records.slice(i + 3, i + 3 + n),
        records[i + 1] as number,
        records[i + 2] as number,
      );
      i += 3 + n;
    }
  }
  const lists: Uint8Array[] = [];
  while (w.length > 0) lists.push(w.take(batchMax));
  return lists;
}

self.onmessage = (e: MessageEvent<EventListRequest>) => {
  const m = e.data;
  if (!Array.isArray(m)) {
    writer = new EventListWriter(m.sender);
    batchMax = m.batchMax;
    return;
  }
  let reply: EventListReply;
  try {
    reply = write(m);
  } catch (err) {
    // This batch's events are dropped, not the next batches'.
    while (writer!.length > 0) writer!.take();
    reply = { error: (err as Error).message };
  }
  self.postMessage(reply, Array.isArray(reply) ? reply.map((l) => l.buffer as ArrayBuffer) : []);
};
