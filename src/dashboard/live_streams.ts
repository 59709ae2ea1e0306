/**
 * The browsers following the live stream (`GET /api/stream`, server-sent
 * events), each with a bounded queue: a client that stops reading (a frozen
 * tab, a stalled proxy) is closed once it is more than
 * {@link STREAM_HIGH_WATER_BYTES} behind, instead of the dashboard keeping
 * every later message for it. A browser reconnects after the stream's
 * `retry: 2000` and loads the page's data anew.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["celeriac", "dashboard"]);

/**
 * Bytes a live stream may hold that its client has not taken when the next
 * message is sent; beyond that the stream is closed. The client's socket
 * buffers come on top, and one message (at most 200 tasks).
 */
export const STREAM_HIGH_WATER_BYTES = 1 << 20;

const RETRY = new TextEncoder().encode("retry: 2000\n\n");

/**
 * The open live streams.
 *
 * @example
 * ```ts
 * import { LiveStreams } from "./live_streams.ts";
 * const streams = new LiveStreams();
 * const body = streams.open(); // the body of a text/event-stream response
 * streams.send(new TextEncoder().encode("data: {}\n\n"));
 * streams.size; // 1
 * streams.closeAll();
 * await body.cancel();
 * ```
 */
export class LiveStreams {
  readonly #streams = new Set<ReadableStreamDefaultController<Uint8Array>>();

  /** How many streams are open. */
  get size(): number {
    return this.#streams.size;
  }

  /**
   * A new stream, which starts with the reconnection delay.
   *
   * @returns the response body
   */
  open(): ReadableStream<Uint8Array> {
    let self: ReadableStreamDefaultController<Uint8Array>;
    return new ReadableStream<Uint8Array>({
      start: (c) => {
        self = c;
        this.#streams.add(c);
        c.enqueue(RETRY);
      },
      cancel: () => {
        this.#streams.delete(self);
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: STREAM_HIGH_WATER_BYTES }));
  }

  /**
   * Send one message to every stream; a stream whose client has left more than
   * {@link STREAM_HIGH_WATER_BYTES} of earlier messages untaken is closed instead.
   *
   * @param bytes the message, as sent
   */
  send(bytes: Uint8Array): void {
    for (const c of this.#streams) {
      if ((c.desiredSize ?? 0) < 0) {
        this.#streams.delete(c);
        log.info(
          "Live stream closed: its client left over {bytes} bytes unread (it reconnects)",
          { bytes: STREAM_HIGH_WATER_BYTES },
        );
        c.error(new Error("The client stopped reading the live stream"));
        continue;
      }
      try {
        c.enqueue(bytes);
      } catch {
        this.#streams.delete(c);
      }
    }
  }

  /** Close every stream (the dashboard stops). */
  closeAll(): void {
    for (const c of this.#streams) {
      try {
        c.close();
      } catch { /* already closed by the browser */ }
    }
    this.#streams.clear();
  }
}
