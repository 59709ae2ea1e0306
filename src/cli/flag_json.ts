/**
 * Command-line flags whose value is JSON (`--args '[2, 3]'`,
 * `--kwargs '{"x": 1}'`), read for `call` and `schedule add` alike, as
 * Celery's `json.loads` reads them: an integer beyond 2^53 stays exact (a
 * `bigint`) and a float literal stays a float (`1.0` a `PyFloat`).
 *
 * @module
 */

import { pyJsonLoadsFloats } from "../protocol/json_floats.ts";
import { UsageError } from "./exit_codes.ts";

/**
 * A flag's JSON value; `undefined` when the flag is absent.
 *
 * @example
 * ```ts
 * import { jsonFlag } from "./flag_json.ts";
 * jsonFlag("[2, 3]", "--args"); // [2, 3]
 * jsonFlag("[12345678901234567890, 1.0]", "--args"); // [12345678901234567890n, PyFloat(1)]
 * jsonFlag(undefined, "--args"); // undefined
 * ```
 *
 * @param value the flag's text
 * @param flag the flag, for the message
 * @returns the parsed value
 * @throws {UsageError} naming the flag and the parser's complaint when the text is not JSON
 */
export function jsonFlag(value: string | boolean | undefined, flag: string): unknown {
  if (value === undefined) return undefined;
  try {
    return pyJsonLoadsFloats(String(value));
  } catch (err) {
    throw new UsageError(
      `${flag} needs JSON, e.g. ${flag} '[1, 2]', got ${value}: ${(err as Error).message}`,
    );
  }
}
