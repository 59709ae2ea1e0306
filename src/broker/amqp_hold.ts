/**
 * An AMQP connection holds the process alive only while something waits on
 * it: a method's reply, a publish's confirm, a consumer, frames not written
 * yet. Idle, its socket and amqplib's heartbeat timers are unref'd, so a
 * script that is done (a client that never called `app.close()`) exits.
 *
 * Every write to the socket refs them again at once (before the write: what
 * the caller then awaits can never see the process end under it); a frame
 * amqplib queues in a channel's buffer reaches the socket through its
 * muxer's `setImmediate`, which keeps the process alive until then. A check
 * every {@link IDLE_CHECK_MS}, itself unref'd, lets go once nothing waits.
 * amqplib's own methods are not wrapped: the fast publish path
 * (amqp_fast_publish.ts) reads a connection's own `sendMessage` as amqplib
 * closing it, and would leave every publish to amqplib's slower path.
 * The check reads amqplib 2.3's channel state (`reply`, `pending`,
 * `unconfirmed`, `consumers`, the write buffer); a version without those
 * fields counts as always busy, as before.
 *
 * @module
 */

import type { ChannelModel } from "amqplib";

/** Milliseconds between two looks at whether anything still waits. */
export const IDLE_CHECK_MS = 200;

interface Refable {
  ref?(): unknown;
  unref?(): unknown;
}

interface ChannelView {
  reply?: unknown;
  pending?: unknown[] | null;
  unconfirmed?: unknown[];
  consumers?: Map<unknown, unknown>;
}

interface ConnectionView {
  stream?: Refable & { write: (...args: unknown[]) => boolean };
  heartbeater?: { sendTimer?: Refable; recvTimer?: Refable } | null;
  channels?: ({ channel?: ChannelView; buffer?: { readableLength?: number } } | null)[];
}

/** Whether anything waits on `slot`'s channel (unknown fields: busy). */
function channelBusy(slot: NonNullable<ConnectionView["channels"]>[number], n: number): boolean {
  if (!slot) return false;
  if ((slot.buffer?.readableLength ?? 0) > 0) return true;
  if (n === 0) return false;
  const ch = slot.channel;
  if (!ch || !("reply" in ch) || !(ch.consumers instanceof Map)) return true;
  return ch.reply != null || (ch.pending?.length ?? 0) > 0 || ch.consumers.size > 0 ||
    (ch.unconfirmed ?? []).some((cb) => cb != null);
}

/**
 * Ref `model`'s socket and heartbeat timers while it is busy, unref them
 * while it is idle, until it closes.
 *
 * @example
 * ```ts ignore
 * const model = await amqp.connect(url);
 * holdWhileBusy(model);
 * ```
 *
 * @param model an amqplib connection
 */
export function holdWhileBusy(model: ChannelModel): void {
  const c = (model as unknown as { connection?: ConnectionView }).connection;
  const socket = c?.stream;
  if (!c || !socket || typeof socket.unref !== "function" || !Array.isArray(c.channels)) return;
  const timers = () => [c.heartbeater?.sendTimer, c.heartbeater?.recvTimer];
  let held = true;
  const hold = (busy: boolean) => {
    if (busy === held) return;
    held = busy;
    for (const r of [socket, ...timers()]) busy ? r?.ref?.() : r?.unref?.();
  };
  const busy = () => c.channels!.some(channelBusy);
  const write = socket.write;
  socket.write = function (...args: unknown[]): boolean {
    hold(true);
    return write.apply(socket, args);
  };
  const check = setInterval(() => hold(busy()), IDLE_CHECK_MS);
  Deno.unrefTimer(check);
  model.on("close", () => clearInterval(check));
}
