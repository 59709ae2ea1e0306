/**
 * Read Celeriac's RabbitMQ revoked stream from its first entry, as a worker
 * that starts does, up to a marker this read appends.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import amqp from "amqplib";
import { REVOKED_STREAM } from "../../src/broker/amqp_topology.ts";

/**
 * Every entry of the revoked stream on `url` (markers of earlier reads left
 * out), oldest first.
 *
 * @example
 * ```ts ignore
 * const entries = await revokedStreamEntries(vhost.url());
 * ```
 *
 * @param url the vhost's AMQP URL
 */
export async function revokedStreamEntries(url: string): Promise<Record<string, unknown>[]> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    await ch.prefetch(500);
    const marker = crypto.randomUUID();
    ch.sendToQueue(REVOKED_STREAM, Buffer.from(JSON.stringify({ marker })));
    const entries: Record<string, unknown>[] = [];
    const { promise: reached, resolve } = Promise.withResolvers<void>();
    await ch.consume(REVOKED_STREAM, (m) => {
      if (!m) return;
      ch.ack(m);
      const v = JSON.parse(new TextDecoder().decode(m.content));
      if (v.marker === marker) resolve();
      else if (v.marker === undefined) entries.push(v);
    }, { noAck: false, arguments: { "x-stream-offset": "first" } });
    await reached;
    return entries;
  } finally {
    await conn.close();
  }
}
