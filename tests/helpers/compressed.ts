/** A `t.add` task message with a compressed body, for the workers' decompression tests. */

import type { Celery } from "../../mod.ts";
import { encodeTaskMessage } from "../../src/protocol/task_message.ts";

/**
 * A protocol-2 `t.add` message from `client` (its replies to `client.oid`) whose body is `body`,
 * already compressed, under the `compression` header `mime`.
 *
 * @example
 * ```ts
 * const message = compressedAddMessage(client, crypto.randomUUID(), "application/x-lzma", xz);
 * await (await client.broker()).publish(message, { routingKey: queue });
 * ```
 */
export function compressedAddMessage(
  client: Celery,
  id: string,
  mime: string,
  body: Uint8Array,
): ReturnType<typeof encodeTaskMessage> {
  const message = encodeTaskMessage({
    task: "t.add",
    id,
    args: [],
    kwargs: {},
    now: new Date(),
    origin: "test",
    replyTo: client.oid,
  });
  message.headers.compression = mime;
  message.body = body;
  return message;
}
