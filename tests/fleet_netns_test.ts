/**
 * A worker fleet across "hosts": three network namespaces made by the test
 * (`ip netns` + a veth pair each, addresses in 10.x.<host>.0/24 that exist
 * only on those veths), each running a Celeriac worker against one private
 * Redis in the test's own namespace. The queue spreads over the three;
 * then host 3's link goes down mid-drain (its TCP connections hang, as when
 * a machine drops off the network): the tasks it had taken and not
 * acknowledged come back after the visibility timeout and the other hosts
 * run them; none is lost. Skipped with a message where `ip netns` is not
 * permitted (it needs CAP_NET_ADMIN).
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Celery } from "../mod.ts";
import { Proc } from "./helpers/procs.ts";
import { blockIndex } from "./helpers/ports.ts";
import { type PrivateServers, privateServers, waitUntil } from "./helpers/redis_servers.ts";
import { report } from "./helpers/report.ts";

async function ip(...args: string[]): Promise<{ ok: boolean; err: string }> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output()
    .catch((e) => ({ success: false, stderr: new TextEncoder().encode(String(e)) }));
  return { ok: out.success, err: new TextDecoder().decode(out.stderr).trim() };
}

const tag = crypto.randomUUID().slice(0, 4);
const probe = `clr-probe-${tag}`;
const permitted = await ip("netns", "add", probe);
if (permitted.ok) await ip("netns", "del", probe);
else {
  report(`fleet test skipped: "ip netns add" is not permitted here (${permitted.err})`);
}

const HOSTS = 3;

Deno.test({
  name:
    "fleet: three worker hosts in network namespaces share a queue; a host cut off mid-drain loses nothing",
  ignore: !permitted.ok,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  let subnet = 0;
  const namespaces: string[] = [];
  const workers: Proc[] = [];
  let servers: PrivateServers | null = null;
  let app: Celery | null = null;
  let observer: Redis | null = null;
  try {
    servers = await privateServers("fleet", async (s) => {
      // 10.<subnet>.0.0/16 follows the port block, so runs in parallel never share addresses.
      subnet = 10 + blockIndex(s.base);
      try {
        for (let h = 1; h <= HOSTS; h++) {
          const ns = `clr-${tag}-h${h}`;
          const veth = `clr${tag}h${h}`;
          const must = async (...args: string[]) => {
            const r = await ip(...args);
            if (!r.ok) throw new Error(`ip ${args.join(" ")}: ${r.err}`);
          };
          await must("netns", "add", ns);
          namespaces.push(ns);
          await must("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
          await must("addr", "add", `10.${subnet}.${h}.1/24`, "dev", veth);
          await must("link", "set", veth, "up");
          await must("-n", ns, "addr", "add", `10.${subnet}.${h}.2/24`, "dev", "eth0");
          await must("-n", ns, "link", "set", "eth0", "up");
          await must("-n", ns, "link", "set", "lo", "up");
        }
        const binds = [
          "127.0.0.1",
          ...Array.from({ length: HOSTS }, (_, i) => `10.${subnet}.${i + 1}.1`),
        ];
        await s.redis(0, ["--bind", ...binds, "--protected-mode", "no"]);
      } catch (err) {
        for (const ns of namespaces.splice(0)) await ip("netns", "del", ns);
        throw err;
      }
    });
    const port = servers.base;
    const local = `redis://127.0.0.1:${port}/0?visibility_timeout=3`;
    const queue = `fleet-${tag}`;
    const marker = `fleet-${tag}:done`;
    for (let h = 1; h <= HOSTS; h++) {
      const url = `redis://10.${subnet}.${h}.1:${port}/0?visibility_timeout=3`;
      const w = Proc.start(`host${h}`, "ip", [
        "netns",
        "exec",
        `clr-${tag}-h${h}`,
        Deno.execPath(),
        "run",
        "-A",
        "worker.ts",
        "--app",
        "./tests/apps/fleet_app.ts",
        "--broker",
        url,
        "--backend",
        url,
        "-Q",
        `${queue},${queue}-h${h}`,
        "-c",
        "2",
        // 4 tasks per Web Worker at once: 600 tasks of 100 ms take ~2.5 s
        // (the default window of 64 would run them all in one go).
        "--prefetch",
        "4",
        "-n",
        `host${h}@fleet`,
      ], { env: { FLEET_HOST: `host${h}`, FLEET_REDIS: url } });
      workers.push(w);
    }
    for (const w of workers) await w.waitFor(/ ready: /, 30_000);

    app = new Celery({ broker: local, backend: local, defaultQueue: queue });
    observer = new Redis(`redis://127.0.0.1:${port}/0`);
    // Each host first runs a few tasks on its own queue, so that its Web
    // Workers and their Redis connections are up before the shared drain:
    // a host still starting under load would otherwise hold its prefetched
    // tasks while the others drain the rest, and the cut could come too late.
    const warm = `${marker}:warm`;
    for (let h = 1; h <= HOSTS; h++) {
      for (let i = 0; i < 4; i++) {
        await app.sendTask("fleet.record", [-1, warm, 0], { queue: `${queue}-h${h}` });
      }
    }
    await waitUntil("every host to run its warm-up tasks", async () => {
      return (await observer!.llen(warm)) === 4 * HOSTS;
    }, 60_000);
    const n = 600;
    await Promise.all(
      Array.from({ length: n }, (_, i) => app!.sendTask("fleet.record", [i, marker, 100])),
    );
    // The cut comes once a third has run and every host has run some.
    await waitUntil("a third of the drain, on every host", async () => {
      const runs = await observer!.lrange(marker, 0, -1);
      const hosts = new Set(runs.map((r) => r.split("@")[1]));
      return runs.length >= n / 3 && hosts.size === HOSTS;
    }, 60_000);
    await ip("link", "set", `clr${tag}h${HOSTS}`, "down");
    const cutAt = Date.now();
    const beforeCut = await observer.lrange(marker, 0, -1);
    await waitUntil("every task to run", async () => {
      const runs = await observer!.lrange(marker, 0, -1);
      return new Set(runs.map((r) => r.split("@")[0])).size === n;
    }, 30_000).catch(async (err) => {
      const runs = await observer!.lrange(marker, 0, -1);
      const state = {
        done: new Set(runs.map((r) => r.split("@")[0])).size,
        unacked: await observer!.hlen("unacked"),
        index: await observer!.zrange("unacked_index", "0", "-1", "WITHSCORES"),
        now: Date.now() / 1000,
        queued: await observer!.llen(queue),
        mutex: await observer!.get("unacked_mutex"),
        out: workers.map((w) => w.output.slice(-1500)),
      };
      throw new Error(`${err.message}: ${JSON.stringify(state, null, 1)}`);
    });
    const runs = await observer.lrange(marker, 0, -1);
    const ids = runs.map((r) => r.split("@")[0]);
    const byHost = (list: string[]) => {
      const count: Record<string, number> = {};
      for (const r of list) count[r.split("@")[1]] = (count[r.split("@")[1]] ?? 0) + 1;
      return count;
    };
    const spread = byHost(beforeCut);
    const measured = {
      tasks: n,
      lost: n - new Set(ids).size,
      duplicated: ids.length - new Set(ids).size,
      beforeCut: spread,
      total: byHost(runs),
      drainSecondsAfterCut: Number(((Date.now() - cutAt) / 1000).toFixed(1)),
    };
    report(`fleet: ${JSON.stringify(measured)}`);
    assert.equal(measured.lost, 0);
    assert.ok(beforeCut.length < n, "the cut came before the drain ended");
  } finally {
    for (const w of workers) {
      try {
        w.child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await w.child.status;
    }
    observer?.disconnect();
    await app?.close();
    await servers?.stop();
    for (const ns of namespaces) await ip("netns", "del", ns);
  }
});
