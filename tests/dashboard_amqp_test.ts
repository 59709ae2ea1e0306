/**
 * The dashboard watching real workers on RabbitMQ, in a real browser:
 * `worker.ts dashboard` on a virtual host of this file's own (events on the
 * `celeryev` topic exchange, control on the `celery.pidbox` fanout with
 * replies on `reply.celery.pidbox`, results on rpc://), a Celeriac worker
 * and a Python Celery 5.2.6 worker both started with `-E`, Chromium driven
 * by playwright-core. Both workers are listed online with their language;
 * a task sent from Python shows its state changing live; a failing Python
 * task shows its traceback; revoke from the UI reaches the Celeriac worker;
 * the Queues page shows a queue's depth (a passive declare) and a message
 * the Celeriac worker parked in `celeriac.parked`, which Requeue sends back
 * to its queue (where the worker parks it again); `/metrics` counts the
 * events, the workers online and the queue's depth; Purge empties the
 * queue. Screenshots of every
 * page go to .scratch/screenshots/dashboard_amqp_test/.
 */

import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { Celery } from "../mod.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { nav, screenshots, startDashboard, watchPythonTasks } from "./helpers/dashboard.ts";
import { celeriacWorker, celeryWorker, type Proc } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_CELERY || WITHOUT_RABBITMQ || WITHOUT_CHROMIUM;
const shot = screenshots("dashboard_amqp_test");
const vhost = ignore ? null : await createVhost("dashboard");
/** The vhost name has no characters to escape, so Python and Celeriac read it alike. */
const broker = `amqp://guest:guest@127.0.0.1:5672/${vhost?.name}`;
const backend = "rpc://";
const id = crypto.randomUUID().slice(0, 6);
const pyQueue = `dash-py-${id}`;
const tsQueue = `dash-ts-${id}`;
const idleQueue = `dash-idle-${id}`;
const pyEnv = (queue: string) => ({
  CELERY_BROKER_URL: broker,
  CELERY_RESULT_BACKEND: backend,
  INTEROP_QUEUE: queue,
});

/** The value of a sample of `/metrics` (the first of `name` with every label pair in `has`), or NaN. */
function sample(text: string, name: string, ...has: string[]): number {
  const line = text.split("\n").find((l) =>
    l.startsWith(`${name}{`) && has.every((h) => l.includes(h))
  );
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : NaN;
}

/**
 * Record, with the time since the call, every text the status region shows
 * and every parked-messages request and its answer, so that a failure says
 * what happened.
 */
async function recordTrail(page: Page): Promise<string[]> {
  const trail: string[] = [];
  const t0 = performance.now();
  const note = (s: string) =>
    trail.push(`${(performance.now() - t0).toFixed(0).padStart(6)} ms ${s}`);
  await page.exposeFunction("__celeriacStatus", (text: string) => note(`status: ${text}`));
  // a string: the test's type checking knows no DOM
  await page.addInitScript({
    content: `let last = "";
      new MutationObserver(() => {
        const el = document.getElementById("toast");
        const now = el && !el.hidden ? el.textContent ?? "" : "";
        if (now !== last) __celeriacStatus(now === "" ? "(hidden)" : now);
        last = now;
      }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });`,
  });
  page.on("request", (r) => {
    if (r.url().includes("/api/parked")) note(`${r.method()} ${new URL(r.url()).pathname} sent`);
  });
  page.on("requestfailed", (r) => {
    if (r.url().includes("/api/parked")) {
      note(`${r.method()} ${r.url()} failed: ${r.failure()?.errorText}`);
    }
  });
  page.on("response", async (r) => {
    if (!r.url().includes("/api/parked")) return;
    const body = await r.text().catch((e) => `(body unread: ${e})`);
    note(
      `${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}: ${body.slice(0, 300)}`,
    );
  });
  return trail;
}

Deno.test({
  name: "dashboard on RabbitMQ: a Celeriac and a Python worker, watched from Chromium",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const app = new Celery({ broker, backend });
    const procs: Proc[] = [];
    try {
      procs.push(
        await celeryWorker(
          ["-P", "solo", "-Q", pyQueue, "-n", `dash-py-${id}@%h`, "-E"],
          pyEnv(pyQueue),
        ),
      );
      procs.push(
        await celeriacWorker([
          "--app",
          "./tests/interop/tasks.ts",
          "--broker",
          broker,
          "--backend",
          backend,
          "-Q",
          tsQueue,
          "-c",
          "1",
          "-n",
          `dash-ts-${id}@%h`,
          "-E",
        ]),
      );
      const { proc: dash, url } = await startDashboard({ broker, backend }, ["-Q", idleQueue]);
      procs.push(dash);

      const browser = await launchChromium({
        httpCredentials: { username: "admin", password: "s3cret" },
      });
      try {
        const page = await browser.context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (e) => errors.push(e.message));
        const trail = await recordTrail(page);

        // Workers: both online (heartbeats on celeryev), with their language
        await page.goto(`${url}/#/workers`);
        const pyRow = page.locator("tr[data-worker]", { hasText: `dash-py-${id}@` });
        const tsRow = page.locator("tr[data-worker]", { hasText: `dash-ts-${id}@` });
        await pyRow.getByText("online").waitFor({ timeout: 20_000 });
        await tsRow.getByText("online").waitFor({ timeout: 20_000 });
        assert.match(await pyRow.textContent() ?? "", /python/);
        assert.match(await tsRow.textContent() ?? "", /celeriac/);
        // queues from inspect active_queues over celery.pidbox, replies on reply.celery.pidbox
        await tsRow.getByRole("cell", { name: tsQueue, exact: true }).waitFor({ timeout: 20_000 });
        await pyRow.getByRole("cell", { name: pyQueue, exact: true }).waitFor({ timeout: 20_000 });
        await shot(page, "workers");
        // the Python worker's page: its inspect replies, and a control action it answers
        await pyRow.getByRole("link").click();
        await page.getByRole("heading", { name: "Registered tasks" }).waitFor({ timeout: 20_000 });
        await page.getByText("py.mul").first().waitFor({ timeout: 20_000 });
        await page.getByLabel("Task name").fill("py.mul");
        await page.getByRole("button", { name: "Set rate limit" }).click();
        await page.getByRole("status").filter({ hasText: "new rate limit set successfully" })
          .waitFor();
        await shot(page, "worker-python");

        // Python tasks: live states (the slow one on the Celeriac worker), a traceback
        await watchPythonTasks(page, url, shot, {
          tsEnv: pyEnv(tsQueue),
          pyEnv: pyEnv(pyQueue),
          failMessage: "amqp-boom",
          procs,
        });

        // Revoke from the UI reaches the Celeriac worker (broadcast on celery.pidbox)
        const held = await app.sendTask("tasks.nap", [1], { queue: tsQueue, countdown: 600 });
        await page.goto(`${url}/#/tasks/${held.id}`);
        await page.getByTestId("task-state").filter({ hasText: "RECEIVED" }).waitFor({
          timeout: 20_000,
        });
        await page.getByRole("button", { name: "Revoke" }).click();
        await page.getByTestId("task-state").filter({ hasText: "REVOKED" }).waitFor({
          timeout: 20_000,
        });
        await shot(page, "task-revoked");

        // Queues: a waiting queue's depth, a message the Celeriac worker parked, requeue
        for (let i = 0; i < 3; i++) await app.sendTask("tasks.add", [i, i], { queue: idleQueue });
        await app.sendTask(`no.such.task.${id}`, [], { queue: tsQueue });
        await nav(page, "Queues");
        await page.locator(`tr[data-queue="${idleQueue}"] td.num`).filter({ hasText: "3" })
          .waitFor({ timeout: 20_000 });
        const parked = page.locator("tr[data-parked]", { hasText: `no.such.task.${id}` });
        await parked.waitFor({ timeout: 20_000 });
        assert.match(await parked.textContent() ?? "", new RegExp(tsQueue));
        const first = await parked.getAttribute("data-parked");
        const parkedAt = async () => {
          const res = await page.request.get(`${url}/api/parked`);
          const body = await res.json() as { parked: { taskName?: string; parkedAt: string }[] };
          return body.parked.find((p) => p.taskName === `no.such.task.${id}`)?.parkedAt;
        };
        const firstAt = await parkedAt();
        assert.ok(firstAt, "the parked message is listed by /api/parked");
        await shot(page, "queues");
        // the count field says 1, and nothing else is parked on this vhost; the toast shows
        // for 5 s, so the wait starts before the click
        const requeued = page.getByRole("status").filter({
          hasText: "Requeued 1 parked message(s)",
        }).waitFor().catch((err) => {
          throw new Error(
            `no Requeue status; what the page said and asked:\n${trail.join("\n")}\n` +
              `dashboard output:\n${dash.output.slice(-4000)}`,
            { cause: err },
          );
        });
        await page.getByRole("button", { name: "Requeue" }).click();
        await requeued;
        // back on its queue, the worker refuses it again: parked anew (a later parkedAt), under a
        // new id, since a requeue marks what it moves (x-celeriac-requeue, part of the id in
        // src/broker/amqp_park_id.ts) and the copy it moved is gone
        const deadline = Date.now() + 20_000;
        let again = await parkedAt();
        while ((again === undefined || again === firstAt) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          again = await parkedAt();
        }
        assert.ok(again && again > firstAt, `parked anew: ${firstAt} then ${again}`);
        await page.locator(`tr[data-parked]:not([data-parked="${first}"])`, {
          hasText: `no.such.task.${id}`,
        }).waitFor({ timeout: 20_000 });
        assert.equal(await page.locator(`tr[data-parked="${first}"]`).count(), 0);

        // /metrics: events counted by type, both workers online, the queue's depth
        const res = await page.request.get(`${url}/metrics`);
        assert.equal(res.status(), 200);
        const metrics = await res.text();
        for (const [type, task] of [["task-succeeded", "tasks.hold"], ["task-failed", "py.fail"]]) {
          const n = sample(metrics, "flower_events_total", `type="${type}"`, `task="${task}"`);
          assert.ok(n >= 1, `${type} of ${task}: ${n}\n${metrics}`);
        }
        for (const node of [`dash-py-${id}@`, `dash-ts-${id}@`]) {
          assert.equal(sample(metrics, "flower_worker_online", `worker="${node}`), 1, metrics);
        }
        assert.equal(sample(metrics, "celeriac_queue_length", `queue="${idleQueue}"`), 3, metrics);

        // Purge with confirmation (queue.purge on a channel of its own)
        await nav(page, "Queues");
        await page.locator(`tr[data-queue="${idleQueue}"]`).getByRole("button", { name: "Purge…" })
          .click();
        await page.getByRole("dialog").getByLabel("Queue name").fill(idleQueue);
        await page.getByRole("dialog").getByRole("button", { name: "Purge" }).click();
        await page.getByRole("status").filter({ hasText: `Purged 3 message(s) from ${idleQueue}` })
          .waitFor();
        assert.equal(await app.queueDepth(idleQueue), 0);

        // Overview: both workers online, non-zero throughput
        await nav(page, "Overview");
        await page.getByTestId("workers-online").waitFor();
        const finished = Number(await page.getByTestId("finished-5m").textContent());
        assert.ok(finished >= 3, `finished in the last 5 min: ${finished}`);
        await page.waitForTimeout(1500);
        await shot(page, "overview");
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
      }
    } finally {
      for (const p of procs.reverse()) await p.stop();
      await app.close();
      await vhost?.remove();
    }
  },
});
