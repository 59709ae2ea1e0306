/**
 * Permission sandboxes in a terminal. Deno asks at a terminal for a
 * permission a Web Worker lacks (when stdin and stderr are both terminals),
 * where elsewhere it refuses it: a worker started from a shell must still
 * refuse a sandbox wider than itself, and deny a sandboxed task what it was
 * not granted, without a prompt. The programs run under `script`, which
 * gives them a pseudo-terminal; skipped where it is missing.
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import { app, peek } from "../examples/sandbox_tasks.ts";

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

/** A program running in a pseudo-terminal (under `script`), its output collected. */
class InTerminal {
  readonly #child: Deno.ChildProcess;
  readonly done: Promise<void>;
  #out = "";

  constructor(args: string[], env: Record<string, string> = {}) {
    const command = [Deno.execPath(), ...args].map(quote).join(" ");
    const child = new Deno.Command("script", {
      args: ["-qfec", command, "/dev/null"],
      cwd: ROOT,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.done = (async () => {
      for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
        this.#out += text;
      }
      await child.status;
    })();
  }

  get output(): string {
    return this.#out;
  }

  /** Wait until the output matches `re` or the program ends; whether it matched. */
  async until(re: RegExp, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    let ended = false;
    this.done.then(() => ended = true);
    while (!re.test(this.#out) && !ended && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return re.test(this.#out);
  }

  /** End it (the pseudo-terminal closes: its program gets SIGHUP) and wait. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // ended already
    }
    await this.done;
  }
}

Deno.test({
  name: "sandbox terminal: a sandbox wider than the process stops the worker, without a prompt",
  ignore: !hasScript(),
  async fn() {
    const worker = new InTerminal([
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
    ]);
    try {
      await worker.until(/Deno requests|narrow the sandbox/, 30_000);
    } finally {
      await worker.stop();
    }
    const out = worker.output;
    assert.doesNotMatch(out, /Deno requests/, "no prompt");
    assert.match(out, /the worker process has no read access to "\/tmp"/);
    assert.match(out, /grant them to the process, or narrow the sandbox/);
  },
});

Deno.test({
  name: "sandbox terminal: a worker run with -A denies a sandboxed task, without a prompt",
  ignore: !hasScript() || Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir();
    const broker = `kv://${dir}/broker.sqlite`;
    const worker = new InTerminal([
      "run",
      "-A",
      "worker.ts",
      "--app",
      "./examples/sandbox_tasks.ts",
      "--broker",
      broker,
      "-c",
      "1",
    ]);
    try {
      assert.ok(await worker.until(/ ready: /, 60_000), worker.output);
      app.configure({ broker });
      const peeked = (await peek.delay("deno.json")).get({ timeout: 60_000 });
      const prompt = worker.until(/Deno requests/, 60_000);
      const err = await Promise.race([peeked.then(() => null, (e) => e), prompt]);
      assert.doesNotMatch(worker.output, /Deno requests/, "no prompt");
      assert.ok(err instanceof TaskError, `the task failed: ${err}`);
      assert.equal(err.excType, "PermissionDenied");
      assert.doesNotMatch(worker.output, /Permission sandboxes in a terminal/);
    } finally {
      await app.close();
      await worker.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "sandbox terminal: a worker that cannot turn prompts off says so; DENO_NO_PROMPT=1 denies",
  ignore: !hasScript(),
  async fn() {
    const narrow = [
      "run",
      "--allow-read=.",
      "--allow-env",
      "worker.ts",
      "--app",
      "./examples/sandbox_tasks.ts",
      "--broker",
      "kv://:memory:",
    ];
    const warned = new InTerminal(narrow);
    try {
      assert.ok(await warned.until(/ ready: /, 60_000), warned.output);
    } finally {
      await warned.stop();
    }
    assert.match(warned.output, /\[WRN\].*Permission sandboxes in a terminal: .*DENO_NO_PROMPT=1/);
    const quiet = new InTerminal(narrow, { DENO_NO_PROMPT: "1" });
    try {
      assert.ok(await quiet.until(/ ready: /, 60_000), quiet.output);
    } finally {
      await quiet.stop();
    }
    assert.doesNotMatch(quiet.output, /Permission sandboxes in a terminal/);
    // The README's command of the sandbox example, in a terminal: denied, never asked.
    const example = new InTerminal(
      ["run", "--allow-read=.", "--allow-env", "examples/sandbox.ts"],
      {
        DENO_NO_PROMPT: "1",
      },
    );
    try {
      await example.until(/worker stats|Deno requests/, 60_000);
    } finally {
      await example.stop();
    }
    assert.doesNotMatch(example.output, /Deno requests/);
    assert.match(example.output, /peek\("deno.json"\) +→ PermissionDenied/);
  },
});
