/**
 * A channel number is given out again only once everything its last channel
 * queued has been written to the socket.
 *
 * amqplib queues a channel's frames in a write buffer of its own, which its
 * muxer copies to the socket a turn later, as the socket takes them. A large
 * message published through amqplib (`channel.publish`) sits there as one
 * frame per `frameMax` bytes. When RabbitMQ closes the channel (a message over
 * `max_message_size`, a missing exchange), amqplib queues the Close-Ok behind
 * those frames and frees the channel's number at once; the next channel opened
 * takes the same number, and its `channel.open` reaches RabbitMQ between the
 * old channel's body frames, still queued. RabbitMQ, still reading those
 * bodies on that number, then closes the whole connection (505
 * `UNEXPECTED_FRAME - expected content body, got non content body frame
 * instead`): every channel and consumer on it is lost, and a publisher that
 * sends again what was in flight sends twice what RabbitMQ had routed.
 *
 * Here a closed channel's number stays taken until its write buffer has
 * ended (its frames and the Close-Ok handed to the socket, in order); a new
 * channel meanwhile takes the next free number.
 *
 * @module
 */

import type { ChannelModel } from "amqplib";

/** The parts of amqplib 2.3's connection this uses. */
interface ConnectionView {
  channels?: ({ buffer?: WriteBuffer } | null)[];
  freeChannels?: { set(n: number): unknown; clear(n: number): unknown };
  releaseChannel?: (n: number) => void;
}

/** A channel's write buffer (a Node.js stream). */
interface WriteBuffer {
  readableLength: number;
  readableEnded: boolean;
  once(event: "end", listener: () => void): unknown;
}

/**
 * Keep each channel number of `model` taken until the frames its closed
 * channel queued are written. An amqplib without the fields used here is
 * left as it is.
 *
 * @example
 * ```ts ignore
 * const model = await amqp.connect(url);
 * keepNumbersUntilWritten(model);
 * ```
 *
 * @param model an amqplib connection
 */
export function keepNumbersUntilWritten(model: ChannelModel): void {
  const c = (model as unknown as { connection?: ConnectionView }).connection;
  const release = c?.releaseChannel;
  if (!c || typeof release !== "function" || !Array.isArray(c.channels) || !c.freeChannels) {
    return;
  }
  const numbers = c.freeChannels;
  c.releaseChannel = function (this: ConnectionView, n: number): void {
    const buffer = c.channels![n]?.buffer;
    release.call(this, n);
    if (!buffer || buffer.readableLength === 0 || buffer.readableEnded) return;
    // Taken again until the muxer has read its last frame (on a connection that died, for good).
    numbers.set(n);
    buffer.once("end", () => numbers.clear(n));
  };
}
