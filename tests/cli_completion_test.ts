/**
 * `worker.ts completion bash|zsh|fish`: the bash script, sourced in a real
 * bash, registers for `worker.ts` and completes subcommands, inspect and
 * control commands, flags and flag values (COMP_WORDS / COMPREPLY as bash
 * fills them); fish completes with the real `complete -C`; the zsh function
 * runs in a real zsh with `words` / `CURRENT` set and `compadd` recording
 * what it is given (zsh's completion system needs a terminal); after a
 * command, only the flags it reads (`purge --que` -> `--queues`), and the
 * worker's beat / dashboard options only once -B / -D is on the line (as
 * `--beat`, `-B` or among short flags, `-EB`; not `-Q B`); a flag's value
 * is no command (`-Q beat`, `-EQ inspect`); every flag
 * the command line parses and every inspect / control command is in each
 * script; an unknown shell exits 2.
 */

import assert from "node:assert/strict";
import { CONTROL_COMMANDS, INSPECT_COMMANDS } from "../src/cli/inspect.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function has(shell: string): Promise<boolean> {
  return await new Deno.Command("sh", { args: ["-c", `command -v ${shell}`], stdout: "null" })
    .output().then((o) => o.success, () => false);
}

const WITHOUT_FISH = !(await has("fish"));
const WITHOUT_ZSH = !(await has("zsh"));

async function shell(cmd: string, args: string[]): Promise<string[]> {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
  return new TextDecoder().decode(o.stdout).trimEnd().split("\n");
}

async function worker(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "worker.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

/** Source the script in bash and complete each line of words (the last one is being typed). */
async function bashComplete(script: string, lines: string[][]): Promise<string[]> {
  const file = await Deno.makeTempFile({ suffix: ".bash" });
  try {
    await Deno.writeTextFile(file, script);
    const quote = (w: string) => `'${w.replaceAll("'", `'\\''`)}'`;
    const body = [
      `source ${quote(file)}`,
      "complete -p worker.ts celeriac | tr '\\n' ' '; echo",
      ...lines.map((words) =>
        `COMP_WORDS=(${words.map(quote).join(" ")}); COMP_CWORD=${words.length - 1}; ` +
        `COMPREPLY=(); _celeriac_complete; echo "\${COMPREPLY[*]}"`
      ),
    ].join("\n");
    const o = await new Deno.Command("bash", {
      args: ["--norc", "--noprofile", "-c", body],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    return new TextDecoder().decode(o.stdout).trimEnd().split("\n");
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("completion: the bash script completes subcommands, commands, flags and values", async () => {
  const { code, out } = await worker("completion", "bash");
  assert.equal(code, 0);
  const [registered, ...got] = await bashComplete(out, [
    ["worker.ts", "ins"],
    ["worker.ts", "--app", "./tasks.ts", "con"],
    ["worker.ts", "inspect", "st"],
    ["worker.ts", "-A", "tasks.ts", "control", "auto"],
    ["worker.ts", "--autos"],
    ["worker.ts", "inspect", "stats", "--dest"],
    ["worker.ts", "-P", ""],
    ["worker.ts", "--loglevel", "WA"],
    ["worker.ts", "--broker", "red"],
    ["worker.ts", "completion", "z"],
    ["worker.ts", "call", "tasks.add", "--wa"],
    ["worker.ts", "purge", "--que"],
    ["worker.ts", "call", "tasks.add", "--que"],
    ["worker.ts", "inspect", "--que"],
    ["worker.ts", "--que"],
    ["worker.ts", "--lease"],
    ["worker.ts", "worker", "--por"],
    ["worker.ts", "-B", "--lease"],
    ["worker.ts", "worker", "-EB", "--lease"],
    ["worker.ts", "--beat", "--por"],
    ["worker.ts", "worker", "--dashboard", "--por"],
    ["worker.ts", "-D", "-B", "--max-t"],
    ["worker.ts", "-Q", "B", "--lease"],
    ["worker.ts", "beat", "--lease"],
    ["worker.ts", "dashboard", "--por"],
    ["worker.ts", "-EQ", "beat", "--lease"],
    ["worker.ts", "-EQ", "inspect", "con"],
    ["worker.ts", "call", "tasks.add", "--exp"],
    ["worker.ts", "call", "tasks.add", "--serializer", ""],
    ["worker.ts", "call", "tasks.add", "--rout"],
  ]);
  assert.match(
    registered,
    /^complete .*-F _celeriac_complete worker\.ts complete .*-F _celeriac_complete celeriac $/,
  );
  assert.deepEqual(got, [
    "inspect",
    "control",
    "stats",
    "autoscale",
    "--autoscale --autoscale-keepalive",
    "--destination",
    "threads inline",
    "WARNING",
    "", // a flag's value: nothing to offer
    "zsh",
    "--wait",
    "--queues", // each command's own flags: purge refuses --queue
    "--queue",
    "", // inspect reads neither
    "--queues",
    "", // -B's options only after -B, -D's only after -D: the worker refuses them without
    "",
    "--lease-time",
    "--lease-time",
    "",
    "--port",
    "--max-tasks-per-child --max-tasks",
    "", // B is -Q's value
    "--lease-time",
    "--port",
    "", // beat is -Q's value (-EQ is -E -Q), not the beat command
    "control", // a command: inspect is -Q's value
    "--expires", // celery call's flags
    "json msgpack",
    "--routing-key",
  ]);
});

Deno.test({
  name: "completion: fish completes with the script loaded",
  ignore: WITHOUT_FISH,
}, async () => {
  const file = await Deno.makeTempFile({ suffix: ".fish" });
  try {
    await Deno.writeTextFile(file, (await worker("completion", "fish")).out);
    const got = await shell("fish", [
      "--no-config",
      "-c",
      `source ${file}; complete -C "worker.ts ins"; echo -; complete -C "celeriac control auto"; ` +
      `echo -; complete -C "worker.ts --autos"; echo -; complete -C "worker.ts -P "; ` +
      `echo -; complete -C "worker.ts purge --que"; echo -; complete -C "celeriac call t --que"; ` +
      `echo -; complete -C "worker.ts --lease"; echo -; complete -C "worker.ts worker --por"; ` +
      `echo -; complete -C "worker.ts -EB --lease"; echo -; complete -C "celeriac worker -D --por"; ` +
      `echo -; complete -C "worker.ts -B --por"; echo -; complete -C "celeriac beat --lease"; ` +
      `echo -; complete -C "celeriac dashboard --por"; echo -; complete -C "celeriac -nBOB --lease"; ` +
      `echo -; complete -C "worker.ts -n B -B --lease"; echo -; ` +
      `complete -C "worker.ts -Q beat --lease"; echo -; complete -C "celeriac worker -Q beat --lease"; ` +
      `echo -; complete -C "worker.ts -EQ beat --lease"; echo -; complete -C "worker.ts -Q inspect con"`,
    ]);
    assert.deepEqual(got, [
      "inspect",
      "-",
      "autoscale",
      "-",
      "--autoscale",
      "--autoscale-keepalive",
      "-",
      "inline",
      "threads",
      "-",
      "--queues",
      "-",
      "--queue",
      "-", // -B's and -D's options only after -B / -D
      "-",
      "-",
      "--lease-time",
      "-",
      "--port",
      "-",
      "-",
      "--lease-time",
      "-",
      "--port",
      "-", // -nBOB: the B of a hostname does not turn -B on
      "-",
      "--lease-time",
      "-", // beat is -Q's value, not the beat command (with -EQ too)
      "-",
      "-",
      "-",
      "control", // a command: inspect is -Q's value
    ]);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test({
  name: "completion: the zsh function offers subcommands, commands, flags and values",
  ignore: WITHOUT_ZSH,
}, async () => {
  const file = await Deno.makeTempFile({ suffix: ".zsh" });
  try {
    await Deno.writeTextFile(file, (await worker("completion", "zsh")).out);
    const got = await shell("zsh", [
      "-f",
      "-c",
      [
        "compdef() { print -r -- compdef $@; }",
        // compadd filters by the word being completed; record what survives.
        'compadd() { [[ $1 == -- ]] && shift; local w o=(); for w in "$@"; do ' +
        '[[ $w == ${words[CURRENT]}* ]] && o+=$w; done; print -r -- "${o[*]}"; }',
        "_files() { print -r -- FILES; }",
        `source ${file}`,
        't() { words=("$@"); CURRENT=$#; _celeriac; }',
        "t worker.ts ins",
        "t worker.ts --app x.ts control auto",
        "t worker.ts --autos",
        't worker.ts -P ""',
        't worker.ts --app ""',
        "t worker.ts purge --que",
        "t worker.ts call t --que",
        "t worker.ts --lease",
        "t worker.ts worker --por",
        "t worker.ts -EB --lease",
        "t worker.ts worker --dashboard --por",
        "t worker.ts -B --por",
        "t worker.ts beat --lease",
        "t worker.ts dashboard --por",
        "t worker.ts -EQ beat --lease",
        "t worker.ts -EQ inspect con",
      ].join("\n"),
    ]);
    assert.deepEqual(got, [
      "compdef _celeriac worker.ts celeriac",
      "inspect",
      "autoscale",
      "--autoscale --autoscale-keepalive",
      "threads inline",
      "FILES",
      "--queues",
      "--queue",
      "", // -B's and -D's options only after -B / -D
      "",
      "--lease-time",
      "--port",
      "",
      "--lease-time",
      "--port",
      "", // beat is -Q's value (-EQ is -E -Q), not the beat command
      "control", // a command: inspect is -Q's value
    ]);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("completion: every script names every flag and inspect / control command", async () => {
  const help = (await worker("--help")).out;
  // The flags that start a line of the options list (descriptions mention Deno's own flags).
  const flags = [...help.matchAll(/^ {2,6}(?:-\w, )?(--[a-z][a-z-]+)/gm)].map((m) => m[1]);
  assert.ok(flags.includes("--autoscale") && flags.length > 40, `flags in --help: ${flags}`);
  for (const shell of ["bash", "zsh", "fish"]) {
    const { code, out } = await worker("completion", shell);
    assert.equal(code, 0, shell);
    // fish spells a flag `-l name`; bash and zsh `--name`.
    const has = (flag: string) =>
      shell === "fish" ? out.includes(` -l ${flag.slice(2)}`) : out.includes(` ${flag}`);
    for (const flag of flags) assert.ok(has(flag), `${shell} completes ${flag}`);
    for (const cmd of [...INSPECT_COMMANDS, ...CONTROL_COMMANDS]) {
      assert.match(out, new RegExp(`[\\s"(]${cmd}[\\s")]`), `${shell} completes ${cmd}`);
    }
  }
  assert.match((await worker("completion", "zsh")).out, /^#compdef worker\.ts celeriac\n/);
  assert.match(
    (await worker("completion", "fish")).out,
    /complete -c celeriac -n "not __celeriac_command [a-z ]+" -l autoscale -r/,
  );
});

Deno.test("completion: an unknown shell exits 2 with the shells to use", async () => {
  const { code, err } = await worker("completion", "tcsh");
  assert.equal(code, 2);
  assert.match(err, /completion needs a shell: bash, zsh, fish/);
  const named = await worker("completion", "bash", "celery-ts");
  assert.match(named.out, /-F _celeriac_complete celery-ts\n/);
});
