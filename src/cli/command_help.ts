/**
 * `worker.ts COMMAND --help`: a subcommand's own usage lines and the options
 * it reads, cut from the full {@link USAGE} text (one source for both), as
 * `celery inspect --help` shows inspect's options rather than the worker's.
 *
 * @module
 */

import { USAGE } from "./options.ts";

/** Options every command that opens an app reads. */
const APP = ["app", "broker", "backend"];
/** Options of the logging, read by every command. */
const LOGGING = ["loglevel", "log-format", "logfile", "help"];

/** The options each subcommand reads (the worker's own help is the full text). */
const COMMAND_OPTIONS: Record<string, readonly string[]> = {
  completion: ["help"],
  parked: [...APP, ...LOGGING],
  purge: [...APP, "queues", "force", ...LOGGING],
  call: [
    ...APP,
    "args",
    "kwargs",
    "countdown",
    "eta",
    "queue",
    "wait",
    "timeout",
    "json",
    "traceback",
    ...LOGGING,
  ],
  result: [...APP, "traceback", "timeout", "json", ...LOGGING],
  inspect: [...APP, "destination", "timeout", "json", ...LOGGING],
  control: [...APP, "destination", "timeout", "json", ...LOGGING],
  status: [...APP, "timeout", "json", ...LOGGING],
  report: [...APP, "destination", "timeout", "json", ...LOGGING],
  events: [...APP, "dump", ...LOGGING],
  beat: [...APP, "list", "max-interval", "lease-time", "beat-store", "schedule", ...LOGGING],
  schedule: [
    ...APP,
    "beat-store",
    "task",
    "every",
    "cron",
    "at",
    "args",
    "kwargs",
    "queue",
    "expires",
    "priority",
    ...LOGGING,
  ],
  dashboard: [
    ...APP,
    "port",
    "address",
    "basic-auth",
    "token",
    "allowed-host",
    "read-only",
    "hide-args",
    "max-tasks",
    "nice",
    "queues",
    ...LOGGING,
  ],
};

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
