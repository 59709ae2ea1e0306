/**
 * The README's benchmark figures are the ones `bench/results.json` holds
 * (`deno task readme-bench` writes them), and every `#anchor` link in the
 * README, or to the README in docs/ and bench/README.md, names one of its headings.
 */

import assert from "node:assert/strict";
import { previousRun, renderReadme } from "../bench/readme_bench.ts";
import type { BenchResults } from "../bench/readme_figures.ts";

const ROOT = new URL("../", import.meta.url);
const readme = await Deno.readTextFile(new URL("README.md", ROOT));

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

Deno.test("readme: the benchmark figures agree with bench/results.json", async () => {
  const results = JSON.parse(
    await Deno.readTextFile(new URL("bench/results.json", ROOT)),
  ) as BenchResults;
  const text = await renderReadme(readme, results, await previousRun(results));
  assert.ok(
    text === readme,
    "README.md's figures differ from bench/results.json: run deno task readme-bench",
  );
});

Deno.test("readme: every #anchor link names a heading", async () => {
  const outsideCode = readme.replace(/```[\s\S]*?```/g, "");
  const anchors = new Set<string>();
  for (const [, title] of outsideCode.matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(title.replace(/`/g, ""));
    let name = base;
    for (let n = 1; anchors.has(name); n++) name = `${base}-${n}`;
    anchors.add(name);
  }
  const links = [...outsideCode.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]);
  assert.ok(links.length > 5, "anchor links found");
  assert.deepEqual(links.filter((l) => !anchors.has(l)), [], "links to no heading");
  // The pages the README's details moved to (docs/, bench/README.md) link back to its headings.
  const pages = ["bench/README.md"];
  for await (const e of Deno.readDir(new URL("docs/", ROOT))) {
    if (e.name.endsWith(".md")) pages.push(`docs/${e.name}`);
  }
  for (const page of pages) {
    const text = await Deno.readTextFile(new URL(page, ROOT));
    const back = [...text.matchAll(/\]\(\.\.\/README\.md#([^)]+)\)/g)].map((m) => m[1]);
    assert.deepEqual(back.filter((l) => !anchors.has(l)), [], `${page}: links to no heading`);
  }
});
