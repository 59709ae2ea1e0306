// deno-lint-ignore-file no-console
/**
 * `completion bash|zsh|fish`: a shell completion script for the command
 * line, generated from the tables the command line parses (its commands,
 * its `parseArgs` options, the options each command reads, the inspect and
 * control command names), so it cannot drift from them: after a command only
 * its own flags are offered, and those it reads only with another flag (the
 * worker's beat options with `-B`) only once that flag is on the line.
 *
 * @module
 */

import { EXIT_CODES } from "./exit_codes.ts";

/** The shells a script is written for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

/** One of {@link SHELLS}. */
export type Shell = typeof SHELLS[number];

/**
 * What the script completes.
 *
 * @example
 * ```ts
 * const spec: CompletionSpec = {
 *   commands: ["worker", "inspect"],
 *   options: { app: { type: "string", short: "A" }, help: { type: "boolean", short: "h" } },
 *   subcommands: { inspect: ["active", "stats"] },
 *   values: { pool: ["threads", "inline"] },
 *   commandOptions: { worker: ["app", "help"], inspect: ["app", "help"] },
 *   defaultCommand: "worker",
 * };
 * ```
 */
export interface CompletionSpec {
  /** Subcommands (the first positional). */
  commands: readonly string[];
  /** Flags as `parseArgs` reads them: string flags take a value. */
  options: Readonly<
    Record<string, { readonly type: "string" | "boolean"; readonly short?: string }>
  >;
  /** Words completed after a subcommand (`inspect` -> `active`, ...). */
  subcommands: Readonly<Record<string, readonly string[]>>;
  /** Values completed after a flag (`--pool` -> `threads`, `inline`). */
  values: Readonly<Record<string, readonly string[]>>;
  /** Flags whose value is a file name. */
  files?: readonly string[];
  /** The flags each command reads (long names): only those are offered after it. */
  commandOptions: Readonly<Record<string, readonly string[]>>;
  /**
   * Flags a command reads only when another flag is on the line: command, that flag's long
   * name, the flags it lets in (the worker's `beat` lets in `lease-time`, ...). They are in
   * `commandOptions` too, and offered only once the flag is typed (alone, `--beat`, or among
   * short boolean flags, `-EB`). Default none.
   */
  gatedOptions?: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
  /** The command run when none is typed (its flags are offered before any command). */
  defaultCommand: string;
}

/** Command names the script registers for: the entry point and an installed name. */
export const COMPLETED_NAMES = ["worker.ts", "celeriac"] as const;

/** The flags that take a value, in every spelling: the word after one is its value. */
function valueFlagWords(spec: CompletionSpec): string[] {
  return Object.keys(spec.options).filter((n) => spec.options[n].type === "string")
    .flatMap((n) => spellings(spec, n));
}

/**
 * A regular expression for a cluster of short flags whose last takes the next word as its value,
 * as parseArgs reads `-EQ beat` (`-E -Q beat`): short boolean flags, then a short string flag
 * (a lone `-Q` too). Its value is no command: `worker.ts -EQ beat` runs the worker.
 */
function valueClusterRe(spec: CompletionSpec): string {
  const shorts = (type: "string" | "boolean") =>
    Object.values(spec.options).filter((o) => o.type === type && o.short).map((o) => o.short)
      .join("");
  return `^-[${shorts("boolean")}]*[${shorts("string")}]$`;
}

/** A command's flags behind other flags: `[gate, flags]` pairs, none by default. */
function gatesOf(spec: CompletionSpec, cmd: string): [string, readonly string[]][] {
  return Object.entries(spec.gatedOptions?.[cmd] ?? {});
}

/** The flag (long name) `cmd` reads `flag` only after, if any. */
function gateOf(spec: CompletionSpec, cmd: string, flag: string): string | undefined {
  return gatesOf(spec, cmd).find(([, flags]) => flags.includes(flag))?.[0];
}

/** Flags as typed on a command line: each spelling, space-separated. */
function words(spec: CompletionSpec, names: readonly string[]): string {
  return names.filter((n) => n in spec.options).flatMap((n) => spellings(spec, n)).join(" ");
}

/**
 * For a `case` on the command in bash and zsh: each command's flags read whatever else is
 * typed, and those read only after a gate flag, by gate.
 */
function commandFlagWords(spec: CompletionSpec): [string, string, [string, string][]][] {
  return Object.entries(spec.commandOptions).map(([cmd, names]) => [
    cmd,
    words(spec, names.filter((n) => gateOf(spec, cmd, n) === undefined)),
    gatesOf(spec, cmd).map(([gate, flags]) => [gate, words(spec, flags)]),
  ]);
}

/** Every gate flag of {@link CompletionSpec.gatedOptions}, once. */
function gateFlags(spec: CompletionSpec): string[] {
  return [...new Set(Object.values(spec.gatedOptions ?? {}).flatMap((g) => Object.keys(g)))];
}

/**
 * A bash / zsh test that word `$w` turns `gate` on: `--gate`, or its short letter alone or
 * among short boolean flags (`-B`, `-EB`), as the command line reads them.
 */
function gateTest(spec: CompletionSpec, gate: string, quote: (re: string) => string): string {
  const short = spec.options[gate]?.short;
  if (!short) return `[[ $w == --${gate} ]]`;
  const booleans = Object.values(spec.options)
    .filter((o) => o.type === "boolean" && o.short).map((o) => o.short).join("");
  return `[[ $w == --${gate} || $w =~ ${quote(`^-[${booleans}]*${short}`)} ]]`;
}

/** The spellings of a long flag: `--pool` and its short form. */
function spellings(spec: CompletionSpec, name: string): string[] {
  const short = spec.options[name]?.short;
  return short ? [`--${name}`, `-${short}`] : [`--${name}`];
}

function bash(spec: CompletionSpec, names: readonly string[]): string {
  const valueCases = Object.entries(spec.values).map(([flag, vals]) =>
    `    ${spellings(spec, flag).join("|")}) COMPREPLY=($(compgen -W "${
      vals.join(" ")
    }" -- "$cur")); return ;;`
  );
  const files = (spec.files ?? []).flatMap((f) => spellings(spec, f));
  if (files.length) {
    valueCases.push(`    ${files.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`);
  }
  const subCases = Object.entries(spec.subcommands).map(([cmd, words]) =>
    `    ${cmd}) [[ -z $sub ]] && COMPREPLY=($(compgen -W "${words.join(" ")}" -- "$cur")) ;;`
  );
  const flagCases = commandFlagWords(spec).map(([cmd, words, gated]) =>
    `      ${cmd}) flags="${words}"${
      gated.map(([gate, more]) => `; [[ $on == *" ${gate} "* ]] && flags+=" ${more}"`).join("")
    } ;;`
  );
  const gateChecks = gateFlags(spec).map((gate) =>
    `\n      ${gateTest(spec, gate, (re) => re)} && on+=" ${gate} "`
  ).join("");
  return `# bash completion for ${names.join(", ")} (Celeriac)
_celeriac_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local takes=" ${valueFlagWords(spec).join(" ")} "
  COMPREPLY=()
  case "$prev" in
${valueCases.join("\n")}
  esac
  [[ $takes == *" $prev "* || $prev =~ ${valueClusterRe(spec)} ]] && return
  local i w cmd="" sub="" on=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ $w == -* ]]; then${gateChecks}
      [[ $takes == *" $w "* || $w =~ ${valueClusterRe(spec)} ]] && ((i++))
    elif [[ -z $cmd ]]; then cmd=$w
    elif [[ -z $sub ]]; then sub=$w
    fi
  done
  if [[ $cur == -* ]]; then
    local flags=""
    case "\${cmd:-${spec.defaultCommand}}" in
${flagCases.join("\n")}
    esac
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return
  fi
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "${spec.commands.join(" ")}" -- "$cur"))
    return
  fi
  case "$cmd" in
${subCases.join("\n")}
  esac
}
complete -o bashdefault -o default -F _celeriac_complete ${names.join(" ")}
`;
}

function zsh(spec: CompletionSpec, names: readonly string[]): string {
  const valueCases = Object.entries(spec.values).map(([flag, vals]) =>
    `    ${spellings(spec, flag).join("|")}) compadd -- ${vals.join(" ")}; return ;;`
  );
  const files = (spec.files ?? []).flatMap((f) => spellings(spec, f));
  if (files.length) valueCases.push(`    ${files.join("|")}) _files; return ;;`);
  const subCases = Object.entries(spec.subcommands).map(([cmd, words]) =>
    `    ${cmd}) [[ -z $sub ]] && compadd -- ${words.join(" ")} ;;`
  );
  const flagCases = commandFlagWords(spec).map(([cmd, words, gated]) =>
    `      ${cmd}) flags=(${words})${
      gated.map(([gate, more]) => `; [[ $on == *" ${gate} "* ]] && flags+=(${more})`).join("")
    } ;;`
  );
  const gateChecks = gateFlags(spec).map((gate) =>
    `\n      ${gateTest(spec, gate, (re) => `'${re}'`)} && on+=" ${gate} "`
  ).join("");
  return `#compdef ${names.join(" ")}
# zsh completion for ${names.join(", ")} (Celeriac)
_celeriac() {
  local -a takes=(${valueFlagWords(spec).join(" ")})
  local prev=\${words[CURRENT-1]} cur=\${words[CURRENT]}
  case $prev in
${valueCases.join("\n")}
  esac
  if (( \${takes[(Ie)$prev]} )) || [[ $prev =~ '${valueClusterRe(spec)}' ]]; then return; fi
  local i w cmd="" sub="" on=""
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    if [[ $w == -* ]]; then${gateChecks}
      if (( \${takes[(Ie)$w]} )) || [[ $w =~ '${valueClusterRe(spec)}' ]]; then ((i++)); fi
    elif [[ -z $cmd ]]; then cmd=$w
    elif [[ -z $sub ]]; then sub=$w
    fi
  done
  if [[ $cur == -* ]]; then
    local -a flags=()
    case \${cmd:-${spec.defaultCommand}} in
${flagCases.join("\n")}
    esac
    (( $#flags )) && compadd -- $flags
    return
  fi
  if [[ -z $cmd ]]; then
    compadd -- ${spec.commands.join(" ")}
    return
  fi
  case $cmd in
${subCases.join("\n")}
  esac
}
compdef _celeriac ${names.join(" ")}
`;
}

/**
 * fish's `-n` condition for a flag: after the commands that read it, or (when the default command
 * reads it) after none of those that do not; a command that reads it only after a gate flag
 * (see {@link CompletionSpec.gatedOptions}) once that flag is on the line too; `null` when no
 * command reads it.
 */
function fishCondition(spec: CompletionSpec, flag: string): string | null {
  const reads = (cmd: string) => spec.commandOptions[cmd]?.includes(flag) ?? false;
  const always = (cmd: string) => reads(cmd) && gateOf(spec, cmd, flag) === undefined;
  const readers = spec.commands.filter(always);
  const when: string[] = [];
  if (always(spec.defaultCommand)) {
    const others = spec.commands.filter((cmd) => !always(cmd));
    if (others.length === 0) return "";
    when.push(`not __celeriac_command ${others.join(" ")}`);
  } else if (readers.length) when.push(`__celeriac_command ${readers.join(" ")}`);
  for (const cmd of spec.commands.filter((c) => reads(c) && !always(c))) {
    const gate = gateOf(spec, cmd, flag)!;
    const after = cmd === spec.defaultCommand
      ? `not __celeriac_command ${spec.commands.filter((c) => c !== cmd).join(" ")}`
      : `__celeriac_command ${cmd}`;
    when.push(`${after}; and ${fishGateName(gate)}`);
  }
  if (when.length === 0) return null;
  if (when.length === 1) return ` -n "${when[0]}"`;
  return ` -n "${when.map((w) => `begin; ${w}; end`).join("; or ")}"`;
}

/** The fish function that tells whether a gate flag is on the command line. */
function fishGateName(gate: string): string {
  return `__celeriac_on_${gate.replaceAll("-", "_")}`;
}

/**
 * fish functions reading the words before the cursor as bash and zsh read them, the values of
 * flags that take one skipped (`__celeriac_args`) (fish's `__fish_seen_subcommand_from` takes the `beat` of
 * `-Q beat` for the command): `__celeriac_command` (no command typed yet; with names, the
 * command is one of them), `__celeriac_subcommand_of CMD` (CMD typed, its subcommand not yet),
 * and for each gate flag whether it is on the line, tested as {@link gateTest} does
 * (`__fish_contains_opt -s B` also finds the `B` of `-nBOB`, a value).
 */
function fishFunctions(spec: CompletionSpec): string[] {
  const booleans = Object.values(spec.options)
    .filter((o) => o.type === "boolean" && o.short).map((o) => o.short).join("");
  const lines = [
    "function __celeriac_takes_value --argument-names w",
    `    contains -- $w ${valueFlagWords(spec).join(" ")}`,
    `    or string match -qr -- '${valueClusterRe(spec)}' $w`,
    "end",
    "function __celeriac_args",
    "    set -l words (commandline -opc)",
    "    set -e words[1]",
    "    set -l skip 0",
    "    for w in $words",
    "        if test $skip = 1",
    "            set skip 0",
    "            continue",
    "        end",
    "        printf '%s\\n' $w",
    "        string match -q -- '-*' $w; and __celeriac_takes_value $w; and set skip 1",
    "    end",
    "end",
    "function __celeriac_command",
    "    set -l words (__celeriac_args | string match -v -- '-*')",
    "    if test (count $argv) = 0",
    "        test (count $words) = 0",
    "    else",
    '        contains -- "$words[1]" $argv',
    "    end",
    "end",
    "function __celeriac_subcommand_of --argument-names cmd",
    "    set -l words (__celeriac_args | string match -v -- '-*')",
    '    test (count $words) = 1; and test "$words[1]" = $cmd',
    "end",
  ];
  for (const gate of gateFlags(spec)) {
    const short = spec.options[gate]?.short;
    const re = short ? `^(--${gate}$|-[${booleans}]*${short})` : `^--${gate}$`;
    lines.push(
      `function ${fishGateName(gate)}`,
      `    __celeriac_args | string match -qr -- '${re}'`,
      "end",
    );
  }
  return lines;
}

function fish(spec: CompletionSpec, names: readonly string[]): string {
  const lines: string[] = [
    `# fish completion for ${names.join(", ")} (Celeriac)`,
    ...fishFunctions(spec),
  ];
  for (const name of names) {
    const c = `complete -c ${name}`;
    lines.push(`${c} -f`);
    lines.push(`${c} -n "__celeriac_command" -a "${spec.commands.join(" ")}"`);
    for (const [cmd, words] of Object.entries(spec.subcommands)) {
      lines.push(`${c} -n "__celeriac_subcommand_of ${cmd}" -a "${words.join(" ")}"`);
    }
    for (const [flag, o] of Object.entries(spec.options)) {
      const when = fishCondition(spec, flag);
      if (when === null) continue;
      let line = `${c}${when} -l ${flag}`;
      if (o.short) line += ` -s ${o.short}`;
      if (o.type === "string") {
        const vals = spec.values[flag];
        if (vals) line += ` -x -a "${vals.join(" ")}"`;
        else line += spec.files?.includes(flag) ? " -r -F" : " -r";
      }
      lines.push(line);
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * The completion script for a shell.
 *
 * @example
 * ```ts ignore
 * const script = completionScript("bash", spec);
 * // complete -o bashdefault -o default -F _celeriac_complete worker.ts celeriac
 * ```
 *
 * @param shell bash, zsh or fish
 * @param spec what to complete
 * @param names command names to register for (default {@link COMPLETED_NAMES})
 * @returns the script
 */
export function completionScript(
  shell: Shell,
  spec: CompletionSpec,
  names: readonly string[] = COMPLETED_NAMES,
): string {
  if (shell === "bash") return bash(spec, names);
  if (shell === "zsh") return zsh(spec, names);
  return fish(spec, names);
}

/**
 * `completion SHELL [NAME...]`: print the script; exit 2 for an unknown shell.
 *
 * @example
 * ```ts ignore
 * runCompletion(["bash"], spec); // prints the bash script, returns 0
 * ```
 *
 * @param positionals `[shell, ...names]`
 * @param spec what to complete
 * @returns exit code
 */
export function runCompletion(positionals: string[], spec: CompletionSpec): number {
  const [shell, ...names] = positionals;
  if (!(SHELLS as readonly string[]).includes(shell)) {
    console.error(
      `completion needs a shell: ${SHELLS.join(", ")} (e.g. source <(worker.ts completion bash))`,
    );
    return EXIT_CODES.usage;
  }
  console.log(completionScript(shell as Shell, spec, names.length ? names : COMPLETED_NAMES));
  return 0;
}
