/**
 * Command lines run one after another by `main()` in one process, each as
 * `deno run -A worker.ts ARGS` would run it, for tests that check many exit
 * codes and error messages: one `deno run` each cost 0.3–1 s of CPU
 * (loading the modules, and for `worker` and `dashboard` starting again
 * with the V8 flags). Cases that stop before connecting (usage errors, a
 * refused connection) leave nothing behind for the next; each case's
 * environment is set before it and put back after it, and its `--app`
 * module is imported anew (a query `?cli-case=N` on its path), so that it
 * does not get the app the case before configured or closed. Limits: an
 * `--app path:name` is imported once per batch, and the modules an app
 * module imports are shared by every case (state they keep is too).
 *
 * Run as a script (the parent side is {@link runCliCases}): it reads the
 * cases as JSON on stdin and writes each case's stderr to its own stderr
 * followed by a line `CASE_END` and the exit code.
 */

import { main } from "../../worker.ts";

/** One command line: its arguments and the environment it runs with. */
export interface CliCase {
  /** The arguments after `worker.ts`. */
  args: string[];
  /** Variables set for it (all others as the parent's). */
  env: Record<string, string>;
}

/** How one case exited, and its stderr. */
export interface CliOutcome {
  /** Its exit code. */
  code: number;
  /** What it wrote to stderr. */
  err: string;
}

const CASE_END = "\u0000cli-case-end ";
const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * Run `cases` in one `deno run` of this module (cwd the repository root),
 * in order; resolves with each one's exit code and stderr.
 *
 * @example
 * ```ts ignore
 * const [ran] = await runCliCases([{ args: ["status", "-b", ""], env: {} }]);
 * assert.equal(ran.code, 2);
 * ```
 */
export async function runCliCases(cases: CliCase[]): Promise<CliOutcome[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname],
    cwd: ROOT,
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(cases)));
  await writer.close();
  const o = await child.output();
  const parts = new TextDecoder().decode(o.stderr).split(CASE_END);
  const outcomes = parts.slice(1).map((part, i) => {
    const code = Number(part.slice(0, part.indexOf("\n")));
    const err = i === 0 ? parts[0] : parts[i].slice(parts[i].indexOf("\n") + 1);
    return { code, err };
  });
  if (outcomes.length !== cases.length) {
    throw new Error(
      `the case runner ended (status ${o.code}) after ${outcomes.length} of ${cases.length} ` +
        `cases: ${parts.at(-1)}`,
    );
  }
  return outcomes;
}

/** `args` with the `--app` / `-A` module given a query of case `n`'s own (one with `:name` as is). */
function freshApp(args: readonly string[], n: number): string[] {
  const fresh = (spec: string) => /:[A-Za-z_$][\w$]*$/.test(spec) ? spec : `${spec}?cli-case=${n}`;
  return args.map((a, i) => {
    if (a.startsWith("--app=")) return `--app=${fresh(a.slice(6))}`;
    return i > 0 && (args[i - 1] === "--app" || args[i - 1] === "-A") ? fresh(a) : a;
  });
}

async function runAll(cases: CliCase[]): Promise<void> {
  const encoder = new TextEncoder();
  for (const [n, c] of cases.entries()) {
    const before = Object.keys(c.env).map((k) => [k, Deno.env.get(k)] as const);
    for (const [k, v] of Object.entries(c.env)) Deno.env.set(k, v);
    let code: number;
    try {
      code = await main(freshApp(c.args, n));
    } finally {
      for (const [k, v] of before) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    }
    Deno.stderr.writeSync(encoder.encode(`${CASE_END}${code}\n`));
  }
}

if (import.meta.main) {
  const cases = JSON.parse(await new Response(Deno.stdin.readable).text()) as CliCase[];
  await runAll(cases);
  Deno.exit(0);
}
