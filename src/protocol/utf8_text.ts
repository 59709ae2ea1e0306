/**
 * Message bodies as text, as kombu reads them (`bytes.decode("utf-8")`):
 * a leading byte-order mark (U+FEFF) is kept, so a JSON body that starts
 * with one is refused by the JSON decoder here as Python's json.loads
 * refuses it (`TextDecoder`'s default drops the BOM, and would accept what
 * Celery refuses).
 *
 * @module
 */

const lenient = new TextDecoder("utf-8", { ignoreBOM: true });
const strict = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });

/**
 * Bytes as UTF-8 text, keeping a leading BOM; invalid bytes become U+FFFD.
 *
 * @example
 * ```ts
 * import { utf8Text } from "./utf8_text.ts";
 * utf8Text(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])); // "\ufeffa"
 * ```
 *
 * @param bytes the bytes
 * @returns their text
 */
export function utf8Text(bytes: Uint8Array): string {
  return lenient.decode(bytes);
}

/**
 * The UTF-8 decoder of task bodies: keeps a leading BOM, throws a
 * `TypeError` on invalid bytes.
 *
 * @example
 * ```ts
 * import { STRICT_UTF8 } from "./utf8_text.ts";
 * STRICT_UTF8.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])); // "\ufeffa"
 * ```
 */
export const STRICT_UTF8: TextDecoder = strict;
