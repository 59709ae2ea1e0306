/**
 * Python's `fnmatch.fnmatchcase` (kombu's glob matcher for remote-control
 * patterns) without regular expressions: a request's pattern is written by
 * whoever can publish to the pidbox, and a regular expression built from it
 * (`*` as `.*`) backtracks exponentially on runs of `*` that end in a
 * mismatch, holding the worker's main thread for good. This matcher takes at
 * most (pattern length × name length) steps.
 *
 * @module
 */

/** One piece of a glob: any run of characters, any one, one in a set, or this one. */
type Token =
  | { kind: "star" }
  | { kind: "any" }
  | { kind: "set"; negated: boolean; chars: Set<string>; ranges: [string, string][] }
  | { kind: "char"; char: string };

/**
 * The set that opens at `chars[open]` (`[`): its end (the index of its `]`),
 * or -1 when none closes it (the `[` is then a plain character). A `]` right
 * after `[` or `[!` belongs to the set, as in fnmatch.
 */
function setEnd(chars: string[], open: number): number {
  let j = open + 1;
  if (chars[j] === "!") j++;
  if (chars[j] === "]") j++;
  while (j < chars.length && chars[j] !== "]") j++;
  return j < chars.length ? j : -1;
}

/**
 * The members of a set: its first character is always a member (even `-`
 * or `]`); `a-z` is a range unless the `-` ends the set or follows a range;
 * a range whose ends are out of order holds nothing (fnmatch drops it).
 */
function setToken(members: string[]): Token {
  const negated = members[0] === "!";
  const body = negated ? members.slice(1) : members;
  const chars = new Set<string>();
  const ranges: [string, string][] = [];
  let k = 0;
  while (k < body.length) {
    if (k + 2 < body.length && body[k + 1] === "-") {
      if (body[k] <= body[k + 2]) ranges.push([body[k], body[k + 2]]);
      k += 3;
    } else {
      chars.add(body[k]);
      k++;
    }
  }
  return { kind: "set", negated, chars, ranges };
}

function tokens(pattern: string[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") {
      // A run of `*` matches what one does.
      if (out.at(-1)?.kind !== "star") out.push({ kind: "star" });
    } else if (c === "?") out.push({ kind: "any" });
    else if (c === "[" && setEnd(pattern, i) !== -1) {
      const end = setEnd(pattern, i);
      out.push(setToken(pattern.slice(i + 1, end)));
      i = end;
    } else out.push({ kind: "char", char: c });
  }
  return out;
}

function matchesOne(token: Token, c: string): boolean {
  switch (token.kind) {
    case "any":
      return true;
    case "char":
      return token.char === c;
    case "set": {
      const inSet = token.chars.has(c) || token.ranges.some(([lo, hi]) => lo <= c && c <= hi);
      return inSet !== token.negated;
    }
    case "star":
      return false;
  }
}

/**
 * Whether `name` matches the glob `pattern` as Python's
 * `fnmatch.fnmatchcase` decides it: `*` any run of characters (newlines
 * too), `?` any one, `[seq]` one in the set (`a-z` ranges), `[!seq]` one not
 * in it, a `[` that no `]` closes a plain character; case-sensitive, by code
 * point.
 *
 * @example
 * ```ts
 * import { globMatch } from "./glob.ts";
 * globMatch("celeriac@*", "celeriac@host"); // true
 * globMatch("celeriac@[!h]ost", "celeriac@host"); // false
 * ```
 *
 * @param pattern the glob
 * @param name the text to match in full
 * @returns whether it matches
 */
export function globMatch(pattern: string, name: string): boolean {
  const toks = tokens(Array.from(pattern));
  const text = Array.from(name);
  // Two pointers: on a mismatch, go back to the last `*` and let it take one
  // more character. Each token but `*` takes exactly one character, so the
  // last `*` is the only one worth retrying.
  let t = 0;
  let p = 0;
  let star = -1;
  let starAt = 0;
  while (t < text.length) {
    const tok = toks[p];
    if (tok?.kind === "star") {
      star = p++;
      starAt = t;
    } else if (tok && matchesOne(tok, text[t])) {
      p++;
      t++;
    } else if (star !== -1) {
      p = star + 1;
      t = ++starAt;
    } else return false;
  }
  while (toks[p]?.kind === "star") p++;
  return p === toks.length;
}
