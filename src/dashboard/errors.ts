/**
 * Errors of the dashboard: {@link HttpError} carries the HTTP status and a
 * stable code, and is answered as `{"error": {"code", "message"}}`.
 *
 * @module
 */

/**
 * An API request that cannot be served as asked.
 *
 * @example
 * ```ts
 * import { HttpError } from "@celeriac/celeriac/dashboard";
 * const err = new HttpError(404, "unknown_task", "No task abc is known to the dashboard");
 * err.status; // 404
 * ```
 */
export class HttpError extends Error {
  /** Always `HttpError`. */
  override name = "HttpError";
  /** HTTP status, 4xx or 5xx. */
  readonly status: number;
  /** Stable machine-readable code, e.g. `unknown_task`, `bad_json`, `csrf`. */
  readonly code: string;

  /**
   * An error answered with `status`.
   *
   * @param status HTTP status
   * @param code stable code
   * @param message what happened and what to change
   */
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * The JSON error response of an error.
 *
 * @example
 * ```ts
 * import { errorResponse, HttpError } from "@celeriac/celeriac/dashboard";
 * errorResponse(new HttpError(400, "bad_json", "Body is not JSON")).status; // 400
 * ```
 *
 * @param err an HttpError, or anything else (answered 500)
 * @param headers extra headers
 * @returns the response
 */
export function errorResponse(err: unknown, headers: HeadersInit = {}): Response {
  const e = err instanceof HttpError
    ? err
    : new HttpError(500, "internal", `Internal error: ${(err as Error)?.message ?? String(err)}`);
  return Response.json({ error: { code: e.code, message: e.message } }, {
    status: e.status,
    headers,
  });
}
