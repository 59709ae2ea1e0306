/**
 * The Redis servers' database and credentials of a `sentinel://` URL list
 * (`sentinel://h1:26379/0;sentinel://h2:26379?master_name=m`), read as
 * kombu and Celery read them: from the first URL only.
 *
 * @module
 */

import { maskPassword } from "./errors.ts";

/**
 * The Redis servers' database and credentials one `sentinel://` part names.
 *
 * @example
 * ```ts
 * import type { SentinelPartServer } from "./redis_sentinel_url.ts";
 * const server: SentinelPartServer = { db: 1, password: "pw" }; // sentinel://:pw@h1:26379/1
 * ```
 */
export interface SentinelPartServer {
  /** The path's database number; none when the part has no path. */
  db?: number;
  /** The ACL user before the host, if any. */
  username?: string;
  /** The password before the host, if any. */
  password?: string;
}

/**
 * The database and credentials of the first `sentinel://` part, as kombu's
 * broker and Celery's Sentinel result backend read them (a later part's
 * are ignored there). A later part naming others is refused, as the same
 * URL would reach another database or fail to log in from Python.
 *
 * @example
 * ```ts
 * import { firstPartServer } from "./redis_sentinel_url.ts";
 * const parts = ["sentinel://h1:26379/1", "sentinel://h2:26379?master_name=m"];
 * firstPartServer([{ db: 1 }, {}], parts, parts.join(";")); // { db: 1 }
 * // [{}, { db: 1 }] throws: `... write them on the first URL only, e.g.
 * // "sentinel://h1:26379/1;sentinel://h2:26379?master_name=m"`
 * ```
 *
 * @param servers each part's database and credentials, in the URL's order
 * @param parts the `sentinel://` parts, as written
 * @param url the whole URL, for the message
 * @returns the first part's
 * @throws {TypeError} when a later part names another database, password or user
 */
export function firstPartServer(
  servers: SentinelPartServer[],
  parts: string[],
  url: string,
): SentinelPartServer {
  const first = servers[0];
  const differs = servers.slice(1).findIndex((s) =>
    (s.db !== undefined && s.db !== (first.db ?? 0)) ||
    (s.password !== undefined && s.password !== first.password) ||
    (s.username !== undefined && s.username !== first.username)
  );
  if (differs === -1) return first;
  const other = servers[differs + 1];
  const server = {
    db: first.db ?? other.db,
    username: first.username ?? other.username,
    password: first.password ?? other.password,
  };
  throw new TypeError(
    `Sentinel URL "${maskPassword(url)}" names the Redis database or credentials in "${
      maskPassword(parts[differs + 1])
    }", not in its first sentinel:// URL, where Celery and kombu read them (a later URL's ` +
      `are ignored there, so Python would use another database): write them on the first ` +
      `URL only, e.g. "${maskPassword(rewriteSentinelParts(parts, server))}"`,
  );
}

/** `parts` joined again with `server` on the first and no database or credentials on the rest. */
function rewriteSentinelParts(parts: string[], server: SentinelPartServer): string {
  const queries = parts.map((part) => new URL(part).search.replace(/^\?/, "")).filter((q) => q);
  const query = queries.length === 0 ? "" : `?${queries.join("&")}`;
  return parts.map((part, i) => {
    const u = new URL(part);
    const search = i === parts.length - 1 ? query : "";
    const auth = i > 0 || (server.username === undefined && server.password === undefined)
      ? ""
      : `${server.username === undefined ? "" : encodeURIComponent(server.username)}${
        server.password === undefined ? "" : `:${encodeURIComponent(server.password)}`
      }@`;
    const db = i > 0 || server.db === undefined ? "" : `/${server.db}`;
    return `sentinel://${auth}${u.host}${db}${search}`;
  }).join(";");
}

/**
 * For kombu's comma-joined form of another transport
 * (`sentinel://h1:26379,h2:26379/0?...`), which kombu's Sentinel transport
 * does not read: what to write instead, one `sentinel://` URL per Sentinel
 * joined with `;` (password masked); `undefined` for any other URL.
 *
 * @example
 * ```ts
 * import { commaJoinedAsParts } from "./redis_sentinel_url.ts";
 * commaJoinedAsParts("sentinel://h1:26379,h2:26379/0?master_name=m");
 * // 'one sentinel:// URL per Sentinel, joined with ; (not ,):
 * //  "sentinel://h1:26379/0;sentinel://h2:26379?master_name=m"'
 * ```
 *
 * @param part one `;`-part of a Sentinel URL
 * @returns the advice, or `undefined` when `part` has no comma in its authority
 */
export function commaJoinedAsParts(part: string): string | undefined {
  const m = /^sentinel:\/\/(?:([^@/?#]*)@)?([^/?#]*,[^/?#]*)(\/[^?#]*)?(.*)$/i.exec(part);
  if (!m) return undefined;
  const [, auth, hosts, path, rest] = m;
  const parts = hosts.split(",").filter((h) => h.trim() !== "").map((host, i, all) =>
    `sentinel://${i === 0 && auth !== undefined ? `${auth}@` : ""}${host.trim()}${
      i === 0 ? path ?? "" : ""
    }${i === all.length - 1 ? rest : ""}`
  );
  return `one sentinel:// URL per Sentinel, joined with ; (not ,): "${
    maskPassword(parts.join(";"))
  }"`;
}

/**
 * The query options of every `sentinel://` part, merged (an option may be
 * written on any part, e.g. `?master_name=` on the last). An option two
 * parts give different values is refused: which one to use is a guess.
 *
 * @example
 * ```ts
 * import { mergedPartQueries } from "./redis_sentinel_url.ts";
 * const parts = ["sentinel://h1:26379", "sentinel://h2:26379?master_name=m"];
 * mergedPartQueries(parts.map((p) => [...new URL(p).searchParams]), parts.join(";"));
 * // [["master_name", "m"]]
 * ```
 *
 * @param queries each part's query options, in the URL's order
 * @param url the whole URL, for the message
 * @returns the options of all parts
 * @throws {TypeError} when two parts give one option different values
 */
export function mergedPartQueries(
  queries: [string, string][][],
  url: string,
): [string, string][] {
  const seen = new Map<string, string>();
  for (const query of queries) {
    for (const [key, value] of new Map(query)) {
      const earlier = seen.get(key);
      if (earlier !== undefined && earlier !== value) {
        throw new TypeError(
          `Sentinel URL "${
            maskPassword(url)
          }" gives ?${key}= twice with different values ("${earlier}" and "${value}"): ` +
            `write it once, on one sentinel:// part`,
        );
      }
      seen.set(key, value);
    }
  }
  return [...seen];
}
