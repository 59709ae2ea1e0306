/**
 * Which HTTP methods each dashboard path takes, for the `Allow` header of a
 * 405 (RFC 9110 §15.5.6 requires it): the API's action paths take POST, its
 * other routes, the pages and `/metrics` GET and HEAD (HEAD answered as GET
 * without the body, except where the GET has a cost: see {@link headOnly}). Pure.
 *
 * @module
 */

import { HttpError } from "./errors.ts";

/**
 * Headers every page and the live stream carry (no sniffing, no framing, no
 * referrer, this origin's scripts only).
 *
 * @example
 * ```ts
 * import { SECURITY_HEADERS } from "./http_methods.ts";
 * SECURITY_HEADERS["x-frame-options"]; // "DENY"
 * ```
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "content-security-policy":
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
};

/** API routes whose GET has a cost a HEAD must not pay, with their content type. */
const HEAD_ONLY: Readonly<Record<string, string>> = {
  // GET opens a live stream (and has task changes recorded for it).
  stream: "text/event-stream",
  // GET scans the broker's parked messages.
  parked: "application/json",
};

/**
 * The answer to a HEAD of an API route whose GET opens a stream or scans
 * the broker (`/api/stream`, `/api/parked`): its headers, without running
 * the GET; `undefined` for the others (HEAD is answered as their GET).
 *
 * @example
 * ```ts
 * import { headOnly } from "./http_methods.ts";
 * headOnly(["stream"])?.headers.get("content-type"); // "text/event-stream"
 * headOnly(["overview"]); // undefined
 * ```
 *
 * @param parts the path's parts (after `/api/`)
 * @returns a 200 without a body, or `undefined`
 */
export function headOnly(parts: readonly string[]): Response | undefined {
  if (parts.length !== 1 || !Object.hasOwn(HEAD_ONLY, parts[0])) return undefined;
  return new Response(null, {
    headers: {
      "content-type": HEAD_ONLY[parts[0]],
      "cache-control": "no-store",
      ...SECURITY_HEADERS,
    },
  });
}

/**
 * The worker actions of `POST /api/workers/:name/:action`.
 *
 * @example
 * ```ts
 * import { WORKER_ACTIONS } from "./http_methods.ts";
 * WORKER_ACTIONS.has("pool_grow"); // true
 * ```
 */
export const WORKER_ACTIONS: ReadonlySet<string> = new Set([
  "shutdown",
  "pool_grow",
  "pool_shrink",
  "autoscale",
  "add_consumer",
  "cancel_consumer",
  "rate_limit",
]);

const TASK_ACTIONS: ReadonlySet<string> = new Set(["revoke", "terminate", "retry"]);

/** The GET routes of the API with their lengths: `tasks` and `tasks/:id`, `overview`, … */
const GET_ROUTES: Readonly<Record<string, readonly number[]>> = {
  session: [1],
  overview: [1],
  stream: [1],
  workers: [1, 2],
  tasks: [1, 2],
  queues: [1],
  parked: [1],
};

/**
 * The methods an API path (after `/api/`, split) takes: `POST` for an
 * action, `GET, HEAD` for a route to read, `undefined` for no route.
 *
 * @example
 * ```ts
 * import { apiAllow } from "./http_methods.ts";
 * apiAllow(["tasks", "abc", "revoke"]); // "POST"
 * apiAllow(["overview"]); // "GET, HEAD"
 * apiAllow(["nothing"]); // undefined
 * ```
 *
 * @param parts the path's parts
 * @returns the `Allow` header's value
 */
export function apiAllow(parts: readonly string[]): string | undefined {
  const [head, id, action] = parts;
  const n = parts.length;
  if (
    (head === "tasks" && n === 3 && TASK_ACTIONS.has(action)) ||
    (head === "workers" && n === 3 && WORKER_ACTIONS.has(action)) ||
    (head === "queues" && n === 3 && action === "purge") ||
    (head === "parked" && n === 2 && id === "requeue")
  ) {
    return "POST";
  }
  return Object.hasOwn(GET_ROUTES, head) && GET_ROUTES[head].includes(n) ? "GET, HEAD" : undefined;
}

/**
 * A 405 whose answer carries `Allow`.
 *
 * @example
 * ```ts
 * import { methodNotAllowed } from "./http_methods.ts";
 * methodNotAllowed("PUT", "GET, HEAD").allow; // "GET, HEAD"
 * ```
 *
 * @param method the method refused
 * @param allow the methods the path takes
 * @returns the error to throw
 */
export function methodNotAllowed(method: string, allow: string): HttpError {
  const err = new HttpError(405, "method", `${method} is not allowed here: use ${allow}`);
  err.allow = allow;
  return err;
}
