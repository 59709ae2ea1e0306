/**
 * What is wrong with a broker URL that the URL parser refused, for the
 * error message: a port out of range or not a number (`redis://host:63790`,
 * `:6379x`), or a password with an unencoded `/`, `?` or `#`, which
 * `new URL()` only calls invalid.
 *
 * @module
 */

const AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/i;

/**
 * Why `new URL(url)` refused a URL, when it is its port or a user info
 * holding a character to percent-encode; else `null`.
 *
 * @example
 * ```ts
 * import { urlPortProblem } from "./url_syntax.ts";
 * urlPortProblem("redis://127.0.0.1:99999/0"); // 'port 99999 is out of range (1-65535)'
 * urlPortProblem("redis://127.0.0.1:6379/0"); // null
 * ```
 *
 * @param url the URL as given
 * @returns the problem with its port or user info, or `null`
 */
export function urlPortProblem(url: string): string | null {
  const rest = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const at = rest.lastIndexOf("@");
  if (at >= 0 && /[/?#]/.test(rest.slice(0, at))) {
    return "a user name or password holding / ? # or @ must be percent-encoded " +
      "(encodeURIComponent in JavaScript, urllib.parse.quote in Python)";
  }
  const port = AUTHORITY.exec(url)?.[2];
  if (port === undefined || port === "") return null;
  if (!/^\d+$/.test(port)) return `port "${port}" is not a number`;
  return Number(port) > 65535 ? `port ${port} is out of range (1-65535)` : null;
}
