/**
 * The kombu "virtual transport" envelope: the JSON document that carries a
 * whole message as one Redis list element or pub/sub payload.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { pyJsonDumps, pyJsonScalar } from "./json.ts";
import { type JsonShape, pyJsonLoadsShaped } from "./json_decode.ts";
import { checkShape, MAX_HEADERS_SIZE, MAX_NESTING_DEPTH } from "./limits.ts";
import type { Message, MessageProperties } from "./message.ts";

/**
 * Where a message was published: the exchange and routing key.
 *
 * @example Wrapping a message for a queue
 * ```ts
 * import { type DeliveryInfo, encodeEnvelope, encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const message = encodeTaskMessage({
 *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
 *   now: new Date(), origin: "gen1@host", replyTo: "r",
 * });
 * const info: DeliveryInfo = { exchange: "", routing_key: "celery" };
 * const raw = encodeEnvelope(message, info, crypto.randomUUID()); // what LPUSH stores
 * ```
 */
export interface DeliveryInfo {
  /** Exchange name; `""` is the default exchange. */
  exchange: string;
  /** Routing key; on the default exchange, the queue name. */
  routing_key: string;
}

/**
 * A decoded envelope.
 *
 * @example Reading a restored envelope
 * ```ts
 * import { decodeEnvelope, encodeEnvelope, type Envelope } from "@celeriac/celeriac/protocol";
 * const raw = encodeEnvelope(
 *   { body: new TextEncoder().encode("[[], {}, {}]"), contentType: "application/json",
 *     contentEncoding: "utf-8", headers: { task: "tasks.ping", id: "1" }, properties: {} },
 *   { exchange: "", routing_key: "celery" },
 *   "tag-1",
 *   true,
 * );
 * const env: Envelope = decodeEnvelope(raw);
 * env.deliveryInfo.routing_key; // "celery"
 * env.redelivered; // true
 * env.headers.task; // "tasks.ping"
 * ```
 */
export interface Envelope extends Message {
  /** Where it was published. */
  deliveryInfo: DeliveryInfo;
  /** The unique tag the publisher gave it. */
  deliveryTag: string;
  /** True when it was restored after a consumer died or requeued it. */
  redelivered: boolean;
}

const SKIP_PROPS = new Set(["priority", "delivery_info", "body_encoding", "delivery_tag"]);

/**
 * Encode a message as kombu 5.2 writes it to Redis: keys `body` (base64),
 * `content-encoding`, `content-type`, `headers`, `properties` (the message
 * properties, then `delivery_info`, `priority`, `body_encoding`,
 * `delivery_tag`).
 *
 * @example
 * ```ts
 * import { encodeEnvelope } from "@celeriac/celeriac/protocol";
 * const raw = encodeEnvelope(
 *   { body: new TextEncoder().encode("[]"), contentType: "application/json",
 *     contentEncoding: "utf-8", headers: {}, properties: { priority: 0 } },
 *   { exchange: "", routing_key: "celery" },
 *   crypto.randomUUID(),
 * );
 * ```
 *
 * @param msg the message
 * @param deliveryInfo exchange and routing key it is published with (a
 *   frozen one's text is encoded once and reused: freeze one that is
 *   published with many messages)
 * @param deliveryTag a fresh unique tag (a UUID)
 * @param redelivered add kombu's `redelivered: true` markers
 * @returns the JSON text of the envelope
 */
export function encodeEnvelope(
  msg: Message,
  deliveryInfo: DeliveryInfo,
  deliveryTag: string,
  redelivered = false,
): string {
  return BODY_KEY + msg.body.toBase64() + envelopeRest(msg, deliveryInfo, deliveryTag, redelivered);
}

const BODY_KEY = '{"body": "';

/**
 * The key of a message's prewritten envelope head ({@link prewriteEnvelopeHead}).
 * The text is used only while the message still has the headers and
 * properties objects (and content type and encoding) it was written for: a
 * copy with other headers (`{ ...message, headers }`) is encoded afresh.
 */
const HEAD: unique symbol = Symbol("celeriac.envelopeHead");

interface Prewritten {
  readonly text: string;
  readonly headers: Message["headers"];
  readonly properties: Message["properties"];
  readonly contentType: string;
  readonly contentEncoding: string;
}

/**
 * Record the text of `message`'s envelope from the end of the body to the
 * delivery info ({@link envelopeHead}), written when the message was built
 * (task_template.ts: the messages of a batch), so that publishing it to
 * Redis does not encode its headers and properties again. The text is kept
 * with the headers and properties objects it was written for and used only
 * while the message still has those: a copy with other headers or
 * properties is encoded afresh. Only for messages nobody changes in place
 * after they are built: the batch encoder's, handed straight to the broker.
 *
 * @example
 * ```ts ignore
 * const message = prewriteEnvelopeHead(built, envelopeHead(built));
 * hasPrewrittenHead(message); // true
 * hasPrewrittenHead({ ...message, headers: { ...message.headers } }); // false: encoded afresh
 * ```
 *
 * @param message the message, as built
 * @param head its envelope head, as {@link envelopeHead} writes it
 * @returns the message
 */
export function prewriteEnvelopeHead(message: Message, head: string): Message {
  (message as { [HEAD]?: Prewritten })[HEAD] = {
    text: head,
    headers: message.headers,
    properties: message.properties,
    contentType: message.contentType,
    contentEncoding: message.contentEncoding,
  };
  return message;
}

/** The prewritten head of `message`, if it was written for what the message has now. */
function prewritten(message: Message): string | undefined {
  const p = (message as { [HEAD]?: Prewritten })[HEAD];
  return p && p.headers === message.headers && p.properties === message.properties &&
      p.contentType === message.contentType && p.contentEncoding === message.contentEncoding
    ? p.text
    : undefined;
}

/**
 * Whether `message` has an envelope head recorded by
 * {@link prewriteEnvelopeHead} that is still its own.
 *
 * @example
 * ```ts ignore
 * hasPrewrittenHead(template.encode(id, [2, 3])); // true for a direct template
 * ```
 *
 * @param message the message
 * @returns whether its head is prewritten
 */
export function hasPrewrittenHead(message: Message): boolean {
  return prewritten(message) !== undefined;
}

/**
 * The envelope's text from the end of the base64 body up to the delivery
 * info: content encoding and type, headers, and the properties that are
 * not the transport's (`priority`, `delivery_info`, `body_encoding`,
 * `delivery_tag` are written after it, in {@link encodeEnvelope}'s order).
 *
 * @example
 * ```ts
 * const msg = { body: new Uint8Array(), contentType: "application/json",
 *   contentEncoding: "utf-8", headers: {}, properties: { correlation_id: "1" } };
 * envelopeHead(msg);
 * // '", "content-encoding": "utf-8", "content-type": "application/json", "headers": {}, "properties": {"correlation_id": "1", '
 * ```
 *
 * @param msg the message
 * @param redelivered add kombu's `redelivered: true` to the headers
 * @returns the text
 */
export function envelopeHead(msg: Message, redelivered = false): string {
  const props: Record<string, unknown> = {};
  for (const key in msg.properties) {
    if (!SKIP_PROPS.has(key) && msg.properties[key] !== undefined) {
      props[key] = msg.properties[key];
    }
  }
  const members = pyJsonDumps(props).slice(1, -1);
  const headers = redelivered ? { ...msg.headers, redelivered: true } : msg.headers;
  return '", "content-encoding": ' + pyJsonDumps(msg.contentEncoding) + ', "content-type": ' +
    pyJsonDumps(msg.contentType) + ', "headers": ' + pyJsonDumps(headers) + ', "properties": {' +
    members + (members === "" ? "" : ", ");
}

/** The envelope's text after the base64 body. */
function envelopeRest(
  msg: Message,
  deliveryInfo: DeliveryInfo,
  deliveryTag: string,
  redelivered: boolean,
): string {
  const head = (!redelivered && prewritten(msg)) || envelopeHead(msg, redelivered);
  return head + '"delivery_info": ' + infoText(deliveryInfo, redelivered) + ', "priority": ' +
    pyJsonDumps(msg.properties.priority ?? 0) + ', "body_encoding": "base64", "delivery_tag": ' +
    pyJsonScalar(deliveryTag) + "}}";
}

/** The JSON text of frozen delivery infos (a publisher's, one per target): encoded once. */
const infoTexts = new WeakMap<DeliveryInfo, string>();

function infoText(info: DeliveryInfo, redelivered: boolean): string {
  if (redelivered) return pyJsonDumps({ ...info, redelivered: true });
  if (!Object.isFrozen(info)) return pyJsonDumps(info);
  let text = infoTexts.get(info);
  if (text === undefined) infoTexts.set(info, text = pyJsonDumps(info));
  return text;
}

/**
 * {@link encodeEnvelope} as bytes (the text is ASCII), written without
 * building the text: for a large body, such as a batch of events, the
 * base64 string is the only JS string made.
 *
 * @example
 * ```ts
 * import { encodeEnvelope, encodeEnvelopeBytes } from "@celeriac/celeriac/protocol";
 * const msg = { body: new TextEncoder().encode("[]"), contentType: "application/json",
 *   contentEncoding: "utf-8", headers: {}, properties: { priority: 0 } };
 * const info = { exchange: "celeryev", routing_key: "task.multi" };
 * new TextDecoder().decode(encodeEnvelopeBytes(msg, info, "t1")) === encodeEnvelope(msg, info, "t1"); // true
 * ```
 *
 * @param msg the message
 * @param deliveryInfo exchange and routing key it is published with
 * @param deliveryTag a fresh unique tag (a UUID)
 * @returns the envelope's bytes
 */
export function encodeEnvelopeBytes(
  msg: Message,
  deliveryInfo: DeliveryInfo,
  deliveryTag: string,
): Uint8Array {
  const pieces = encodeEnvelopePieces(msg, deliveryInfo, deliveryTag);
  const out = new Uint8Array(pieces[0].length + pieces[1].length + pieces[2].length);
  let at = 0;
  for (const piece of pieces) at += utf8.encodeInto(piece, out.subarray(at)).written;
  return out;
}

/**
 * {@link encodeEnvelope} as the three ASCII pieces whose concatenation it
 * is (the body key, the base64 body, the rest), for a writer that copies
 * them straight into its own buffer (the events' RESP connection): a
 * batch of events then costs no envelope buffer of its own.
 *
 * @example
 * ```ts
 * import { encodeEnvelope } from "@celeriac/celeriac/protocol";
 * const msg = { body: new TextEncoder().encode("[]"), contentType: "application/json",
 *   contentEncoding: "utf-8", headers: {}, properties: { priority: 0 } };
 * const info = { exchange: "celeryev", routing_key: "task.multi" };
 * encodeEnvelopePieces(msg, info, "t1").join("") === encodeEnvelope(msg, info, "t1"); // true
 * ```
 *
 * @param msg the message
 * @param deliveryInfo exchange and routing key it is published with
 * @param deliveryTag a fresh unique tag (a UUID)
 * @returns the pieces, ASCII text only
 */
export function encodeEnvelopePieces(
  msg: Message,
  deliveryInfo: DeliveryInfo,
  deliveryTag: string,
): readonly [string, string, string] {
  return [
    BODY_KEY,
    msg.body.toBase64(),
    envelopeRest(msg, deliveryInfo, deliveryTag, false),
  ];
}

const utf8 = new TextEncoder();

/**
 * Decode a kombu envelope (as popped from a Redis list).
 *
 * @example
 * ```ts
 * import { decodeEnvelope, encodeEnvelope } from "@celeriac/celeriac/protocol";
 * const raw = encodeEnvelope(
 *   { body: new Uint8Array(), contentType: "application/json", contentEncoding: "utf-8",
 *     headers: { task: "t", id: "1" }, properties: {} },
 *   { exchange: "", routing_key: "celery" }, "tag-1");
 * decodeEnvelope(raw).deliveryTag; // "tag-1"
 * ```
 *
 * @param raw the envelope JSON text
 * @returns the message with its delivery data
 * A message whose task id can be read but whose body cannot be decoded (not
 * base64), or whose headers pass the nesting or size limits, is returned
 * with `undecodable` set (see {@link Message.undecodable}), so that the
 * worker can store a FAILURE for that id.
 *
 * @throws {ProtocolError} when it is not a kombu envelope, or cannot be
 *   read and carries no task id
 */
export function decodeEnvelope(raw: string): Envelope {
  return decodeEnvelopeWith(raw, fromBase64);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.fromBase64(text);
}

/**
 * {@link decodeEnvelope} with the base64 body decoded by `base64` (which
 * throws for text that is not base64): the Redis taker decodes a take's
 * bodies into one buffer (see `BodyPack` in redis_bodies.ts).
 *
 * @example
 * ```ts ignore
 * const env = decodeEnvelopeWith(raw, (text) => Uint8Array.fromBase64(text));
 * ```
 *
 * @param raw the envelope JSON text
 * @param base64 decodes a base64 body
 * @returns the message with its delivery data
 * @throws {ProtocolError} as {@link decodeEnvelope}
 */
export function decodeEnvelopeWith(raw: string, base64: (text: string) => Uint8Array): Envelope {
  let env: Record<string, unknown>;
  try {
    env = pyJsonLoadsShaped(raw, ENVELOPE_SHAPE) as Record<string, unknown>;
  } catch (cause) {
    throw new ProtocolError(`Envelope is not JSON: ${(cause as Error).message}`, { cause });
  }
  // Headers and properties are one level down in the envelope, and no larger than it: an
  // envelope measured within their limits needs no walk of each (the usual case).
  const within = ENVELOPE_SHAPE.depth >= 0 && ENVELOPE_SHAPE.depth <= MAX_NESTING_DEPTH + 1 &&
    ENVELOPE_SHAPE.size <= MAX_HEADERS_SIZE;
  if (env === null || typeof env !== "object" || Array.isArray(env)) {
    throw new ProtocolError("Envelope is not a JSON object");
  }
  const headers = (env.headers ?? {}) as Record<string, unknown>;
  const properties = (env.properties ?? {}) as MessageProperties;
  if (!isObject(properties) || !isObject(headers)) {
    throw new ProtocolError("Envelope headers and properties must be objects", {
      taskId: isObject(headers) && typeof headers.id === "string" ? headers.id : undefined,
    });
  }
  const taskId = typeof headers.id === "string" ? headers.id : undefined;
  if (!within) checkShape(properties, "properties", { maxSize: MAX_HEADERS_SIZE }, taskId);
  const info = (isObject(properties.delivery_info) ? properties.delivery_info : {}) as {
    exchange?: unknown;
    routing_key?: unknown;
    redelivered?: unknown;
  };
  const deliveryInfo = {
    exchange: typeof info.exchange === "string" ? info.exchange : "",
    routing_key: typeof info.routing_key === "string" ? info.routing_key : "",
  };
  const bodyText = env.body;
  let undecodable: string | undefined;
  // An empty body only for a message refused here: none is made for the others.
  let body: Uint8Array | undefined;
  try {
    if (!within) checkShape(headers, "headers", { maxSize: MAX_HEADERS_SIZE }, taskId);
    if (typeof bodyText !== "string") {
      throw new ProtocolError("Envelope body must be a string", { taskId });
    }
    if (properties.body_encoding === "base64") {
      try {
        body = base64(bodyText);
      } catch (cause) {
        throw new ProtocolError("Envelope body is not valid base64", { taskId, cause });
      }
    } else {
      body = utf8.encode(bodyText);
    }
  } catch (err) {
    // Without a task id nobody waits for this message: refuse it whole.
    if (taskId === undefined) throw err;
    undecodable = (err as Error).message;
  }
  const kept = undecodable === undefined
    ? headers
    : { id: taskId, task: typeof headers.task === "string" ? headers.task : undefined };
  const out: Envelope = {
    body: body ?? new Uint8Array(),
    // None given is "" as on RabbitMQ: kombu reads such a body as raw data, not JSON.
    contentType: typeof env["content-type"] === "string" ? env["content-type"] : "",
    contentEncoding: typeof env["content-encoding"] === "string"
      ? env["content-encoding"]
      : "utf-8",
    headers: kept,
    properties,
    deliveryInfo,
    deliveryTag: typeof properties.delivery_tag === "string" ? properties.delivery_tag : "",
    redelivered: info.redelivered === true || headers.redelivered === true,
  };
  // Set afterwards rather than spread into the literal: a spread costs an object per message.
  if (undecodable !== undefined) out.undecodable = undecodable;
  return out;
}

/** What {@link decodeEnvelopeWith} measured of the envelope it decoded last (read at once). */
const ENVELOPE_SHAPE: JsonShape = { depth: -1, size: 0 };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
