/**
 * Revoked task ids on RabbitMQ. They live in the stream queue
 * `celeriac.revoked` (`x-queue-type: stream`, `x-max-age: 4h`, 1 MB
 * segments; one an earlier version declared with `7D` is used as it is). A stream is read by any number of workers at once without
 * consuming it; a classic queue read with get-and-requeue would hide its
 * entries from a second worker reading at the same moment.
 * {@link listRevoked} appends a marker and reads up to it from
 * {@link REVOKED_READ_BACK_MS} ago (a revoke lasts 3 hours, so older
 * entries are expired: not read at all), skipping entries whose expiry passed.
 *
 * @module
 */

import type { Message } from "../protocol/message.ts";
import { HeldChannel } from "./amqp_channel.ts";
import type { Declarations } from "./amqp_declare.ts";
import type { AmqpPublisher } from "./amqp_publish.ts";
import { toAmqpValue } from "./amqp_table.ts";
import { REVOKED_STREAM } from "./amqp_topology.ts";
import type { RevokedEntry } from "./port.ts";

function revokedEntryMessage(e: RevokedEntry): Message {
  return {
    body: new TextEncoder().encode(
      JSON.stringify({ task_id: e.id, expires: e.expiresAt.getTime() / 1000 }),
    ),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    properties: { delivery_mode: 2 },
  };
}

function revokedMarkerMessage(marker: string): Message {
  return {
    body: new TextEncoder().encode(JSON.stringify({ marker })),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    properties: { delivery_mode: 1 },
  };
}

/** An entry of the revoked stream: an id with its expiry (ms), a marker's text, or null. */
function readRevokedEntry(content: Uint8Array): { id: string; expiresAt: number } | string | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(content));
    if (typeof v?.marker === "string") return v.marker;
    if (typeof v?.task_id === "string" && typeof v.expires === "number") {
      return { id: v.task_id, expiresAt: v.expires * 1000 };
    }
  } catch {
    // an entry another tool wrote: skipped
  }
  return null;
}

/**
 * Append revoked ids to the `celeriac.revoked` stream.
 *
 * @example
 * ```ts ignore
 * import { addRevoked } from "./amqp_revoked.ts";
 * await addRevoked(publisher, declarations, [{ id: taskId, expiresAt: new Date(Date.now() + 3600_000) }]);
 * ```
 *
 * @param publisher the broker's publisher
 * @param declarations the broker's declarations
 * @param entries the ids and when their revocation expires
 */
export async function addRevoked(
  publisher: AmqpPublisher,
  declarations: Declarations,
  entries: readonly RevokedEntry[],
): Promise<void> {
  if (entries.length === 0) return;
  await publisher.withSession(async (session) => {
    await declarations.revokedStream(session);
    await Promise.all(
      entries.map((e) =>
        publisher.confirmPublish(session, "", REVOKED_STREAM, revokedEntryMessage(e))
      ),
    );
  });
}

/**
 * How far back {@link listRevoked} reads the revoked stream: 4 hours. Every
 * Celeriac writer (client or worker) stores a revoke for 3 hours (Celery's
 * `REVOKES_MAX_AGE`), so older entries are expired; the hour more covers a
 * writer's clock behind RabbitMQ's (entries are found by RabbitMQ's time
 * of writing, expire by the writer's clock).
 *
 * @example
 * ```ts
 * import { REVOKED_READ_BACK_MS } from "./amqp_revoked.ts";
 * new Date(Date.now() - REVOKED_READ_BACK_MS); // where a worker starts reading
 * ```
 */
export const REVOKED_READ_BACK_MS = 4 * 3_600_000;

/**
 * Options of {@link listRevoked}.
 *
 * @example
 * ```ts
 * import type { ListRevokedOptions } from "./amqp_revoked.ts";
 * const options: ListRevokedOptions = { since: new Date(Date.now() - 60_000) };
 * ```
 */
export interface ListRevokedOptions {
  /**
   * Read the entries RabbitMQ wrote from this time on (the stream's
   * `x-stream-offset` as a timestamp, to the second; RabbitMQ starts at a
   * chunk of entries written together, so a few earlier ones may be read
   * too). Default now − {@link REVOKED_READ_BACK_MS}.
   */
  since?: Date;
}

/**
 * Read the `celeriac.revoked` stream's last hours (from
 * `options.since`, default {@link REVOKED_READ_BACK_MS} ago, not from its
 * first entry: the stream keeps a week); ids whose expiry passed are left
 * out, and an id revoked more than once keeps its latest expiry.
 *
 * @example
 * ```ts ignore
 * import { listRevoked } from "./amqp_revoked.ts";
 * const revoked = new Set((await listRevoked(publisher, declarations)).map((e) => e.id));
 * ```
 *
 * @param publisher the broker's publisher
 * @param declarations the broker's declarations
 * @param options where the read starts
 * @returns the revocations in force
 */
export async function listRevoked(
  publisher: AmqpPublisher,
  declarations: Declarations,
  options: ListRevokedOptions = {},
): Promise<RevokedEntry[]> {
  const since = options.since ?? new Date(Date.now() - REVOKED_READ_BACK_MS);
  return await publisher.withSession(async (session) => {
    await declarations.revokedStream(session);
    const marker = crypto.randomUUID();
    await publisher.confirmPublish(session, "", REVOKED_STREAM, revokedMarkerMessage(marker));
    const held = await HeldChannel.open(session);
    const latest = new Map<string, number>();
    try {
      await held.channel.prefetch(500);
      const { promise: reached, resolve, reject } = Promise.withResolvers<void>();
      session.lost.addEventListener("abort", () => reject(session.lost.reason), { once: true });
      if (session.lost.aborted) reject(session.lost.reason);
      held.channel.once("close", () => reject(new Error("the revoked stream's channel closed")));
      await held.channel.consume(REVOKED_STREAM, (m) => {
        if (!m) return;
        held.channel.ack(m);
        const entry = readRevokedEntry(m.content);
        if (entry === marker) resolve();
        else if (entry && typeof entry === "object") {
          latest.set(entry.id, Math.max(latest.get(entry.id) ?? 0, entry.expiresAt));
        }
      }, { noAck: false, arguments: { "x-stream-offset": toAmqpValue(since) } });
      await reached;
    } finally {
      await held.close();
    }
    const now = Date.now();
    return [...latest]
      .filter(([, at]) => at > now)
      .map(([id, at]) => ({ id, expiresAt: new Date(at) }));
  });
}
