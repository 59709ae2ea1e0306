/**
 * Several workers on one broker: node names from `-n` as Celery builds
 * them (`%h`, `%n`, `%d`, `%%`, a name without `@`, unknown `%x` refused),
 * `--logfile` with the node's parts (`%n%I.log`, Celery's pattern for
 * several workers on a host), and two workers started with the same `-n`:
 * each says so at start, and `inspect` warns that replies were merged.
 */

import assert from "node:assert/strict";
import { nodeName, nodePath } from "../src/worker/node_name.ts";
import { Celery } from "../mod.ts";
import { Worker } from "../worker.ts";
import { celeriacWorker, Proc } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";

Deno.test("node names: -n is expanded as Celery's host_format(default_nodename(...))", () => {
  // Each case checked against Celery 5.2.6's celery.utils.nodenames on host vm.example.com.
  const host = "vm.example.com";
  assert.equal(nodeName(undefined, host), "celeriac@vm.example.com");
  assert.equal(nodeName("", host), "celeriac@vm.example.com");
  assert.equal(nodeName("w1@%h", host), "w1@vm.example.com");
  assert.equal(nodeName("w1@%n", host), "w1@vm", "%n: the host name's first label");
  assert.equal(nodeName("w1@%n.%d", host), "w1@vm.example.com", "%d: its domain");
  assert.equal(nodeName("%n-1@x", host), "vm-1@x");
  assert.equal(nodeName("worker1", host), "celeriac@worker1", "no @: a host name");
  assert.equal(nodeName("@x", host), "celeriac@x");
  assert.equal(nodeName("w@", host), "w@vm.example.com");
  assert.equal(nodeName("a@b@%h", host), "a@b@vm.example.com");
  assert.equal(nodeName("w@%i%I", host), "w@0");
  assert.equal(nodeName("w%%h@x", host), "w%h@x", "%% is a %");
  assert.equal(nodeName("w%-1@x", host), "w%-1@x", "a % before no letter stays");
  assert.equal(nodeName("w1@%n", "plain"), "w1@plain");
  assert.equal(nodeName("w1@x%d", "plain"), "w1@x");
  assert.throws(
    () => nodeName("w1@%q", host),
    (err: Error) =>
      err instanceof RangeError && /"w1@%q" has %q/.test(err.message) &&
      /%h, %n, %d/.test(err.message) && /%%/.test(err.message),
  );
});

Deno.test("node names: log file paths take the node's parts (Celery's node_format)", () => {
  assert.equal(
    nodePath("/var/log/%n%I-%h-%p-%i.log", "w1@vm.example.com"),
    "/var/log/w1-vm.example.com-w1@vm.example.com-0.log",
  );
  assert.equal(nodePath("/var/log/plain.log", "w1@vm"), "/var/log/plain.log");
  assert.throws(() => nodePath("/var/log/%z.log", "w1@vm"), RangeError);
});

Deno.test("node names: the Worker class builds its name the same way", () => {
  const app = new Celery({ broker: "kv://:memory:" });
  const named = (hostname?: string) => new Worker({ app, pool: "inline", hostname }).hostname;
  assert.equal(named("web1"), "celeriac@web1");
  assert.match(named("w1@%n"), /^w1@[^.%]+$/);
  assert.throws(() => named("w@%x"), /has %x/);
});

/** Wait until `path` matches `re` (30 s at most). */
async function fileSays(path: string, re: RegExp): Promise<void> {
  let text = "";
  for (let i = 0; i < 300 && !re.test(text); i++) {
    await new Promise((r) => setTimeout(r, 100));
    text = await Deno.readTextFile(path).catch(() => "");
  }
  assert.match(text, re, path);
}

/** Run `worker.ts status` until its output matches `re` (20 tries). */
async function bothOnline(url: string, re: RegExp): Promise<void> {
  let out = "";
  for (let i = 0; i < 20 && !re.test(out); i++) {
    const status = Proc.start("celeriac status", Deno.execPath(), [
      "run",
      "-A",
      "worker.ts",
      "status",
      "--app",
      "./tests/apps/worker_app.ts",
      "--broker",
      url,
    ]);
    await status.finished();
    out = status.output;
  }
  assert.match(out, re);
}

Deno.test("node names: --logfile %n%I.log gives each worker of a host its own file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-names-" });
  const url = `kv://${dir}/q.sqlite`;
  const common = ["--app", "./tests/apps/worker_app.ts", "--broker", url, "-c", "1"];
  const pattern = `${dir}/%n%I.log`;
  // A usage error, refused before it opens the broker: checked while the others run.
  const bad = Proc.start("celeriac bad", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    ...common,
    "-n",
    "w@%x",
  ]);
  const workers: Proc[] = [];
  try {
    const start = (name: string) =>
      workers.push(Proc.start(`celeriac ${name}`, Deno.execPath(), [
        "run",
        "-A",
        "worker.ts",
        ...common,
        "-n",
        `${name}@%h`,
        "--logfile",
        pattern,
      ]));
    start("w1");
    // Nothing goes to the console. The file has the ready line within a second while the
    // worker idles (before: only once another line came, or at exit).
    await fileSays(`${dir}/w1.log`, / ready: /);
    start("w2");
    await bothOnline(url, /w1@[\s\S]*w2@/);
    const stopped = await Promise.all(workers.map((w) => w.stop("SIGTERM", 60_000)));
    stopped.forEach((status, i) => assert.equal(status.code, 0, workers[i].output));
    for (const name of ["w1", "w2"]) {
      const text = await Deno.readTextFile(`${dir}/${name}.log`);
      assert.match(text, new RegExp(`celeriac 0\\S* ${name}@`), `${name}.log has its banner`);
    }
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".log"));
    assert.deepEqual(names.sort(), ["w1.log", "w2.log"], "no file named %n%I.log");
    const status = await bad.finished();
    assert.equal(status.code, 2, "a usage error");
    assert.match(bad.output, /error: The node name \(-n\) "w@%x" has %x/);
  } finally {
    await Promise.all([bad, ...workers].map((w) => w.stop("SIGKILL")));
    await Deno.remove(dir, { recursive: true });
  }
});

/** Two workers named `same@%h` on `url`, then `other@%h`: the two are told, the other not. */
async function sameName(url: string): Promise<void> {
  const args = ["--app", "./tests/apps/worker_app.ts", "--broker", url, "-c", "1", "-n", "same@%h"];
  const workers: Proc[] = [];
  try {
    workers.push(await celeriacWorker(args));
    workers.push(await celeriacWorker(args));
    // The second finds the first at start; the first may see the second's hello too.
    await workers[1].waitFor(/Another worker is running as same@\S+: give each worker its own/);
    const inspect = Proc.start("celeriac inspect", Deno.execPath(), [
      "run",
      "-A",
      "worker.ts",
      "inspect",
      "ping",
      "--app",
      "./tests/apps/worker_app.ts",
      "--broker",
      url,
      "--timeout",
      "3",
    ]);
    assert.equal((await inspect.finished()).code, 0, inspect.output);
    assert.match(inspect.output, /Received multiple replies from node name same@\S+: give each/);
    assert.match(inspect.output, /\n1 node online\./, "nodes, not replies, are counted");
    const other = await celeriacWorker([...args.slice(0, -1), "other@%h", "-l", "DEBUG"]);
    workers.push(other);
    await other.waitFor(/No other worker is running as other@/);
    assert.doesNotMatch(other.output, /Another worker is running/);
  } finally {
    await Promise.all(workers.map((w) => w.stop("SIGTERM", 30_000)));
  }
}

Deno.test("node names: two workers started with one -n are told so, and inspect warns (KV, RabbitMQ)", async () => {
  // The two brokers' cases wait on workers and replies, not on each other: they run at once.
  const kv = (async () => {
    const dir = await Deno.makeTempDir({ prefix: "celeriac-dupes-" });
    try {
      await sameName(`kv://${dir}/q.sqlite`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  // On RabbitMQ both consumed kombu's one queue <name>.celery.pidbox: each request reached one
  // of them, so neither the start-up check nor inspect saw the other (and a revoke reached one).
  const rabbitmq = (async () => {
    const vhost = await createVhost("names");
    try {
      await sameName(vhost.url());
    } finally {
      await vhost.remove();
    }
  })();
  const outcomes = await Promise.allSettled([kv, rabbitmq]);
  outcomes.forEach((o, i) => {
    if (o.status === "rejected") {
      throw new Error(`the ${["KV", "RabbitMQ"][i]} case failed`, { cause: o.reason });
    }
  });
});
