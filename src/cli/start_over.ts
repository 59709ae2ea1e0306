/**
 * Replacing this process's image with a new start of a command (`execve`):
 * same process id, so a supervisor, a pid file and `inspect stats` see the
 * same process, and nothing of the old image is left behind, its threads
 * included. Used to start over with the worker's V8 flags (`v8_flags.ts`)
 * and after leaked threads (`src/worker/thread_leaks.ts`). Linux only; it
 * needs `-A`: libc's `execve` takes FFI, and Deno reads `/proc/self/cmdline`
 * only when every permission is granted.
 *
 * @module
 */

import { granted, NEEDS_ALL_PERMISSIONS } from "./permissions.ts";
import { EXIT_CODES } from "./exit_codes.ts";

function cString(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${s}\0`);
}

function pointerArray(strings: Uint8Array<ArrayBuffer>[]): BigUint64Array<ArrayBuffer> {
  const array = new BigUint64Array(strings.length + 1);
  strings.forEach((s, i) => array[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s))));
  return array;
}

/**
 * Replace this process's image with `Deno.execPath()` run with `argv` (the
 * whole command line, `argv[0]` included) and `env`. On success it does not
 * return.
 *
 * @example
 * ```ts
 * import { execSelf } from "./start_over.ts";
 * const why = execSelf(["deno", "run", "-A", "worker.ts"], Deno.env.toObject());
 * console.error(`cannot start over: ${why}`);
 * ```
 *
 * @param argv the command line
 * @param env the environment
 * @returns why it could not, when it returns
 */
export function execSelf(argv: string[], env: Record<string, string>): string {
  const args = argv.map(cString);
  const envp = Object.entries(env).map(([k, v]) => cString(`${k}=${v}`));
  try {
    const libc = Deno.dlopen("libc.so.6", {
      execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
    });
    libc.symbols.execve(cString(Deno.execPath()), pointerArray(args), pointerArray(envp));
    libc.close();
    return "execve failed";
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Why this process cannot start over, or null when it may: on Linux, with
 * FFI (libc's `execve`), environment and `/proc/self/cmdline` permissions
 * granted (asked without a prompt). Reading `/proc/self/cmdline` then still
 * takes every permission ({@link ownCommandLine}), so only `-A` starts over;
 * this check only says so early. The one check of both uses: the worker's V8
 * flags (`v8_flags.ts`) and {@link startOver}.
 *
 * @example
 * ```ts
 * import { cannotStartOver } from "./start_over.ts";
 * cannotStartOver(); // "needs -A (Deno reads /proc/self only when every permission is granted)" without FFI
 * ```
 *
 * @returns why not, or null
 */
export function cannotStartOver(): string | null {
  if (Deno.build.os !== "linux") return "only done on Linux";
  const allowed = granted({ name: "env" }) && granted({ name: "ffi" }) &&
    granted({ name: "read", path: "/proc/self/cmdline" });
  return allowed ? null : NEEDS_ALL_PERMISSIONS;
}

/**
 * This process's command line, from `/proc/self/cmdline` (which Deno reads
 * only when every permission is granted), or why it cannot be read.
 *
 * @example
 * ```ts
 * import { ownCommandLine } from "./start_over.ts";
 * const cmd = ownCommandLine(); // { argv: ["deno", "run", "-A", "worker.ts", ...] }
 * ```
 *
 * @returns the arguments, `argv[0]` included, or why not
 */
export function ownCommandLine(): { argv: string[] } | { why: string } {
  if (Deno.build.os !== "linux") return { why: "only done on Linux" };
  try {
    return {
      argv: new TextDecoder().decode(Deno.readFileSync("/proc/self/cmdline")).split("\0")
        .slice(0, -1),
    };
  } catch (err) {
    return { why: `${(err as Error).message}; -A allows it` };
  }
}

/**
 * The exit status of a `worker` command that stopped because threads of
 * terminated Web Workers still ran (`--leaked-threads-restart`) and did not
 * start over by itself: EX_TEMPFAIL, for a supervisor to start it again
 * (systemd's `Restart=on-failure`, a container's restart policy).
 *
 * @example
 * ```ts
 * import { LEAKED_THREADS_EXIT_CODE } from "@celeriac/celeriac/worker";
 * LEAKED_THREADS_EXIT_CODE; // 75
 * ```
 */
export const LEAKED_THREADS_EXIT_CODE: number = EXIT_CODES.leakedThreads;

/**
 * Start this process over with the same command line and environment, after
 * the worker stopped for leaked threads. On success it does not return.
 *
 * @example
 * ```ts
 * import { startOver } from "./start_over.ts";
 * console.error(`cannot start over: ${startOver()}`);
 * ```
 *
 * @returns why it could not, when it returns
 */
export function startOver(): string {
  const cannot = cannotStartOver();
  if (cannot) return cannot;
  const own = ownCommandLine();
  if ("why" in own) return own.why;
  return execSelf(own.argv, Deno.env.toObject());
}
