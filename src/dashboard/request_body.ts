/**
 * The body of a dashboard action (`POST /api/...`): JSON, read only up to a
 * size, so that a client cannot make the dashboard hold a body of any size.
 *
 * @module
 */

import { joinBytes } from "../protocol/bytes.ts";
import { HttpError } from "./errors.ts";

/**
 * The largest action body read, bytes: a larger one is answered 413 (by its Content-Length,
 * or once that much is read of a body sent in chunks). Actions are small JSON objects.
 *
 * @example
 * ```ts
 * import { MAX_BODY_BYTES } from "./request_body.ts";
 * MAX_BODY_BYTES; // 65536
 * ```
 */
export const MAX_BODY_BYTES = 64 * 1024;

function tooLarge(): HttpError {
  return new HttpError(
    413,
    "body_too_large",
    `Action bodies are at most ${MAX_BODY_BYTES} bytes: send only the action's fields`,
  );
}

/** The body as text, refused (413) past MAX_BODY_BYTES: by its Content-Length, or once read. */
async function bodyText(req: Request): Promise<string> {
  const length = Number(req.headers.get("content-length") ?? 0);
  if (length > MAX_BODY_BYTES) throw tooLarge();
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(joinBytes(chunks));
}

/**
 * An action's body: a JSON object (an empty body is `{}`), read up to {@link MAX_BODY_BYTES}.
 *
 * @example
 * ```ts
 * import { jsonBody } from "./request_body.ts";
 * const req = new Request("http://localhost/", {
 *   method: "POST",
 *   body: '{"terminate":true}',
 *   headers: { "content-type": "application/json" },
 * });
 * (await jsonBody(req)).terminate; // true
 * ```
 *
 * @param req the request
 * @returns the object
 * @throws {HttpError} 415 when not JSON, 413 when too large, 400 when not a JSON object
 */
export async function jsonBody(req: Request): Promise<Record<string, unknown>> {
  const type = req.headers.get("content-type") ?? "";
  if (!type.includes("application/json")) {
    throw new HttpError(
      415,
      "content_type",
      "Send actions as JSON (Content-Type: application/json)",
    );
  }
  const text = await bodyText(req);
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "bad_json", `Body is not JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new HttpError(400, "bad_json", "Body must be a JSON object");
  }
  return value as Record<string, unknown>;
}
