/**
 * Passwords masked in URL text, for log lines and error messages: every URL
 * of a Sentinel or Cluster list, a password holding any character, and
 * `password=` query parameters.
 *
 * @module
 */

/**
 * Replace every password in a URL with `***`: the user-info password of
 * each URL in a list (`sentinel://:a@h1;sentinel://:b@h2`, cluster seed
 * lists), one that holds unencoded characters (`@ / ? # , ;` or spaces), and
 * `password=` / `sentinel_password=` query parameters.
 *
 * A URL runs to where the next one begins (a scheme after a `;`, `,`, space
 * or the like), so a `,`, `;` or space in a password does not end it, and its
 * password runs to the last `@` before there. A URL without a password but with an `@` in its
 * path or query is masked from its port on: too much rather than too little.
 *
 * @example
 * ```ts
 * import { maskPassword } from "@celeriac/celeriac/protocol";
 * maskPassword("redis://:secret@host:6379/0"); // "redis://:***@host:6379/0"
 * maskPassword("redis://:sec,ret@host:6379/0"); // "redis://:***@host:6379/0"
 * maskPassword("redis://:pw@h:6379/0", { mask: "**" }); // "redis://:**@h:6379/0"
 * ```
 *
 * @param url any URL text
 * @param options `mask`: what replaces a password (default `***`)
 * @returns the URL without its password
 */
export function maskPassword(url: string, options: { mask?: string } = {}): string {
  const mask = options.mask ?? "***";
  const starts = [...url.matchAll(URL_START)].map((m) => m.index);
  let out = maskQuery(url.slice(0, starts[0] ?? url.length), mask);
  starts.forEach((start, i) => {
    const piece = url.slice(start, starts[i + 1] ?? url.length);
    // The separator before the next URL ("; ", ",") is no part of this one.
    const [separator] = i + 1 < starts.length ? /[;,\s]*$/.exec(piece)! : [""];
    out += maskOne(piece.slice(0, piece.length - separator.length), mask) + separator;
  });
  return out;
}

/** Where a URL begins: a scheme not glued to the text before it (as `a://` in a password is). */
const URL_START = /(?<![\w+.\-:/@%])[a-z][a-z0-9+.-]*:\/\//gi;

/** One URL (from its scheme on) with its passwords masked. */
function maskOne(one: string, mask: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(one)![0];
  const rest = one.slice(scheme.length);
  // The user info ends at the last "@": a password may hold any character, an unencoded
  // @ / ? # , ; or space too (new URL() refuses some, and its error message shows them).
  const at = rest.lastIndexOf("@");
  const colon = rest.slice(0, Math.max(at, 0)).indexOf(":");
  const masked = at < 0 || colon < 0
    ? one
    : scheme + rest.slice(0, colon + 1) + mask + rest.slice(at);
  return maskQuery(masked, mask);
}

/** `password=` and `sentinel_password=` query values masked, each to the next `&`. */
function maskQuery(text: string, mask: string): string {
  return text.replace(/([?&][a-z_]*password=)[^&]*/gi, (_all, key: string) => key + mask);
}
