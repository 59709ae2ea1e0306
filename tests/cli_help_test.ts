/**
 * `worker.ts COMMAND --help` prints that command's usage and the options it
 * reads (as `celery inspect --help`), not the worker's whole help; every
 * option it names is one the command line parses, with its description.
 */

import assert from "node:assert/strict";
import { commandHelp } from "../src/cli/command_help.ts";
import { COMMAND_OPTIONS } from "../src/cli/command_flags.ts";
import { MONITOR_COMMANDS } from "../src/cli/monitor.ts";
import { APP_OPTIONAL, OPTIONS, USAGE } from "../src/cli/options.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const COMMANDS = [...MONITOR_COMMANDS, "beat", "schedule", "dashboard", "purge", "parked"];

async function worker(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "worker.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: o.code,
    out: new TextDecoder().decode(o.stdout),
    err: new TextDecoder().decode(o.stderr),
  };
}

Deno.test("help: `monitor --help` (a command Celeriac has not) is refused as without --help", async () => {
  // It printed the general help and exited 0; without --help it was already refused with 2.
  for (const args of [["monitor", "--help"], ["shell", "-h"], ["multi", "--help"]]) {
    const ran = await worker(...args);
    assert.equal(ran.code, 2, args.join(" "));
    assert.equal(ran.out, "");
    assert.match(ran.err, new RegExp(`^error: unknown command "${args[0]}"`));
  }
  // call --help, while calling something: the help, exit 0.
  assert.match((await worker("call", "--help", "--args", "[1]")).out, /^Usage:/);
});

Deno.test("help: `inspect --help`, `call --help`, `beat --help` print that command's options", async () => {
  const inspect = await worker("inspect", "--help");
  assert.equal(inspect.code, 0);
  assert.match(inspect.out, /^Usage:\n {2}deno run -A worker\.ts inspect CMD/);
  assert.match(inspect.out, /^ {2}-d, --destination NODES /m);
  assert.match(inspect.out, /^ {2}-t, --timeout SECONDS /m);
  assert.doesNotMatch(inspect.out, /--concurrency|--autoscale|--port/);
  const call = await worker("call", "--help");
  assert.match(call.out, /^ {6}--countdown SECONDS /m);
  assert.match(call.out, /^ {6}--wait /m);
  assert.match(call.out, /^ {2}-t, --timeout SECONDS /m);
  assert.doesNotMatch(call.out, /worker\.ts inspect/);
  const beat = await worker("beat", "--help");
  assert.match(beat.out, /^ {6}--max-interval SECONDS /m);
  assert.doesNotMatch(beat.out, /--beat /);
  // The worker's own help, and the command line's, stay the whole text.
  assert.match((await worker("--help")).out, /^Celeriac worker — .*\n[\s\S]*--autoscale MAX,MIN/);
  assert.match((await worker("worker", "--help")).out, /--autoscale MAX,MIN/);
});

Deno.test("help: every command's help has its usage line, and its options exist with a description", () => {
  const known = new Set(Object.keys(OPTIONS));
  for (const command of COMMANDS) {
    const help = commandHelp(command);
    assert.ok(help, command);
    assert.match(help, new RegExp(`^Usage:\\n {2}deno run -A worker\\.ts ${command} `), command);
    for (const m of help.matchAll(/^ {2,6}(?:-\w, )?--([a-z][a-z-]+)/gm)) {
      assert.ok(known.has(m[1]), `${command} --help names --${m[1]}, which is not parsed`);
    }
    assert.match(help, /^ {2}-h, --help /m, command);
  }
  assert.match(commandHelp("purge")!, /-Q, --queues a,b +queues to purge/);
  assert.match(commandHelp("dashboard")!, /-Q, --queues a,b +dashboard: /);
  assert.equal(commandHelp("worker"), undefined);
});

Deno.test("help: --app's line names every command that runs without it", () => {
  // It named call ... report and dashboard, not purge and parked, which run
  // with --broker alone too (as the README says).
  const line = /^ {2}-A, --app [^]*?(?=\n {2}-b, --broker)/m.exec(USAGE)![0].replace(/\s+/g, " ");
  assert.match(line, /required, except by /);
  for (const command of APP_OPTIONAL) {
    assert.match(line, new RegExp(`\\b${command}\\b`), `--app's help leaves out ${command}`);
  }
  for (const command of ["beat", "schedule", "completion"]) {
    assert.equal(APP_OPTIONAL.has(command), false, command);
  }
});

Deno.test("help: each command's help describes every option the command reads", () => {
  // `schedule --help` named --task, --every, --cron, --at and --priority only in its synopsis.
  for (const command of COMMANDS) {
    const options = commandHelp(command)!.split("\nOptions:\n")[1];
    const missing = COMMAND_OPTIONS[command].filter((name) =>
      !new RegExp(`--${name}\\b`).test(options)
    );
    assert.deepEqual(missing, [], `${command} --help lacks a line for ${missing.join(", ")}`);
  }
  assert.match(commandHelp("schedule")!, /--cron EXPR +schedule add: [^]*time zone of beat's app/);
  assert.match(commandHelp("schedule")!, /--priority N +schedule add: [^]*0\.\.255/);
  assert.match(commandHelp("result")!, /--task NAME +result: /);
});
