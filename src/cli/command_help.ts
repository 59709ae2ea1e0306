/**
 * `worker.ts COMMAND --help`: a subcommand's own usage lines and the options
 * it reads, cut from the full {@link USAGE} text (one source for both), as
 * `celery inspect --help` shows inspect's options rather than the worker's.
 *
 * @module
 */

import { COMMAND_OPTIONS } from "./command_flags.ts";
import { USAGE } from "./options.ts";

/** Lines of an option whose description in the full text is the worker's, not this command's. */
const OWN_LINES: Record<string, Record<string, string>> = {
  purge: {
    queues: "  -Q, --queues a,b           queues to purge (default: the app's default queue)",
  },
};

/** A line naming a flag: `  -Q, --queues a,b ...` or `      --json ...`. */
const FLAG_LINE = /^ {2,6}(?:-\w, )?--([a-z][a-z-]+)/;

/** The text's entries by flag name: a line naming the flag and its continuation lines. */
function entries(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  let list: string[] | undefined;
  for (const line of text.split("\n")) {
    const flag = FLAG_LINE.exec(line);
    if (flag) {
      list = found.get(flag[1]) ?? [];
      found.set(flag[1], list);
      list.push(line);
    } else if (list && /^ {29}\S/.test(line)) list[list.length - 1] += `\n${line}`;
    else list = undefined;
  }
  return found;
}

/**
 * The usage lines of `command`: each starting `worker.ts COMMAND` with its
 * continuation lines, and the notes in parentheses that name the command.
 */
function usageLines(command: string): string[] {
  const out: string[] = [];
  let taking = false;
  for (const line of USAGE.split("\n")) {
    if (/^ {2}deno run /.test(line)) taking = line.includes(` worker.ts ${command} `);
    else if (/^ {6}\(/.test(line)) taking = new RegExp(`\\b${command}\\b`).test(line);
    else if (!/^ {6,}\S/.test(line) || FLAG_LINE.test(line)) taking = false;
    if (taking) out.push(line);
  }
  return out;
}

/**
 * The help of one subcommand, or `undefined` for the worker itself (its help
 * is the full {@link USAGE}) and unknown names.
 *
 * @example
 * ```ts
 * import { commandHelp } from "./command_help.ts";
 * commandHelp("inspect")?.startsWith("Usage:"); // true
 * ```
 *
 * @param command the subcommand
 * @returns its usage lines and options
 */
export function commandHelp(command: string): string | undefined {
  const names = COMMAND_OPTIONS[command];
  if (!names) return undefined;
  const all = entries(USAGE);
  const options = names.map((name) => {
    const own = OWN_LINES[command]?.[name];
    if (own) return own;
    const list = all.get(name) ?? [];
    // Several entries (-Q): the one marked for this command, else the first unmarked one.
    const marked = (e: string) => /^\s+(?:-\w, )?--\S+(?: \S+)?\s+([a-z]+): /.exec(e)?.[1];
    return list.find((e) => marked(e) === command) ?? list.find((e) => !marked(e)) ?? list[0];
  }).filter((e) => e !== undefined);
  return [
    "Usage:",
    ...usageLines(command),
    "",
    "Options:",
    ...options,
    "",
    "The worker's options and every command: deno run -A worker.ts --help",
  ].join("\n");
}
