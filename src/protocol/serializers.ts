/**
 * Serializers: which content types Celeriac writes and which it reads.
 *
 * JSON (the Celery default) and msgpack are supported both ways. pickle and
 * yaml are refused on decode with a {@link ContentDisallowedError}: pickle
 * cannot be read safely outside Python, and yaml is off by default in Celery.
 *
 * @module
 */

import { loadedMsgpack } from "./codecs.ts";
import { ContentDisallowedError, ProtocolError } from "./errors.ts";
import { pyJsonDumps } from "./json.ts";
import { type JsonShape, pyJsonLoadsShaped } from "./json_decode.ts";
import { checkShape, MAX_NESTING_DEPTH } from "./limits.ts";
import { type TextCodec, textCodecOf } from "./text_codecs.ts";
import { STRICT_UTF8 } from "./utf8_text.ts";

/**
 * Serializer names accepted for publishing.
 *
 * @example Choosing a serializer at run time
 * ```ts
 * import { type SerializerName } from "@celeriac/celeriac";
 * import { loadCodecs, serialize } from "@celeriac/celeriac/protocol";
 * const name: SerializerName = Deno.env.get("TASK_SERIALIZER") === "msgpack" ? "msgpack" : "json";
 * await loadCodecs({ msgpack: name === "msgpack" }); // msgpack loads on demand
 * serialize({ x: 1 }, name).contentType; // "application/json" unless msgpack was asked for
 * ```
 */
export type SerializerName = "json" | "msgpack";

/**
 * A serialized payload with the properties that describe it.
 *
 * @example Reading what a serializer produced
 * ```ts
 * import { serialize, type Serialized } from "@celeriac/celeriac/protocol";
 * const out: Serialized = serialize([[2, 3], {}, {}], "json");
 * out.contentType; // "application/json"
 * out.contentEncoding; // "utf-8"
 * new TextDecoder().decode(out.body); // "[[2, 3], {}, {}]"
 * ```
 */
export interface Serialized {
  /** The encoded bytes. */
  body: Uint8Array;
  /** MIME type, e.g. `application/json`. */
  contentType: string;
  /** `utf-8` for text formats, `binary` otherwise. */
  contentEncoding: string;
}

const encoder = new TextEncoder();
const decoder = STRICT_UTF8;

/**
 * MIME type written for each serializer name.
 *
 * @example Recognising a content type
 * ```ts
 * import { CONTENT_TYPES, type Message } from "@celeriac/celeriac/protocol";
 * const isMsgpack = (m: Message) => m.contentType === CONTENT_TYPES.msgpack;
 * CONTENT_TYPES.json; // "application/json"
 * CONTENT_TYPES.msgpack; // "application/x-msgpack"
 * ```
 */
export const CONTENT_TYPES: Readonly<Record<SerializerName, string>> = {
  json: "application/json",
  msgpack: "application/x-msgpack",
};

/**
 * Serialize a value with the named serializer. msgpack needs
 * `await loadCodecs({ msgpack: true })` first.
 *
 * @example
 * ```ts
 * import { serialize } from "@celeriac/celeriac/protocol";
 * const { body, contentType } = serialize([[2, 3], {}, {}], "json");
 * // contentType === "application/json"
 * ```
 *
 * @param value the value to encode
 * @param serializer `json` (default) or `msgpack`
 * @returns the bytes and their content type and encoding
 */
export function serialize(value: unknown, serializer: SerializerName = "json"): Serialized {
  switch (serializer) {
    case "json":
      return {
        body: encoder.encode(pyJsonDumps(value)),
        contentType: CONTENT_TYPES.json,
        contentEncoding: "utf-8",
      };
    case "msgpack":
      return {
        body: loadedMsgpack().msgpackEncode(value),
        contentType: CONTENT_TYPES.msgpack,
        contentEncoding: "binary",
      };
    default:
      throw new TypeError(`Unknown serializer "${serializer}": use "json" or "msgpack"`);
  }
}

/**
 * Decode a body according to its content type. msgpack needs
 * `await loadCodecs({ msgpack: true })` first.
 *
 * @example
 * ```ts
 * import { deserialize } from "@celeriac/celeriac/protocol";
 * deserialize(new TextEncoder().encode("[1, 2]"), "application/json", "utf-8"); // [1, 2]
 * ```
 *
 * @param body the raw (already decompressed) bytes
 * @param contentType the message's `content_type`
 * @param contentEncoding the message's `content_encoding`: a JSON body is
 *   read as UTF-8 whatever it says (as kombu's json decoder reads it), a
 *   `text/plain` or `application/data` one with it (as kombu decodes a
 *   content type it has no serializer for)
 * @param taskId the task id, named in errors
 * @returns the decoded value
 * @throws {ContentDisallowedError} for pickle, yaml and unknown content types
 * @throws {ProtocolError} when the bytes do not decode (a text body's
 *   content-encoding is not one this runtime knows), or the value nests
 *   deeper than `MAX_NESTING_DEPTH`
 */
export function deserialize(
  body: Uint8Array,
  contentType: string,
  contentEncoding: string,
  taskId?: string,
): unknown {
  BODY_SHAPE.depth = -1;
  const value = decodeBody(body, contentType, contentEncoding, taskId);
  // A JSON body measured as it was decoded needs no walk of its own (no size limit here).
  if (BODY_SHAPE.depth < 0 || BODY_SHAPE.depth > MAX_NESTING_DEPTH) {
    checkShape(value, "body", {}, taskId);
  }
  return value;
}

/** Content-encodings read as UTF-8 (kombu decodes no text for `binary` and `ascii-8bit`). */
const UTF8_ENCODINGS = new Set(["", "utf-8", "utf8", "binary", "ascii-8bit"]);

/** UTF-8, strict, as a {@link TextCodec}. */
const utf8: TextCodec = { name: "UTF-8", decode: (bytes) => decoder.decode(bytes) };

/** The codec of a text body's `content-encoding`, by Python's codec names (`latin-1`, `utf-16`, ...). */
function textDecoder(contentEncoding: string, taskId: string | undefined): TextCodec {
  const label = contentEncoding.toLowerCase();
  if (UTF8_ENCODINGS.has(label)) return utf8;
  const codec = textCodecOf(contentEncoding);
  if (codec) return codec;
  throw new ProtocolError(
    `Body has content-encoding "${contentEncoding}", which is not supported: send utf-8 ` +
      `(also read: utf-8-sig, utf-16, utf-16-le, utf-16-be, latin-1, ascii, cp1252)`,
    { taskId },
  );
}

/** What {@link decodeBody} measured of the JSON body it decoded last (depth -1: none; read at once). */
const BODY_SHAPE: JsonShape = { depth: -1, size: 0 };

function decodeBody(
  body: Uint8Array,
  contentType: string,
  contentEncoding: string,
  taskId?: string,
): unknown {
  switch (contentType) {
    case "application/json":
    case "application/data":
    case "text/plain": {
      // kombu hands a JSON body to its decoder, which reads UTF-8 whatever the content-encoding
      // says; a content type without a serializer it decodes with the content-encoding.
      const textOf = contentType === "application/json"
        ? utf8
        : textDecoder(contentEncoding, taskId);
      let text: string;
      try {
        text = textOf.decode(body);
      } catch (cause) {
        throw new ProtocolError(
          `Body is not valid ${textOf.name} (content-encoding ${contentEncoding})`,
          {
            taskId,
            cause,
          },
        );
      }
      if (contentType !== "application/json") return text;
      try {
        return pyJsonLoadsShaped(text, BODY_SHAPE, "body", taskId);
      } catch (cause) {
        // checkShape's depth refusal (for a value the reviver would walk) is worded already.
        if (cause instanceof ProtocolError && cause.message.startsWith("Message body ")) {
          throw cause;
        }
        throw new ProtocolError(`Body is not valid JSON: ${(cause as Error).message}`, {
          taskId,
          cause,
        });
      }
    }
    case "application/x-msgpack": {
      const codec = loadedMsgpack();
      try {
        return codec.msgpackDecode(body);
      } catch (cause) {
        throw new ProtocolError(`Body is not valid msgpack: ${(cause as Error).message}`, {
          taskId,
          cause,
        });
      }
    }
    default:
      throw new ContentDisallowedError(contentType, { taskId });
  }
}
