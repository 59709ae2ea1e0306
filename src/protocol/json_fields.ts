/**
 * The top-level fields of a JSON object as raw text, without decoding the
 * values: for rewriting a few fields of a document (a result meta into an
 * rpc:// message) at the cost of a scan instead of a parse and an encode.
 *
 * @module
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** Index after the string starting at `i` (a quote); -1 when it does not end. */
function skipString(text: string, i: number): number {
  let from = i + 1;
  while (true) {
    const end = text.indexOf('"', from);
    if (end < 0) return -1;
    let slashes = 0;
    while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return end + 1;
    from = end + 1;
  }
}

/** Index after the array or object starting at `i`; -1 when it does not end. */
function skipNested(text: string, i: number): number {
  let depth = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = skipString(text, i);
      if (i < 0) return -1;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) return i + 1;
    }
    i++;
  }
  return -1;
}

/** Index after the value starting at `i`; -1 when there is none. */
function skipValue(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return skipString(text, i);
  if (c === OPEN_BRACE || c === OPEN_BRACKET) return skipNested(text, i);
  let j = i;
  while (j < text.length) {
    const d = text.charCodeAt(j);
    if (d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || isSpace(d)) break;
    j++;
  }
  return j > i ? j : -1;
}

/** Which of `keys` the key between `from` (after its opening quote) and `end` (its closing one) is; -1 for none. */
function keyIndex(text: string, from: number, end: number, keys: readonly string[]): number {
  for (let k = 0; k < keys.length; k++) {
    if (keys[k].length === end - from && text.startsWith(keys[k], from)) return k;
  }
  return -1;
}

/**
 * The raw text of some top-level fields of a JSON object. Values are
 * delimited, not validated: this is for text a JSON encoder wrote.
 *
 * @example
 * ```ts
 * import { jsonFields } from "./json_fields.ts";
 * const text = '{"status": "SUCCESS", "result": [1, {"a": "}"}], "task_id": "t1"}';
 * jsonFields(text, ["result", "task_id", "children"]); // ['[1, {"a": "}"}]', '"t1"', undefined]
 * jsonFields("[1, 2]", ["a"]); // null
 * ```
 *
 * @param text JSON text of an object
 * @param keys the keys wanted
 * @returns the raw text of each wanted key's value (the last one when a
 *   key repeats, as JSON decoders keep), `undefined` for an absent key;
 *   null when `text` is not an object, ends early, or has a key with
 *   escapes (its name would need decoding)
 */
export function jsonFields(text: string, keys: readonly string[]): (string | undefined)[] | null {
  const found = new Array<string | undefined>(keys.length).fill(undefined);
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) return null;
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === CLOSE_BRACE) {
    return skipSpace(text, i + 1) === text.length ? found : null;
  }
  while (true) {
    if (text.charCodeAt(i) !== QUOTE) return null;
    const keyEnd = skipString(text, i);
    if (keyEnd < 0) return null;
    for (let j = i + 1; j < keyEnd - 1; j++) if (text.charCodeAt(j) === BACKSLASH) return null;
    const k = keyIndex(text, i + 1, keyEnd - 1, keys);
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) return null;
    i = skipSpace(text, i + 1);
    const end = skipValue(text, i);
    if (end < 0) return null;
    if (k >= 0) found[k] = text.slice(i, end);
    i = skipSpace(text, end);
    const c = text.charCodeAt(i);
    if (c === CLOSE_BRACE) return skipSpace(text, i + 1) === text.length ? found : null;
    if (c !== COMMA) return null;
    i = skipSpace(text, i + 1);
  }
}
