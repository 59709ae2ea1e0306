/**
 * Errors raised while encoding or decoding Celery wire data.
 *
 * @module
 */

/**
 * A message or result could not be understood: malformed JSON, a body that is
 * not `[args, kwargs, embed]`, a missing `task` or `id` header, ...
 *
 * @example Catching a malformed message
 * ```ts
 * import { ProtocolError, decodeEnvelope } from "@celeriac/celeriac/protocol";
 * try {
 *   decodeEnvelope("not json");
 * } catch (err) {
 *   if (err instanceof ProtocolError) console.error(err.code, err.message);
 * }
 * ```
 */
export class ProtocolError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "PROTOCOL";
  /** The task id, when the broken message carried one. */
  readonly taskId: string | undefined;

  /**
   * Describe a message that cannot be understood.
   *
   * @param message what is wrong and what to change
   * @param options the task id (if known) and the underlying cause
   */
  constructor(message: string, options: { taskId?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "ProtocolError";
    this.taskId = options.taskId;
  }
}

/**
 * A task message whose `task` header is there but is not a string (`123`,
 * `null`): no task of that name can be registered. Celery 5.2.6 logs such a
 * message as "Received unregistered task of type 123" and stores
 * `NotRegistered(123)`; a worker parks it and stores the same.
 *
 * @example
 * ```ts
 * import { decodeTaskHeaders, TaskNameError } from "@celeriac/celeriac/protocol";
 * try {
 *   decodeTaskHeaders({
 *     body: new Uint8Array(), contentType: "application/json", contentEncoding: "utf-8",
 *     headers: { task: 123, id: "1" }, properties: {},
 *   });
 * } catch (err) {
 *   console.assert(err instanceof TaskNameError && err.taskName === 123);
 * }
 * ```
 */
export class TaskNameError extends ProtocolError {
  /** Stable code for programmatic checks. */
  override readonly code: string = "TASK_NAME";
  /** The header's value as received. */
  readonly taskName: unknown;

  /**
   * Describe a `task` header that is not a string.
   *
   * @param message what is wrong and what to change
   * @param options the header's value and the task id (if known)
   */
  constructor(message: string, options: { taskName: unknown; taskId?: string }) {
    super(message, { taskId: options.taskId });
    this.name = "TaskNameError";
    this.taskName = options.taskName;
  }
}

/**
 * A remote-control request's `pattern` that a worker will not match: longer
 * than `MAX_PATTERN_LENGTH`, or a pcre pattern that V8's linear-time engine
 * cannot run (back-references, lookarounds, `{m,n}` repeats with a large
 * bound such as `.{1,32}`), which could otherwise hold the
 * worker's main thread for good. The worker answers the request with this
 * error instead of running it.
 *
 * @example
 * ```ts
 * import { addressedTo, ControlPatternError, decodeControlRequest } from "@celeriac/celeriac/protocol";
 * const body = JSON.stringify({ method: "ping", pattern: "*".repeat(5000), matcher: "glob" });
 * const req = decodeControlRequest({
 *   body: new TextEncoder().encode(body), contentType: "application/json",
 *   contentEncoding: "utf-8", headers: {}, properties: {},
 * });
 * try {
 *   addressedTo(req, "celeriac@host");
 * } catch (err) {
 *   console.assert(err instanceof ControlPatternError);
 * }
 * ```
 */
export class ControlPatternError extends ProtocolError {
  /** Stable code for programmatic checks. */
  override readonly code: string = "CONTROL_PATTERN";

  /**
   * Describe a pattern the worker refuses.
   *
   * @param message what is wrong and what to change
   */
  constructor(message: string) {
    super(message);
    this.name = "ControlPatternError";
  }
}

/**
 * A message used a content type the receiver refuses to decode, such as
 * `application/x-python-serialize` (pickle) or `application/x-yaml`.
 *
 * The Python name of this condition is `kombu.exceptions.ContentDisallowed`.
 *
 * @example
 * ```ts
 * import { ContentDisallowedError, deserialize } from "@celeriac/celeriac/protocol";
 * try {
 *   deserialize(new Uint8Array([0x80]), "application/x-python-serialize", "binary");
 * } catch (err) {
 *   console.assert(err instanceof ContentDisallowedError);
 * }
 * ```
 */
export class ContentDisallowedError extends ProtocolError {
  /** Stable code for programmatic checks. */
  override readonly code: string = "CONTENT_DISALLOWED";
  /** The refused MIME type. */
  readonly contentType: string;
  /** Python sees it as `kombu.exceptions.ContentDisallowed` (see `exceptionInfo`). */
  readonly excType: string = "ContentDisallowed";
  /** The Python module of {@link ContentDisallowedError.excType}. */
  readonly excModule: string = "kombu.exceptions";

  /**
   * Describe a refused content type.
   *
   * @param contentType the refused MIME type
   * @param options the task id (if known)
   */
  constructor(contentType: string, options: { taskId?: string } = {}) {
    const which = options.taskId ? ` (task ${options.taskId})` : "";
    // A producer that is not Celery may send no content type at all: say so, not "of type ".
    const what = contentType
      ? `content of type ${contentType}`
      : "a message without a content type";
    super(
      `Refusing to deserialize ${what}${which}: ` +
        `Celeriac accepts only application/json and application/x-msgpack; ` +
        `send the task with serializer "json" or "msgpack"` +
        (contentType ? "" : ` (content_type "application/json" for a producer that is not Celery)`),
      options,
    );
    this.name = "ContentDisallowedError";
    this.contentType = contentType;
  }
}

/**
 * A value cannot be encoded for the wire (a cycle, raw bytes in JSON, a
 * function, ...). `path` says where in the value it is.
 *
 * @example
 * ```ts
 * import { EncodeError } from "@celeriac/celeriac";
 * import { pyJsonDumps } from "@celeriac/celeriac/protocol";
 * try {
 *   pyJsonDumps({ when: [1, () => 2] });
 * } catch (err) {
 *   console.assert(err instanceof EncodeError && err.path === "when[1]");
 * }
 * ```
 */
export class EncodeError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "ENCODE";
  /**
   * Where in the value the offending part is, e.g. `args[1].when` or
   * `kwargs.callback`; `""` for the value itself.
   */
  readonly path: string;
  /** What cannot be encoded and what to do instead, without the path. */
  readonly reason: string;

  /**
   * Describe a value that cannot be encoded.
   *
   * @param message what cannot be encoded and what to do instead
   * @param options `path`: where in the value (default `""`, the value itself)
   */
  constructor(message: string, options: { path?: string } = {}) {
    const path = options.path ?? "";
    super(path ? `Cannot encode ${path}: ${message}` : message);
    this.name = "EncodeError";
    this.path = path;
    this.reason = message;
  }
}
