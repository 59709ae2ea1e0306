/**
 * {@link pyJsonLoadsFloats}: JSON as Python wrote it, whole floats kept as
 * {@link PyFloat} (`2.0` stays a float), for what is shown again as Python
 * shows it: the command line's remote-control replies.
 *
 * @module
 */

import { PyFloat } from "./json.ts";
import { pyJsonLoads } from "./json_decode.ts";

/** A number token as Python's `json.loads` reads it: `2.0` a float, a long integer a bigint. */
function pythonNumber(_key: string, value: unknown, ctx?: { source?: string }): unknown {
  const source = ctx?.source;
  if (typeof value !== "number" || source === undefined) return value;
  if (/[.eE]/.test(source)) return Number.isInteger(value) ? new PyFloat(value) : value;
  return Number.isSafeInteger(value) ? value : BigInt(source);
}

/**
 * {@link pyJsonLoads}, but a whole number written as a float (`2.0`,
 * `1e3`) comes back as a {@link PyFloat}, so that printing it again (with
 * `jsonText` or `pyJsonDumps`) writes `2.0` as Python's `json.dumps` does,
 * not `2`. Text with Python's `NaN` / `Infinity` tokens, kombu's typed
 * wrappers, or nested too deep for the reviver is read by
 * {@link pyJsonLoads} (its whole floats as numbers).
 *
 * @example
 * ```ts
 * import { PyFloat } from "./json.ts";
 * import { pyJsonLoadsFloats } from "./json_floats.ts";
 * const reply = pyJsonLoadsFloats('{"timeouts": [0, 2.0]}') as { timeouts: unknown[] };
 * reply.timeouts[1] instanceof PyFloat; // true
 * Number(reply.timeouts[1]); // 2
 * ```
 *
 * @param text JSON text
 * @returns the decoded value
 * @throws {ProtocolError} as {@link pyJsonLoads}
 */
export function pyJsonLoadsFloats(text: string): unknown {
  if (text.includes('"__type__"')) return pyJsonLoads(text);
  try {
    return JSON.parse(text, pythonNumber);
  } catch (err) {
    if (!(err instanceof SyntaxError) && !(err instanceof RangeError)) throw err;
    return pyJsonLoads(text);
  }
}
