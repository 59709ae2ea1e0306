/**
 * Lua scripts on a RESP connection as ioredis sends them: by `EVALSHA`, and
 * as `EVAL` (which loads the script) when the server answers `NOSCRIPT`.
 * Used by the connections that run scripts (`RespScripts` in resp_scripts.ts,
 * `RespClient` in resp_client.ts) for the scripts of the take, the early
 * acknowledgement and the result store. Pure logic, apart from the `send`
 * it is given.
 *
 * @module
 */

import { RedisReplyError } from "./resp_reader.ts";
import { sha1Hex } from "./sha1.ts";

/**
 * A Lua script and its SHA-1, which `EVALSHA` names it by.
 *
 * @example
 * ```ts
 * import { RespScript } from "./resp_eval.ts";
 * new RespScript("return 1").sha; // "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
 * ```
 */
export class RespScript {
  /** The script's source. */
  readonly lua: string;
  #sha: string | null = null;

  /** @param lua the script's source */
  constructor(lua: string) {
    this.lua = lua;
  }

  /**
   * Its SHA-1, lower-case hex: hashed when first asked for, so that a
   * process does not hash (in JavaScript, at start-up) the scripts it never runs.
   */
  get sha(): string {
    return this.#sha ??= sha1Hex(this.lua);
  }
}

/**
 * Run a script with `send`: `EVALSHA`, or `EVAL` (which loads it) when the
 * server does not have it (`NOSCRIPT`: nothing ran, so sending it again is safe).
 *
 * @example
 * ```ts ignore
 * import { RespScript, runScript, scriptCommand } from "./resp_eval.ts";
 * const one = await runScript(new RespScript("return 1"), scriptCommand([], []), (c) => conn.command(c));
 * ```
 *
 * @param script the script
 * @param command the command to send, its first two places left for the
 *   command name and the SHA-1 or source (written here), then `numkeys`, the
 *   keys, the arguments ({@link scriptCommand}): one array, not one per step
 *   (a result store's holds two strings per task)
 * @param send sends a command, resolves with its reply
 * @returns the script's reply
 */
export async function runScript<T>(
  script: RespScript,
  command: (string | Uint8Array)[],
  send: (command: (string | Uint8Array)[]) => Promise<T>,
): Promise<T> {
  command[0] = "EVALSHA";
  command[1] = script.sha;
  try {
    return await send(command);
  } catch (err) {
    if (!(err instanceof RedisReplyError) || err.code !== "NOSCRIPT") throw err;
    // The EVALSHA was written out before its reply came: its array is free to change.
    command[0] = "EVAL";
    command[1] = script.lua;
    return await send(command);
  }
}

/**
 * The command {@link runScript} sends for a script's keys and arguments,
 * made in one array of its final size.
 *
 * @example
 * ```ts
 * import { scriptCommand } from "./resp_eval.ts";
 * scriptCommand(["k"], ["a", "b"]); // ["", "", "1", "k", "a", "b"]
 * ```
 *
 * @param keys the script's KEYS
 * @param args its ARGV
 * @returns two places for the command name and script, `numkeys`, the keys, the arguments
 */
export function scriptCommand(
  keys: readonly string[],
  args: readonly (string | Uint8Array)[],
): (string | Uint8Array)[] {
  const command = new Array<string | Uint8Array>(3 + keys.length + args.length);
  command[0] = command[1] = "";
  command[2] = String(keys.length);
  for (let i = 0; i < keys.length; i++) command[3 + i] = keys[i];
  const at = 3 + keys.length;
  for (let i = 0; i < args.length; i++) command[at + i] = args[i];
  return command;
}
