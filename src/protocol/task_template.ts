/**
 * Task messages of a batch built from one template: the calls of a batch
 * (`delayMany`) share the task, the options and the kwargs, so what they
 * share is encoded once and each message costs its id, its arguments and
 * a few string joins — the same bytes {@link encodeTaskMessage} writes,
 * headers, body and Redis envelope (the template is cut from a message
 * that function built).
 *
 * @module
 */

import { envelopeHead, prewriteEnvelopeHead } from "./envelope.ts";
import { isVerbatimJsonString, pyJsonDumps, pyJsonScalar } from "./json.ts";
import type { Message } from "./message.ts";
import { argsRepr } from "./repr.ts";
import { encodeTaskMessage, type TaskMessageInput } from "./task_message.ts";

/**
 * What the calls of a template share: a task message's input without its
 * id and positional arguments. Times (`eta`, `countdown`, `expires`), a
 * serializer other than JSON and compression are not templated.
 *
 * @example
 * ```ts
 * const shared: TaskTemplateInput = {
 *   task: "tasks.add", kwargs: {}, origin: "gen1@host", replyTo: "r",
 * };
 * ```
 */
export type TaskTemplateInput = Omit<TaskMessageInput, "id" | "args" | "now">;

// Marks cut out of the sample message: UUIDs nothing else can contain.
const ID = crypto.randomUUID();
const ARGSREPR = crypto.randomUUID();
const ARGS_TEXT = `"${crypto.randomUUID()}"`;
const SLOT = new RegExp(`(${ID}|"${ARGSREPR}"|${ARGS_TEXT})`);
const utf8 = new TextEncoder();

/** A text cut at the marks: literal pieces, each mark between two of them. */
interface Cut {
  pieces: string[];
  marks: string[];
}

function cut(text: string): Cut {
  const parts = text.split(SLOT);
  return {
    pieces: parts.filter((_, i) => i % 2 === 0),
    marks: parts.filter((_, i) => i % 2 === 1),
  };
}

function fill(c: Cut, id: string, reprText: string, argsText: string): string {
  let out = c.pieces[0];
  for (let i = 0; i < c.marks.length; i++) {
    const m = c.marks[i];
    out += (m === ID ? id : m === ARGS_TEXT ? argsText : reprText) + c.pieces[i + 1];
  }
  return out;
}

/** The keys of a record whose value is `mark`, in order. */
function keysOf(record: Record<string, unknown>, mark: string): string[] {
  return Object.keys(record).filter((k) => record[k] === mark);
}

/**
 * Encodes the task messages of calls that share everything but the task id
 * and the positional arguments. With `direct`, each message also carries
 * its Redis envelope's text up to the delivery info (see `prewriteEnvelopeHead`
 * in envelope.ts), which the Redis broker writes instead of encoding the
 * headers and properties again.
 *
 * @example
 * ```ts
 * const template = TaskMessageTemplate.of({
 *   task: "tasks.add", kwargs: {}, origin: "gen1@host", replyTo: "r",
 * });
 * const message = template!.encode(crypto.randomUUID(), [2, 3]);
 * message.headers.argsrepr; // "(2, 3)"
 * ```
 */
export class TaskMessageTemplate {
  readonly #input: TaskTemplateInput;
  readonly #headers: Record<string, unknown>;
  readonly #properties: Record<string, unknown>;
  readonly #idHeaders: string[];
  readonly #reprHeaders: string[];
  readonly #idProperties: string[];
  /** Headers whose values are arrays (`timelimit`): each message gets its own copy. */
  readonly #arrayHeaders: string[];
  readonly #body: Cut;
  /** The Redis envelope's head, when it is prewritten. */
  readonly #head: Cut | null;
  readonly #contentType: string;
  readonly #contentEncoding: string;
  /** Whether bodies are packed into the shared buffers. */
  readonly #direct: boolean;

  private constructor(
    input: TaskTemplateInput,
    sample: Message,
    direct: boolean,
    envelope: boolean,
  ) {
    this.#input = input;
    this.#direct = direct;
    this.#headers = sample.headers;
    this.#properties = sample.properties;
    this.#idHeaders = keysOf(sample.headers, ID);
    this.#reprHeaders = keysOf(sample.headers, ARGSREPR);
    this.#idProperties = keysOf(sample.properties, ID);
    this.#arrayHeaders = Object.keys(sample.headers).filter((k) =>
      Array.isArray(sample.headers[k])
    );
    this.#contentType = sample.contentType;
    this.#contentEncoding = sample.contentEncoding;
    this.#body = cut(new TextDecoder().decode(sample.body));
    this.#head = direct && envelope ? cut(envelopeHead(sample)) : null;
  }

  /**
   * A template for calls sharing `input`, or `null` when they cannot share
   * one (times, msgpack, compression, or custom headers that set `argsrepr`):
   * encode those with {@link encodeTaskMessage}.
   *
   * @param input what the calls share
   * @param options `direct`: the messages go straight to a broker in this
   *   process and nobody changes them, default false. Their bodies are
   *   then views of 64 KiB buffers shared between messages of all
   *   templates (one allocation for hundreds of bodies instead of one
   *   each; a body of more than 4,096 characters has its own; not for
   *   messages that go through a structured clone: a Web Worker's
   *   `postMessage` copies a view's whole buffer) and, unless `envelope`
   *   is false, they carry their Redis envelope's text up to the delivery
   *   info. `envelope`: whether a direct message's Redis envelope head is
   *   prewritten, default true; false for brokers that write no such
   *   envelope (RabbitMQ, KV), which would not use it.
   * @returns the template, or `null`
   * @throws {EncodeError} when the shared kwargs or headers cannot be encoded
   */
  static of(
    input: TaskTemplateInput,
    options: { direct?: boolean; envelope?: boolean } = {},
  ): TaskMessageTemplate | null {
    if (
      input.eta != null || input.countdown != null || input.expires != null ||
      (input.serializer ?? "json") !== "json" || input.compression ||
      (input.headers && Object.hasOwn(input.headers, "argsrepr"))
    ) {
      return null;
    }
    const sample = encodeTaskMessage({ ...input, id: ID, args: [], now: new Date(0) });
    // The positional arguments' marks, where the sample has `()` and `[]`.
    if (sample.headers.argsrepr !== "()") return null;
    sample.headers.argsrepr = ARGSREPR;
    const body = new TextDecoder().decode(sample.body);
    if (!body.startsWith("[[], ")) return null;
    sample.body = utf8.encode(`[${ARGS_TEXT}, ${body.slice(5)}`);
    return new TaskMessageTemplate(
      input,
      sample,
      options.direct ?? false,
      options.envelope ?? true,
    );
  }

  /**
   * The message of one call.
   *
   * @param id the task id
   * @param args the positional arguments
   * @returns the message, as {@link encodeTaskMessage} builds it
   * @throws {TypeError} when `args` is not an array (as `encodeTaskMessage`)
   * @throws {EncodeError} when the arguments cannot be encoded (its path
   *   starts at `args`, as `encodeTaskMessage` says it)
   */
  encode(id: string, args: readonly unknown[]): Message {
    let argsText: string | undefined;
    try {
      // The id is written between quotes as it is: one JSON escapes takes the general way.
      if (Array.isArray(args) && isVerbatimJsonString(id)) argsText = pyJsonDumps(args);
    } catch {
      // The general encoder refuses them, with its own error and path.
    }
    if (argsText === undefined) {
      return encodeTaskMessage({ ...this.#input, id, args, now: new Date() });
    }
    const repr = argsRepr(args);
    const headers = { ...this.#headers };
    for (const k of this.#idHeaders) headers[k] = id;
    for (const k of this.#reprHeaders) headers[k] = repr;
    // Not shared with the other messages: whoever gets one may change it (a publisher hook).
    for (const k of this.#arrayHeaders) headers[k] = [...(headers[k] as unknown[])];
    const properties = { ...this.#properties };
    for (const k of this.#idProperties) properties[k] = id;
    const reprText = pyJsonScalar(repr);
    const bodyText = fill(this.#body, id, reprText, argsText);
    if (!this.#direct) {
      return {
        body: utf8.encode(bodyText),
        contentType: this.#contentType,
        contentEncoding: this.#contentEncoding,
        headers,
        properties,
      };
    }
    const message: Message = {
      body: BODIES.write(bodyText),
      contentType: this.#contentType,
      contentEncoding: this.#contentEncoding,
      headers,
      properties,
    };
    if (!this.#head) return message;
    return prewriteEnvelopeHead(message, fill(this.#head, id, reprText, argsText));
  }
}

/** Size of the buffers bodies are packed into. */
const SLAB_SIZE = 64 * 1024;
/** Longest body text packed (longer ones get a buffer of their own). */
const MAX_PACKED = SLAB_SIZE / 16;

/**
 * Bodies written one after another into a shared buffer, each a view of
 * its bytes; a new buffer is started when one is full. A text longer than
 * {@link MAX_PACKED} gets a buffer of its own: the shared one is never
 * replaced by a large one, and a body pins at most {@link SLAB_SIZE} bytes
 * while its message lives.
 */
class BodySlab {
  #buf = new Uint8Array(0);
  #at = 0;

  /** The UTF-8 bytes of `text`, in the current buffer unless it is long. */
  write(text: string): Uint8Array {
    if (text.length > MAX_PACKED) return utf8.encode(text);
    // At most 3 bytes per UTF-16 unit: a body that may not fit starts a new buffer.
    if (this.#buf.length - this.#at < text.length * 3) {
      this.#buf = new Uint8Array(SLAB_SIZE);
      this.#at = 0;
    }
    const start = this.#at;
    this.#at += utf8.encodeInto(text, this.#buf.subarray(start)).written;
    return this.#buf.subarray(start, this.#at);
  }
}

/**
 * The one slab of this thread, shared by all templates (of all apps): at
 * most one buffer is kept between sends however many templates there are
 * (a slab per template kept 64 KiB for each task `delay()` was called
 * twice with, for the life of the app).
 */
const BODIES = new BodySlab();
