/**
 * Yes/no words as Celery's and kombu's `strtobool` read them, in any case:
 * `true`/`yes`/`on`/`1` and `false`/`no`/`off`/`0`. Pure.
 *
 * @module
 */

const WORDS: Readonly<Record<string, boolean>> = {
  true: true,
  yes: true,
  on: true,
  "1": true,
  false: false,
  no: false,
  off: false,
  "0": false,
};

/**
 * A yes/no word read as `strtobool` reads it (any case); `undefined` for
 * any other word.
 *
 * @example
 * ```ts
 * import { yesNo } from "./yes_no.ts";
 * yesNo("Yes"); // true
 * yesNo("off"); // false
 * yesNo("maybe"); // undefined
 * ```
 *
 * @param word the word
 * @returns true, false, or `undefined` when it is no yes/no word
 */
export function yesNo(word: string): boolean | undefined {
  const key = word.toLowerCase();
  return Object.hasOwn(WORDS, key) ? WORDS[key] : undefined;
}
