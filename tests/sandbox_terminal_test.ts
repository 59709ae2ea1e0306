/**
 * Permission sandboxes in a terminal. Deno asks at a terminal for a
 * permission a Web Worker lacks (when stdin and stderr are both terminals),
 * where elsewhere it refuses it: a worker started from a shell must still
 * refuse a sandbox wider than itself, and deny a sandboxed task what it was
 * not granted, without a prompt. The programs run under `script`, which
 * gives them a pseudo-terminal; skipped where it is missing.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

function hasScript(): boolean {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

/**
 * Run `deno` with these arguments in a pseudo-terminal, for at most `ms`;
 * its output, and whether it ended by itself.
 */
async function inTerminal(
  args: string[],
  ms: number,
  env: Record<string, string> = {},
): Promise<{ out: string; ended: boolean }> {
  const command = [Deno.execPath(), ...args].map(quote).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qfec", command, "/dev/null"],
    cwd: ROOT,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let ended = true;
  const timer = setTimeout(() => {
    ended = false;
    child.kill("SIGKILL");
  }, ms);
  const { stdout, stderr } = await child.output();
  clearTimeout(timer);
  return { out: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr), ended };
}

Deno.test({
  name: "sandbox terminal: a sandbox wider than the process stops the worker, without a prompt",
  ignore: !hasScript(),
  async fn() {
    const { out, ended } = await inTerminal([
      "run",
      "--allow-read=.",
      "--allow-env",
      "worker.ts",
      "--app",
      "./tests/apps/worker_app.ts",
      "--broker",
      "kv://:memory:",
      "--task-permissions",
      '{"read":["/tmp"]}',
    ], 20_000);
    assert.doesNotMatch(out, /Deno requests/, "no prompt");
    assert.ok(ended, `the worker exits by itself:\n${out}`);
    assert.match(out, /the worker process has no read access to "\/tmp"/);
    assert.match(out, /grant them to the process, or narrow the sandbox/);
  },
});
