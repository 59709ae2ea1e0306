/**
 * Errors raised by transports.
 *
 * @module
 */

/**
 * The broker or result store cannot be reached, or dropped the connection.
 *
 * @example
 * ```ts
 * import { BrokerConnectionError } from "@celeriac/celeriac";
 * const err = new BrokerConnectionError("redis://127.0.0.1:6379/0", new Error("ECONNREFUSED"));
 * console.assert(err.code === "BROKER_CONNECTION");
 * ```
 */
export class BrokerConnectionError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "BROKER_CONNECTION";
  /** The URL (password removed) that could not be reached. */
  readonly url: string;
  /**
   * Whether trying again later may succeed (the server is down or
   * unreachable), as opposed to a setting to change first (a wrong password,
   * a database that does not exist, Deno KV not enabled).
   */
  readonly transient: boolean;

  /**
   * Describe a server that cannot be reached.
   *
   * @param url the URL that failed (its password is masked in the message)
   * @param cause the underlying error
   * @param explained what went wrong in words (default: the cause's message),
   *   what to change (default: check that the server runs and the URL is right),
   *   and whether trying again may help (default true)
   */
  constructor(
    url: string,
    cause?: unknown,
    explained: { reason?: string; hint?: string; transient?: boolean } = {},
  ) {
    const safe = maskPassword(url);
    const reason = explained.reason ?? (cause instanceof Error ? cause.message : undefined);
    const why = reason ? `: ${reason.replace(/\.+$/, "")}` : "";
    const hint = explained.hint ??
      "Check that the server runs and the URL is right";
    super(
      `Cannot connect to ${safe}${why}. ${hint} ` +
        `(--broker / CELERY_BROKER_URL, --backend / CELERY_RESULT_BACKEND)`,
      { cause },
    );
    this.name = "BrokerConnectionError";
    this.url = safe;
    this.transient = explained.transient ?? true;
  }
}

/**
 * Replace every password in a URL with `***`: the user-info password of
 * each URL in a list (`sentinel://:a@h1;sentinel://:b@h2`, cluster seed
 * lists), one that holds an unencoded `@`, and `password=` /
 * `sentinel_password=` query parameters.
 *
 * @example
 * ```ts
 * import { maskPassword } from "@celeriac/celeriac/protocol";
 * maskPassword("redis://:secret@host:6379/0"); // "redis://:***@host:6379/0"
 * ```
 *
 * @param url any URL text
 * @returns the URL without its password
 */
export function maskPassword(url: string): string {
  return url
    .replace(
      /([a-z][a-z0-9+.-]*:\/\/)([^/?#;,\s]*)/gi,
      (_all, scheme: string, authority: string) => {
        const at = authority.lastIndexOf("@");
        if (at < 0) return scheme + authority;
        const userinfo = authority.slice(0, at);
        const colon = userinfo.indexOf(":");
        if (colon < 0) return scheme + authority;
        return scheme + userinfo.slice(0, colon + 1) + "***" + authority.slice(at);
      },
    )
    .replace(/([?&][a-z_]*password=)[^&;,\s]*/gi, "$1***");
}
