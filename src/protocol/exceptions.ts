/**
 * Exceptions on the wire: how a JavaScript error becomes the
 * `{exc_type, exc_message, exc_module}` dict that Python re-raises.
 *
 * @module
 */

import { pyJsonDumps } from "./json.ts";
import { pyRepr } from "./repr.ts";
import type { ExceptionInfo } from "./result_meta.ts";

/**
 * A thrown value that is not an `Error`, in words: a string as it is, an
 * object or array as its JSON (`{"code": 42}`, not `[object Object]`), else
 * its Python-style repr.
 */
function thrownText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object") {
    try {
      return pyJsonDumps(value);
    } catch {
      return pyRepr(value);
    }
  }
  return String(value);
}

/**
 * Python builtin exception names: an error with one of these names is sent
 * with `exc_module: "builtins"`, so Python re-raises the real class.
 */
const PY_BUILTINS = new Set([
  "ArithmeticError",
  "AssertionError",
  "AttributeError",
  "BaseException",
  "BufferError",
  "ConnectionError",
  "EOFError",
  "Exception",
  "FileExistsError",
  "FileNotFoundError",
  "FloatingPointError",
  "ImportError",
  "IndexError",
  "KeyError",
  "LookupError",
  "MemoryError",
  "ModuleNotFoundError",
  "NotImplementedError",
  "OSError",
  "OverflowError",
  "PermissionError",
  "RecursionError",
  "ReferenceError",
  "RuntimeError",
  "TimeoutError",
  "TypeError",
  "UnicodeError",
  "ValueError",
  "ZeroDivisionError",
]);

/**
 * The module named for JavaScript errors that have no Python counterpart.
 * Python has no such module, so it synthesises a class with the same name.
 *
 * @example Where a JavaScript-only error lands in Python
 * ```ts
 * import { exceptionInfo, JS_EXC_MODULE } from "@celeriac/celeriac/protocol";
 * class QuotaExceeded extends Error {
 *   override name = "QuotaExceeded";
 * }
 * exceptionInfo(new QuotaExceeded("limit")).exc_module === JS_EXC_MODULE; // true
 * // Python sees a celeriac.QuotaExceeded("limit")
 * ```
 */
export const JS_EXC_MODULE = "celeriac";

/**
 * Optional fields an error may carry to control how Python sees it.
 *
 * @example A Python-compatible error class
 * ```ts
 * class InsufficientFunds extends Error {
 *   override name = "InsufficientFunds";
 *   excModule = "billing.errors"; // Python re-raises billing.errors.InsufficientFunds
 * }
 * ```
 */
export interface PythonExceptionFields {
  /** Python class name; defaults to the error's `name`. */
  excType?: string;
  /** Python module; defaults to `builtins` for builtin names, else `celeriac`. */
  excModule?: string;
  /** Exception arguments; defaults to `[message]`. */
  args?: unknown[];
}

/**
 * The class name of an error whose `name` is the inherited `"Error"`: its
 * subclass's (`class InsufficientFunds extends Error {}`), or `Exception`
 * for a plain `Error`.
 */
function subclassName(err: Error): string {
  const ctor = (Object.getPrototypeOf(err) as { constructor?: unknown } | null)?.constructor;
  const name = typeof ctor === "function" ? ctor.name : "";
  return name && name !== "Error" ? name : "Exception";
}

/**
 * Convert anything thrown by a task into Celery's exception dict.
 *
 * A plain `Error` becomes Python's `Exception`; an error of a subclass that
 * leaves `name` as `"Error"` is named by its class; errors named like a Python
 * builtin (`TypeError`, `ValueError`, ...) keep their name in `builtins`;
 * other names go to the `celeriac` module. `excType`, `excModule` and `args`
 * fields on the error override all of that. A thrown non-`Error` value (which
 * Python cannot raise) is stored as an `Exception` whose message is the value's
 * JSON (`throw { code: 42 }` gives `{"code": 42}`) or, for a string, the string.
 *
 * @example
 * ```ts
 * import { exceptionInfo } from "@celeriac/celeriac/protocol";
 * exceptionInfo(new TypeError("bad"));
 * // { exc_type: "TypeError", exc_message: ["bad"], exc_module: "builtins" }
 * ```
 *
 * @param err the thrown value
 * @returns the exception dict
 */
export function exceptionInfo(err: unknown): ExceptionInfo {
  if (!(err instanceof Error)) {
    return { exc_type: "Exception", exc_message: [thrownText(err)], exc_module: "builtins" };
  }
  const fields = err as Error & PythonExceptionFields;
  const name = fields.excType ?? (err.name === "Error" ? subclassName(err) : err.name);
  const module = fields.excModule ?? (PY_BUILTINS.has(name) ? "builtins" : JS_EXC_MODULE);
  const args = Array.isArray(fields.args) ? fields.args : [err.message];
  return { exc_type: name, exc_message: args, exc_module: module };
}

/**
 * The traceback text stored with a failure: the JavaScript stack, or the
 * message when there is none.
 *
 * @example
 * ```ts
 * import { tracebackText } from "@celeriac/celeriac/protocol";
 * tracebackText(new Error("boom")).startsWith("Error: boom"); // true
 * ```
 *
 * @param err the thrown value
 * @returns the text
 */
export function tracebackText(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return thrownText(err);
}
