/**
 * `GET /healthcheck`, as Flower's: answers `OK` for liveness probes. Open
 * (no authentication, any `Host`), as Flower's is: it tells nothing but that
 * the server answers. Pure.
 *
 * @module
 */

import { methodNotAllowed } from "./http_methods.ts";

/** The health check's path. */
const PATH = "/healthcheck";

/**
 * The answer to a request of the health check, or undefined for any other path.
 *
 * @example
 * ```ts
 * import { healthcheck } from "./healthcheck.ts";
 * await healthcheck("GET", "/healthcheck")!.text(); // "OK"
 * healthcheck("GET", "/api/session"); // undefined
 * ```
 *
 * @param method the request's method (a HEAD comes as GET: see the server's `handle`)
 * @param path the request's path
 * @returns `200 OK` as text, or undefined
 * @throws {HttpError} 405 for a method other than GET
 */
export function healthcheck(method: string, path: string): Response | undefined {
  if (path !== PATH) return undefined;
  if (method !== "GET") throw methodNotAllowed(method, "GET, HEAD");
  return new Response("OK", {
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
}
