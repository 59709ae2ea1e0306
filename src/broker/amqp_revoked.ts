/**
 * Revoked task ids on RabbitMQ. They live in the stream queue
 * `celeriac.revoked` (`x-queue-type: stream`, `x-max-age: 4h`, 1 MB
 * segments; one an earlier version declared with `7D` is used as it is). A stream is read by any number of workers at once without
 * consuming it; a classic queue read with get-and-requeue would hide its
 * entries from a second worker reading at the same moment.
 * {@link listRevoked} appends a marker and reads up to it from
 * {@link REVOKED_READ_BACK_MS} ago (a revoke lasts 3 hours, so older
 * entries are expired: not read at all), skipping entries whose expiry passed.
 * An entry holds one id (`{task_id, expires}`) or, from a revoke of
 * several, up to {@link REVOKED_IDS_PER_ENTRY} (`{task_ids, expires}`).
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
import { newestRevoked } from "./revoked_cap.ts";
import { REVOKED_KEPT } from "./shared_state.ts";

/**
 * Revoked ids per entry of the stream: about 40 KB of task ids (UUIDs), 50
 * entries for the {@link REVOKED_KEPT} ids a revoke stores at most.
 *
 * @example
 * ```ts
 * import { REVOKED_IDS_PER_ENTRY } from "./amqp_revoked.ts";
 * REVOKED_IDS_PER_ENTRY; // 1000
 * ```
 */
export const REVOKED_IDS_PER_ENTRY = 1000;

/** Entries of the stream published at once, their confirms awaited before the next ones. */
const ENTRIES_IN_FLIGHT = 4;

/**
 * The stream's entries for ids expiring at the same time: one id as every
 * version writes it (`{task_id, expires}`, which earlier versions read
 * too), several as `{task_ids, expires}` (earlier versions skip it).
 */
function revokedEntryMessage(ids: readonly string[], expiresAt: Date): Message {
  const expires = expiresAt.getTime() / 1000;
  const entry = ids.length === 1 ? { task_id: ids[0], expires } : { task_ids: ids, expires };
  return {
    body: new TextEncoder().encode(JSON.stringify(entry)),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    properties: { delivery_mode: 2 },
  };
}

/** `entries` cut into runs of at most {@link REVOKED_IDS_PER_ENTRY} ids of one expiry, in order. */
function sameExpiryRuns(entries: readonly RevokedEntry[]): { ids: string[]; expiresAt: Date }[] {
  const runs: { ids: string[]; expiresAt: Date }[] = [];
  let run: { ids: string[]; expiresAt: Date } | undefined;
  for (const e of entries) {
    if (
      !run || run.ids.length === REVOKED_IDS_PER_ENTRY ||
      run.expiresAt.getTime() !== e.expiresAt.getTime()
    ) {
      run = { ids: [], expiresAt: e.expiresAt };
      runs.push(run);
    }
    run.ids.push(e.id);
  }
  return runs;
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

/** An entry of the revoked stream: ids with their expiry (ms), a marker's text, or null. */
function readRevokedEntry(
  content: Uint8Array,
): { ids: string[]; expiresAt: number } | string | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(content));
    if (typeof v?.marker === "string") return v.marker;
    if (typeof v?.expires !== "number") return null;
    if (typeof v.task_id === "string") return { ids: [v.task_id], expiresAt: v.expires * 1000 };
    if (Array.isArray(v.task_ids)) {
      const ids = v.task_ids.filter((id: unknown): id is string => typeof id === "string");
      return { ids, expiresAt: v.expires * 1000 };
    }
  } catch {
    // an entry another tool wrote: skipped
  }
  return null;
}

/**
 * Append revoked ids to the `celeriac.revoked` stream: of a long list only
 * the {@link REVOKED_KEPT} that expire last ({@link newestRevoked}: a
 * worker remembers no more), {@link REVOKED_IDS_PER_ENTRY} ids an entry, a
 * few entries at a time, so a revoke of 100,000 ids neither fills memory
 * with unconfirmed messages nor holds the event loop (heartbeats).
 *
 * @example
 * ```ts ignore
 * import { addRevoked } from "./amqp_revoked.ts";
 * await addRevoked(publisher, declarations, [{ id: taskId, expiresAt: new Date(Date.now() + 3600_000) }]);
 * ```
 *
 * @param publisher the broker's publisher
 * @param declarations the broker's declarations
 * @param entries the ids and when their revocation expires, oldest first
 */
export async function addRevoked(
  publisher: AmqpPublisher,
  declarations: Declarations,
  entries: readonly RevokedEntry[],
): Promise<void> {
  if (entries.length === 0) return;
  const runs = sameExpiryRuns(newestRevoked(entries));
  await publisher.withSession(async (session) => {
    await declarations.revokedStream(session);
    for (let i = 0; i < runs.length; i += ENTRIES_IN_FLIGHT) {
      await Promise.all(
        runs.slice(i, i + ENTRIES_IN_FLIGHT).map((run) =>
          publisher.confirmPublish(
            session,
            "",
            REVOKED_STREAM,
            revokedEntryMessage(run.ids, run.expiresAt),
          )
        ),
      );
    }
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
 * out, and an id revoked more than once keeps its latest expiry; the
 * {@link REVOKED_KEPT} that expire last at most (as Redis keeps), soonest
 * expiry first.
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
          for (const id of entry.ids) {
            latest.set(id, Math.max(latest.get(id) ?? 0, entry.expiresAt));
          }
        }
      }, { noAck: false, arguments: { "x-stream-offset": toAmqpValue(since) } });
      await reached;
    } finally {
      await held.close();
    }
    const now = Date.now();
    return [...latest]
      .filter(([, at]) => at > now)
      .map(([id, at]) => ({ id, expiresAt: new Date(at) }))
      .sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime())
      .slice(-REVOKED_KEPT);
  });
}
