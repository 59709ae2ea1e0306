/**
 * Deno permission checks of the command line, asked without a prompt:
 * what is not granted is done without (and said so where it matters).
 *
 * @module
 */

import { grantedNow } from "../client/runtime.ts";

/** Whether a permission is granted (a prompt or a denial both count as no): {@link grantedNow}. */
export const granted: (descriptor: Deno.PermissionDescriptor) => boolean = grantedNow;

/**
 * An environment variable, when reading it is granted (never a prompt);
 * `undefined` when it is unset or not granted.
 *
 * @example
 * ```ts
 * import { grantedEnv } from "./permissions.ts";
 * grantedEnv("DENO_V8_FLAGS") ?? ""; // "" without --allow-env
 * ```
 *
 * @param variable the variable's name
 * @returns its value, or `undefined`
 */
export function grantedEnv(variable: string): string | undefined {
  return granted({ name: "env", variable }) ? Deno.env.get(variable) : undefined;
}

/**
 * Why the worker does not start over with its V8 flags or release its
 * start-up pages: both read `/proc/self` (`cmdline`, `smaps`, `exe`), which
 * Deno 2 allows only when every permission is granted (`-A`, or each
 * `--allow-*` flag without a list); `--allow-ffi --allow-env --allow-read`
 * alone get "Requires all access".
 *
 * @example
 * ```ts
 * import { NEEDS_ALL_PERMISSIONS } from "./permissions.ts";
 * console.log(`V8 flags: not started over: ${NEEDS_ALL_PERMISSIONS}`);
 * ```
 */
export const NEEDS_ALL_PERMISSIONS =
  "needs -A (Deno reads /proc/self only when every permission is granted)";
