/**
 * Authentication of dashboard requests: HTTP Basic (`--basic-auth
 * user:pass`, several allowed) or a bearer token (`--token`, sent as
 * `Authorization: Bearer …` by scripts and Prometheus; browsers, which
 * cannot send one, give it as the Basic password with any user name). Pure.
 *
 * @module
 */

import { DashboardOptionsError, HttpError } from "./errors.ts";

/**
 * Who may use the dashboard.
 *
 * @example
 * ```ts
 * import type { AuthOptions } from "@celeriac/celeriac/dashboard";
 * const auth: AuthOptions = { basic: ["admin:s3cret"], token: "a-long-random-string" };
 * ```
 */
export interface AuthOptions {
  /** `user:password` pairs accepted by HTTP Basic authentication. */
  basic?: readonly string[];
  /** A bearer token accepted in `Authorization: Bearer <token>`. */
  token?: string;
}

const enc = new TextEncoder();

/**
 * Compare two strings in time that does not depend on where they differ.
 *
 * @param a one
 * @param b the other
 * @returns whether they are equal
 */
export function safeEqual(a: string, b: string): boolean {
  const x = enc.encode(a), y = enc.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/**
 * Check `user:pass` pairs and the token for use.
 *
 * @example
 * ```ts
 * import { validateAuth } from "@celeriac/celeriac/dashboard";
 * validateAuth({ basic: ["admin:pw"] }); // ok
 * ```
 *
 * @param auth the options
 * @throws {DashboardOptionsError} for a pair without `:`, an empty user or password, or a token
 *   under 16 characters
 */
export function validateAuth(auth: AuthOptions): void {
  for (const pair of auth.basic ?? []) {
    const i = pair.indexOf(":");
    if (i <= 0 || i === pair.length - 1) {
      const shown = pair.replace(/:.*/, ":…");
      throw new DashboardOptionsError(
        "basic",
        (n) => `${n.basic.name} needs user:password, got "${shown}"`,
      );
    }
  }
  if (auth.token !== undefined && auth.token.length < 16) {
    throw new DashboardOptionsError(
      "token",
      (n) => `${n.token.name} needs at least 16 characters (use a long random string)`,
    );
  }
}

/**
 * Check that the dashboard may listen on `hostname` with `auth`: off the
 * loopback interface it needs authentication.
 *
 * @example
 * ```ts
 * import { checkListenAuth } from "@celeriac/celeriac/dashboard";
 * checkListenAuth("127.0.0.1", {}); // ok
 * checkListenAuth("0.0.0.0", { token: "a-long-random-string" }); // ok
 * ```
 *
 * @param hostname the listen address
 * @param auth the options
 * @throws {DashboardOptionsError} off the loopback interface without authentication
 */
export function checkListenAuth(hostname: string, auth: AuthOptions): void {
  if (isLoopback(hostname) || authRequired(auth)) return;
  throw new DashboardOptionsError(
    "hostname",
    (n) =>
      `${n.hostname.name} ${hostname} is off the loopback interface: the dashboard needs ` +
      `authentication there, pass ${n.basic.example} or ${n.token.example}`,
  );
}

/**
 * Whether authentication is configured at all.
 *
 * @param auth the options
 * @returns true with a basic pair or a token
 */
export function authRequired(auth: AuthOptions): boolean {
  return (auth.basic?.length ?? 0) > 0 || auth.token !== undefined;
}

/**
 * Check a request's `Authorization` header.
 *
 * @example
 * ```ts
 * import { checkAuth } from "@celeriac/celeriac/dashboard";
 * const req = new Request("http://x/", { headers: { authorization: "Basic " + btoa("admin:pw") } });
 * checkAuth(req, { basic: ["admin:pw"] }); // passes
 * ```
 *
 * @param req the request
 * @param auth the options
 * @throws {HttpError} 401 `unauthorized` when credentials are missing or wrong
 */
export function checkAuth(req: Request, auth: AuthOptions): void {
  if (!authRequired(auth)) return;
  const header = req.headers.get("authorization") ?? "";
  const [scheme, value = ""] = header.split(" ", 2);
  if (scheme?.toLowerCase() === "basic") {
    let decoded = "";
    try {
      decoded = new TextDecoder().decode(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)));
    } catch {
      decoded = "";
    }
    let ok = false;
    for (const pair of auth.basic ?? []) ok = safeEqual(decoded, pair) || ok;
    // a browser has no way to send a bearer token: the token as password works too
    const password = decoded.slice(decoded.indexOf(":") + 1);
    if (auth.token !== undefined && decoded.includes(":")) {
      ok = safeEqual(password, auth.token) || ok;
    }
    if (ok) return;
  }
  if (scheme?.toLowerCase() === "bearer" && auth.token !== undefined) {
    if (safeEqual(value, auth.token)) return;
  }
  throw new HttpError(
    401,
    "unauthorized",
    header ? "Wrong credentials" : "Authentication required (HTTP Basic or a bearer token)",
  );
}

/**
 * Whether a listen address is the loopback interface.
 *
 * @example
 * ```ts
 * import { isLoopback } from "@celeriac/celeriac/dashboard";
 * isLoopback("127.0.0.1"); // true
 * isLoopback("0.0.0.0"); // false
 * ```
 *
 * @param hostname the address
 * @returns true for 127.0.0.0/8, ::1 and localhost
 */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || hostname === "[::1]" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
