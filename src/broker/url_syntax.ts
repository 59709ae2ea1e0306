/**
 * What is wrong with a broker URL that the URL parser refused, for the
 * error message: a port out of range or not a number is the usual slip
 * (`redis://host:63790`, `:6379x`), which `new URL()` only calls invalid.
 *
 * @module
 */

const AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/i;

/**
 * Why `new URL(url)` refused a URL, when it is its port; else `null`.
 *
 * @example
 * ```ts
 * import { urlPortProblem } from "./url_syntax.ts";
 * urlPortProblem("redis://127.0.0.1:99999/0"); // 'port 99999 is out of range (1-65535)'
 * urlPortProblem("redis://127.0.0.1:6379/0"); // null
 * ```
 *
 * @param url the URL as given
 * @returns the problem with its port, or `null`
 */
export function urlPortProblem(url: string): string | null {
  const port = AUTHORITY.exec(url)?.[2];
  if (port === undefined || port === "") return null;
  if (!/^\d+$/.test(port)) return `port "${port}" is not a number`;
  return Number(port) > 65535 ? `port ${port} is out of range (1-65535)` : null;
}
