/**
 * The worker's start-up pages: `worker.ts` run with `-A` on Linux releases
 * the clean pages of the `deno` executable once it is ready (they come back
 * from the page cache when used), unless `CELERIAC_RELEASE_STARTUP_PAGES=0`
 * or the permissions do not allow it.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { cleanImageMappings } from "../src/cli/startup_pages.ts";
import { Proc } from "./helpers/procs.ts";

const EXE = "/usr/lib/deno/deno";

/** One mapping of a smaps text: its header line, then Rss, Anonymous and Swap in kB. */
const mapping = (
  head: string,
  rss: number,
  anonymous: number,
  swap = 0,
) => [head, `Rss: ${rss} kB`, `Anonymous: ${anonymous} kB`, `Swap: ${swap} kB`];

/**
 * A smaps text: the executable's image (clean, written, relocated, not
 * resident, a private copy swapped out), the heap, a copy of V8's
 * built-ins, a library.
 */
const SMAPS = [
  ...mapping(`55d0a0000000-55d0a1000000 r--p 00000000 fe:00 7 ${EXE}`, 2048, 0),
  ...mapping(`55d0a1200000-55d0a3000000 r-xp 01200000 fe:00 7 ${EXE}`, 10240, 0),
  ...mapping(`55d0a3000000-55d0a3100000 rw-p 03000000 fe:00 7 ${EXE}`, 1024, 512),
  ...mapping(`55d0a3100000-55d0a3101000 r--p 03100000 fe:00 7 ${EXE}`, 4, 4),
  ...mapping(`55d0a3101000-55d0a3102000 r--p 03101000 fe:00 7 ${EXE}`, 0, 0),
  ...mapping(`55d0a3102000-55d0a3104000 r--p 03102000 fe:00 7 ${EXE}`, 4, 0, 4),
  ...mapping(
    "55d0b0000000-55d0b1000000 rw-p 00000000 00:00 0                          [heap]",
    4096,
    4096,
  ),
  ...mapping(`7f0000000000-7f0000200000 r-xp 02000000 fe:00 7 ${EXE}`, 2048, 0),
  ...mapping(
    "7f1000000000-7f1000100000 r-xp 00000000 fe:00 9 /usr/lib/x86_64-linux-gnu/libc.so.6",
    1024,
    0,
  ),
  "",
].join("\n");

Deno.test("startup pages: only the image's clean mappings with pages resident", () => {
  assert.deepEqual(cleanImageMappings(SMAPS, EXE), [
    { start: 0x55d0a0000000n, end: 0x55d0a1000000n, residentKiB: 2048 },
    { start: 0x55d0a1200000n, end: 0x55d0a3000000n, residentKiB: 10240 },
  ]);
  assert.deepEqual(cleanImageMappings(SMAPS, "/usr/bin/other"), []);
});

/** KiB of the executable's image resident in a process. */
async function imageKiB(pid: number): Promise<number> {
  const smaps = await Deno.readTextFile(`/proc/${pid}/smaps`);
  const exe = await Deno.readLink(`/proc/${pid}/exe`);
  let sum = 0;
  let inImage = false;
  for (const line of smaps.split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      if (inImage && head[1] !== exe) break;
      inImage = head[1] === exe;
    } else if (inImage) sum += Number(/^Rss:\s+(\d+) kB/.exec(line)?.[1] ?? 0);
  }
  return sum;
}

/** A worker started as by hand: it starts over with its V8 flags before the pages are measured. */
function startWorker(url: string, env: Record<string, string>, permissions = ["-A"]): Proc {
  return Proc.start("celeriac worker", Deno.execPath(), [
    "run",
    ...permissions,
    "worker.ts",
    "--app",
    "./tests/apps/worker_app.ts",
    "--broker",
    url,
    "--backend",
    url,
    "-c",
    "1",
    "--loglevel",
    "DEBUG",
  ], { env, v8Start: "restart" });
}

Deno.test({
  name: "startup pages: released once ready, the worker runs tasks after, and 0 keeps them",
  ignore: Deno.build.os !== "linux",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-pages-" });
  // The released one alone on its queue, so that it runs the tasks sent after.
  const url = `kv://${dir}/q.sqlite`;
  const other = `kv://${dir}/other.sqlite`;
  const released = startWorker(url, {});
  const kept = startWorker(other, { CELERIAC_RELEASE_STARTUP_PAGES: "0" });
  const narrow = startWorker(other, {}, [
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net",
    "--allow-sys",
  ]);
  // FFI, env and read granted but not -A: Deno refuses /proc/self/smaps; the worker keeps working.
  const third = `kv://${dir}/third.sqlite`;
  const withFfi = startWorker(third, {}, [
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net",
    "--allow-sys",
    "--allow-ffi",
  ]);
  const client = new Celery({ broker: url, backend: url });
  const thirdClient = new Celery({ broker: third, backend: third });
  try {
    await withFfi.waitFor(/Start-up pages kept resident: cannot read or release them/, 60_000);
    const r = await thirdClient.sendTask<number>("t.add", [2, 3]);
    assert.equal(await r.get({ timeout: 30_000 }), 5);
    await released.waitFor(/Released \d+\.\d MiB of start-up pages/, 60_000);
    await kept.waitFor(/Start-up pages kept resident: CELERIAC_RELEASE_STARTUP_PAGES=0/, 60_000);
    await narrow.waitFor(
      /Start-up pages kept resident: needs -A \(Deno reads \/proc\/self only when every permission/,
      60_000,
    );
    const [releasedKiB, keptKiB] = [
      await imageKiB(released.child.pid),
      await imageKiB(kept.child.pid),
    ];
    assert.ok(
      releasedKiB < keptKiB * 0.8,
      `the executable's resident pages: ${releasedKiB} KiB released, ${keptKiB} KiB kept`,
    );
    for (let i = 0; i < 6; i++) {
      const r = await client.sendTask<number>("t.add", [i, 1]);
      assert.equal(await r.get({ timeout: 30_000 }), i + 1);
    }
  } finally {
    await client.close();
    await thirdClient.close();
    for (const w of [released, kept, narrow, withFfi]) assert.equal((await w.stop()).code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});
