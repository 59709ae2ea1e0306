/**
 * Port blocks for private servers are reserved across processes: test
 * files running in parallel never get the same block, a killed holder
 * leaves none behind, and a server whose port was taken after all is
 * started again on another block instead of failing its test (or talking
 * to the other server).
 */

import assert from "node:assert/strict";
import { reservePorts } from "./helpers/ports.ts";
import { command, PortInUseError, privateServers, startRedis } from "./helpers/redis_servers.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const PORTS = new URL("./helpers/ports.ts", import.meta.url).href;
const PRIVATE_REDIS = new URL("./helpers/private_redis.ts", import.meta.url).href;

/** A `deno eval` process that reserves `count` blocks, prints their bases and holds them until its stdin closes. */
function holder(count: number): { child: Deno.ChildProcess; bases: Promise<number[]> } {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const { reservePorts } = await import(${JSON.stringify(PORTS)});
       const blocks = Array.from({ length: ${count} }, () => reservePorts());
       console.log(JSON.stringify(blocks.map((b) => b.base)));
       await new Response(Deno.stdin.readable).text();`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const bases = (async () => {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`holder exited before printing its blocks: ${text}`);
      text += value;
    }
    reader.releaseLock();
    return JSON.parse(text) as number[];
  })();
  return { child, bases };
}

/** True when nothing listens on the block's lock port (`base + 99`). */
function lockFree(base: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port: base + 99 }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("port blocks: four processes and this one reserving at once never share a block", async () => {
  const holders = Array.from({ length: 4 }, () => holder(8));
  const mine = Array.from({ length: 8 }, () => reservePorts());
  try {
    const all = [
      ...mine.map((b) => b.base),
      ...(await Promise.all(holders.map((h) => h.bases))).flat(),
    ];
    assert.equal(all.length, 40);
    assert.equal(new Set(all).size, all.length, `a block was handed out twice: ${all.sort()}`);
    for (const base of all) {
      assert.ok(base >= 20_000 && base <= 28_900 && base % 100 === 0, `block base ${base}`);
    }
  } finally {
    for (const b of mine) b.release();
    for (const h of holders) {
      await h.child.stdin.close();
      assert.equal((await h.child.status).code, 0);
      await h.child.stdout.cancel().catch(() => {});
    }
  }
});

Deno.test("port blocks: a killed holder's blocks are free at once; a released block too", async () => {
  const h = holder(3);
  const bases = await h.bases;
  assert.ok(bases.every((b) => !lockFree(b)), "held while the holder lives");
  h.child.kill("SIGKILL");
  await h.child.status;
  await h.child.stdout.cancel().catch(() => {});
  await h.child.stdin.close().catch(() => {});
  assert.ok(bases.every(lockFree), "freed when the holder died");
  const block = reservePorts();
  assert.ok(!lockFree(block.base));
  block.release();
  block.release();
  assert.ok(lockFree(block.base));
});

Deno.test({
  name: "private servers: a port taken after the reservation starts the set on another block",
  ignore: WITHOUT_REDIS,
}, async () => {
  const squatters: Deno.TcpListener[] = [];
  const tried: number[] = [];
  const servers = await privateServers("squat", async (s) => {
    tried.push(s.base);
    if (tried.length === 1) {
      squatters.push(Deno.listen({ hostname: "127.0.0.1", port: s.base + 1 }));
    }
    await s.redis(0);
    await s.redis(1);
  });
  try {
    assert.equal(tried.length, 2);
    assert.notEqual(tried[0], tried[1]);
    assert.equal(servers.base, tried[1]);
    assert.equal(await command(servers.base + 1, "PING"), "PONG");
    assert.ok(lockFree(tried[0]!), "the first block was freed");
  } finally {
    await servers.stop();
    for (const l of squatters) l.close();
  }
  assert.ok(lockFree(servers.base));
});

Deno.test({
  name: "private servers: a second server on a port another redis-server holds is refused",
  ignore: WITHOUT_REDIS,
}, async () => {
  const servers = await privateServers("twice", (s) => s.redis(0));
  const dir = await Deno.makeTempDir({ prefix: "celeriac-twice-" });
  try {
    await assert.rejects(
      startRedis(servers.base, dir),
      (err: unknown) =>
        err instanceof PortInUseError && err.port === servers.base && err.code === "PORT_IN_USE",
    );
  } finally {
    await servers.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "private servers: a cluster that never joins fails within its time limit, nodes killed",
  ignore: WITHOUT_REDIS,
}, async () => {
  const tried: number[] = [];
  const started = Date.now();
  await assert.rejects(
    privateServers("never-joins", (s) => {
      tried.push(s.base);
      // Every node announces a bus port nobody listens on: they never meet, the cluster never joins.
      const args = ["--cluster-announce-bus-port", String(s.base + 50)];
      return s.cluster({ args, createTimeoutMs: 3_000 });
    }),
    /redis-cli --cluster create did not finish within 3000 ms/,
  );
  assert.ok(Date.now() - started < 20_000, `failed after ${Date.now() - started} ms`);
  assert.equal(tried.length, 1, "not taken for a port in use");
  for (let i = 0; i < 3; i++) {
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: tried[0]! + i }));
  }
});

Deno.test("private redis: a temporary directory that cannot be made frees the reserved block", async () => {
  // TMPDIR is process-wide: set it for a `deno eval` process of its own, which lists the block
  // lock ports (base + 99) it listens on, from its own socket inodes and /proc/net/tcp.
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const { PrivateRedis } = await import(${JSON.stringify(PRIVATE_REDIS)});
       const locks = () => {
         const inodes = new Set();
         for (const e of Deno.readDirSync("/proc/self/fd")) {
           try {
             const m = Deno.readLinkSync("/proc/self/fd/" + e.name).match(/^socket:\\[(\\d+)\\]$/);
             if (m) inodes.add(m[1]);
           } catch { /* closed meanwhile */ }
         }
         return Deno.readTextFileSync("/proc/net/tcp").split("\\n").slice(1).flatMap((line) => {
           const f = line.trim().split(/\\s+/);
           const port = parseInt(f[1]?.split(":")[1] ?? "", 16);
           const lock = f[3] === "0A" && port >= 20099 && port <= 28999 && port % 100 === 99;
           return lock && inodes.has(f[9]) ? [port] : [];
         });
       };
       const before = locks();
       let error = "";
       let during = [];
       const original = Deno.makeTempDir;
       Deno.makeTempDir = (options) => {
         during = locks();
         return original(options);
       };
       try {
         await PrivateRedis.start();
       } catch (err) {
         error = err.name;
       }
       console.log(JSON.stringify({ error, before, during: during.length, after: locks() }));`,
    ],
    env: { TMPDIR: "/nonexistent/celeriac-tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  assert.deepEqual(
    JSON.parse(text),
    { error: "NotFound", before: [], during: 1, after: [] },
    "the block was held while the directory was made, and its listener is closed after",
  );
});
