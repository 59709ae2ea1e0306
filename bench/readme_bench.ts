// deno-lint-ignore-file no-console
/**
 * Rewrites the README's benchmark figures from `bench/results.json`: the
 * Benchmarks block (`<!-- bench:begin -->` … `<!-- bench:end -->`) and the
 * Status sentence (`<!-- bench-status:begin -->` … `<!-- bench-status:end -->`).
 * "The run before" comes from the newest committed `bench/results.json` of
 * another Celeriac commit (git history). `--check` only reports whether the
 * README agrees (exit 1 when not).
 *
 * @example
 * ```sh
 * deno task bench && deno task readme-bench   # a full run, then the README from its results
 * deno task readme-bench --check
 * ```
 *
 * @module
 */

import {
  benchBlock,
  type BenchResults,
  MARKERS,
  replaceBlock,
  statusBlock,
} from "./readme_figures.ts";

const ROOT = new URL("../", import.meta.url);

async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * The newest committed `bench/results.json` of a Celeriac commit other than
 * `current`'s, or `undefined` when git has none (or no git history).
 *
 * @example
 * ```ts ignore
 * const before = await previousRun(results);
 * ```
 */
export async function previousRun(current: BenchResults): Promise<BenchResults | undefined> {
  const log = await run("git", ["log", "-n", "20", "--format=%H", "--", "bench/results.json"])
    .catch(() => "");
  for (const commit of log.split("\n").filter(Boolean)) {
    const old = JSON.parse(
      await run("git", ["show", `${commit}:bench/results.json`]),
    ) as BenchResults;
    if (old.environment.celeriac !== current.environment.celeriac && old.date < current.date) {
      return old;
    }
  }
  return undefined;
}

/**
 * The README with both blocks written from `results` (and `before`; without
 * it, the README's own "The run before" paragraph is kept), as `deno fmt`
 * formats it.
 *
 * @example
 * ```ts ignore
 * const text = await renderReadme(readme, results, before);
 * ```
 */
export async function renderReadme(
  readme: string,
  results: BenchResults,
  before?: BenchResults,
): Promise<string> {
  const kept = /^The run before: [^]*?(?=\n\n)/m.exec(readme)?.[0];
  let text = replaceBlock(readme, MARKERS.bench, benchBlock(results, before ?? kept));
  text = replaceBlock(text, MARKERS.status, statusBlock(results));
  return await run("deno", ["fmt", "--ext", "md", "-"], text);
}

if (import.meta.main) {
  const readmeUrl = new URL("README.md", ROOT);
  const results = JSON.parse(
    await Deno.readTextFile(new URL("bench/results.json", ROOT)),
  ) as BenchResults;
  const readme = await Deno.readTextFile(readmeUrl);
  const text = await renderReadme(readme, results, await previousRun(results));
  if (Deno.args.includes("--check")) {
    if (text !== readme) {
      console.error(
        "README.md's benchmark figures differ from bench/results.json: run deno task readme-bench",
      );
      Deno.exit(1);
    }
    console.log("README.md agrees with bench/results.json");
  } else if (text === readme) {
    console.log("README.md already agrees with bench/results.json");
  } else {
    await Deno.writeTextFile(readmeUrl, text);
    console.log(`README.md: benchmark figures of ${results.environment.celeriac} written`);
  }
}
