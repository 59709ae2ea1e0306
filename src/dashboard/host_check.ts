/**
 * Which host names the dashboard answers, against DNS rebinding: a web page
 * whose domain the attacker re-resolves to 127.0.0.1 is same-origin with a
 * dashboard on the loopback interface, so without authentication only a
 * loopback `Host` (`localhost`, `127.x.x.x`, `[::1]`) and the names given in
 * `allowedHosts` (`--allowed-host`, for a reverse proxy) are answered, as
 * Jupyter does (`allow_remote_access`, `local_hostnames`). With
 * authentication the check applies only when `allowedHosts` is given: a
 * browser does not send the credentials it keeps for one host to another.
 * Pure.
 *
 * @module
 */

import { type AuthOptions, authRequired, isLoopback } from "./auth.ts";
import { DashboardOptionsError, HttpError } from "./errors.ts";

/** A host name, lower-cased, with its port when one is given ("" otherwise). */
interface HostPort {
  hostname: string;
  port: string;
}

/** `host` or `host:port` parsed as a URL's authority; null when it is none. */
function parseHost(value: string): HostPort | null {
  if (value === "" || /[\s/\\@?#]/.test(value)) return null;
  try {
    const u = new URL(`http://${value}`);
    return { hostname: u.hostname, port: u.port };
  } catch {
    return null;
  }
}

/**
 * The URL of a request as the server got it: Deno builds it from the `Host` header, so a
 * malformed one (`Host: a, b`, `Host: x y`) makes no URL.
 *
 * @example
 * ```ts
 * import { requestUrl } from "./host_check.ts";
 * requestUrl(new Request("http://127.0.0.1:5555/api/session")).pathname; // "/api/session"
 * ```
 *
 * @param req the request
 * @returns its URL
 * @throws {HttpError} 400 `bad_host` when the URL does not parse
 */
export function requestUrl(req: Request): URL {
  try {
    return new URL(req.url);
  } catch {
    throw new HttpError(
      400,
      "bad_host",
      `Host header ${JSON.stringify(req.headers.get("host") ?? "")} is no host name: ` +
        "send one host name or address, with an optional :port",
    );
  }
}

/**
 * Check the `allowedHosts` option: each a host name or `host:port`.
 *
 * @example
 * ```ts
 * import { validateAllowedHosts } from "./host_check.ts";
 * validateAllowedHosts(["dash.example.com", "10.0.0.5:8080"]); // ok
 * ```
 *
 * @param hosts the names
 * @throws {DashboardOptionsError} for an entry that is no host name (a URL, a path, empty)
 */
export function validateAllowedHosts(hosts: readonly string[]): void {
  for (const h of hosts) {
    if (parseHost(h) === null) {
      throw new DashboardOptionsError(
        "allowedHosts",
        (n) =>
          `${n.allowedHosts.name} needs a host name or host:port, got "${h}" ` +
          `(as ${n.allowedHosts.example})`,
      );
    }
  }
}

/**
 * Whether `host` (a `Host` header's value) is answered: a loopback name, or one of
 * `allowed` (an entry without a port allows every port).
 */
function hostAllowed(host: string, allowed: readonly HostPort[]): boolean {
  const h = parseHost(host);
  if (!h) return false;
  if (isLoopback(h.hostname)) return true;
  return allowed.some((a) => a.hostname === h.hostname && (a.port === "" || a.port === h.port));
}

/**
 * Check the host a request was sent to: its `Host` and, when a reverse proxy
 * sets it, the first `X-Forwarded-Host`. Without authentication, or with
 * `allowed` given, each must be a loopback name or one of `allowed`.
 *
 * @example
 * ```ts
 * import { checkHost } from "./host_check.ts";
 * const req = new Request("http://127.0.0.1:5555/api/session");
 * checkHost(req, [], {}); // passes
 * const proxied = new Request("http://dash.example.com/", { headers: { host: "dash.example.com" } });
 * checkHost(proxied, ["dash.example.com"], {}); // passes
 * ```
 *
 * @param req the request
 * @param allowed `allowedHosts`: names answered besides the loopback ones
 * @param auth the authentication options
 * @throws {HttpError} 403 `host_not_allowed` for a host that is neither
 */
export function checkHost(req: Request, allowed: readonly string[], auth: AuthOptions): void {
  if (allowed.length === 0 && authRequired(auth)) return;
  const parsed = allowed.map(parseHost).filter((h): h is HostPort => h !== null);
  const hosts = [req.headers.get("host") ?? new URL(req.url).host];
  const forwarded = req.headers.get("x-forwarded-host")?.split(",")[0].trim();
  if (forwarded) hosts.push(forwarded);
  for (const host of hosts) {
    if (hostAllowed(host, parsed)) continue;
    const name = parseHost(host)?.hostname ?? host;
    const answered = allowed.length > 0
      ? `loopback names (localhost, 127.0.0.1, [::1]) and ${allowed.join(", ")}`
      : "loopback names only (localhost, 127.0.0.1, [::1]), so that no other web site " +
        "can reach it by re-resolving its own domain to this machine (DNS rebinding)";
    throw new HttpError(
      403,
      "host_not_allowed",
      `Host ${JSON.stringify(host)} is not one this dashboard answers: it answers ${answered}. ` +
        `To use it under that name (a reverse proxy), start it with --allowed-host ${name} ` +
        `(allowedHosts in DashboardOptions)`,
    );
  }
}
