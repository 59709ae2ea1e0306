/**
 * The dashboard's generated asset module matches its sources
 * (src/dashboard/static/ and the npm versions pinned in deno.json): after
 * editing a UI file, run `deno task dashboard:assets`.
 */

import assert from "node:assert/strict";
import { OUTPUT, renderAssets } from "../tools/dashboard_assets.ts";

Deno.test("dashboard assets: src/dashboard/assets.gen.ts is up to date", async () => {
  const committed = await Deno.readTextFile(OUTPUT);
  assert.ok(
    committed === await renderAssets(),
    "src/dashboard/assets.gen.ts is stale: run `deno task dashboard:assets`",
  );
});
