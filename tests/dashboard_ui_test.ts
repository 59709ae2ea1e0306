/**
 * The dashboard's UI in a real browser (Debian's Chromium via
 * playwright-core), fed with the events a real Celery 5.2.6 worker sent
 * (tests/fixtures/dashboard/events_all.json, replayed with timestamps
 * moved to now) plus live events the test adds, on an in-memory KV broker:
 * every page renders, live updates arrive without reloads, actions reach
 * the broker, basic auth rejects a wrong password, the Tasks page fits a
 * phone's width; Retry is offered only where the task can be sent again, a
 * retry's exception is labelled as such, and times are in the browser's
 * time zone. Screenshots go to .scratch/screenshots/dashboard_ui_test/
 * (README's docs/img/dashboard-overview.png comes from its overview shot;
 * dashboard-workers.png, a Celeriac and a Python worker online, from
 * dashboard_live_test's workers shot).
 */

import assert from "node:assert/strict";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { nav, replayDashboard, screenshots, taskEvent } from "./helpers/dashboard.ts";

const shot = screenshots("dashboard_ui_test");

Deno.test({
  name: "dashboard UI: pages, live updates, actions and auth in Chromium",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { app, events, dashboard, url } = await replayDashboard({ basic: ["admin:s3cret"] });
    try {
      // a wrong password is rejected
      const wrong = await fetch(url, { headers: { authorization: `Basic ${btoa("admin:nope")}` } });
      await wrong.body?.cancel();
      assert.equal(wrong.status, 401);

      const browser = await launchChromium({
        httpCredentials: { username: "admin", password: "s3cret" },
      });
      try {
        const page = await browser.context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (e) => errors.push(e.message));
        page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

        // Overview: the worker online, outcomes counted, both charts drawn
        await page.goto(url);
        await page.getByTestId("workers-online").filter({ hasText: "1 / 1" }).waitFor();
        const finished = Number(await page.getByTestId("finished-5m").textContent());
        assert.ok(finished > 20, `finished in 5 min: ${finished}`);
        assert.equal(await page.locator("figure.chart canvas").count(), 2);
        await page.waitForTimeout(1200); // a live tick redraws the charts
        await shot(page, "overview");

        // Workers: the Python worker, online by heartbeat
        await nav(page, "Workers");
        const row = page.locator('tr[data-worker="celery@fixture-host"]');
        await row.getByText("online").waitFor();
        assert.match(await row.textContent() ?? "", /python \(py-celery 5\.2\.6\)/);
        await shot(page, "workers");
        await row.getByRole("link").click();
        await page.getByText("Inspect replies are not available").waitFor();
        // the heartbeat's processed and the events' succeeded / failed say where they come from
        await page.getByText(
          "processed (the worker's count since it started, at its last heartbeat)",
        )
          .waitFor();
        await page.getByText("(task events this dashboard saw since it started)").waitFor();
        await shot(page, "worker");

        // Tasks: the table, a state filter, a failure's traceback and timeline
        await nav(page, "Tasks");
        await page.locator("tr[data-task]").first().waitFor();
        assert.equal(await page.locator("tr[data-task]").count(), 25); // one page
        await shot(page, "tasks");
        await page.getByLabel("State").selectOption("FAILURE");
        const others = page.locator("tr[data-task] .badge", { hasNotText: "FAILURE" });
        await page.locator("tr[data-task] .badge", { hasText: "FAILURE" }).first().waitFor();
        for (let i = 0; i < 50 && await others.count() > 0; i++) await page.waitForTimeout(100);
        assert.equal(await others.count(), 0);
        await page.locator("tr[data-task]", { hasText: "boom" }).first().getByRole("link").click();
        await page.getByTestId("traceback").filter({ hasText: "ValueError: boom" }).waitFor();
        assert.deepEqual(
          await page.getByTestId("timeline").locator(".badge").allTextContents(),
          ["PENDING", "RECEIVED", "STARTED", "FAILURE"],
        );
        await shot(page, "task-failed");

        // A chain: the child links to its parent and the workflow is drawn
        await page.goto(`${url}/#/tasks/3871bf7d-3415-4f26-aa48-dee732b4c151`);
        await page.getByRole("list", { name: "Workflow steps from the root" }).waitFor();
        assert.equal(await page.locator("ol.steps li").count(), 2);

        // Live: a new task's state changes on the open page, without reload
        events.push(
          taskEvent("task-received", "live-1", {
            name: "capapp.add",
            args: "(40, 2)",
            kwargs: "{}",
          }),
        );
        await page.goto(`${url}/#/tasks/live-1`);
        await page.getByTestId("task-state").filter({ hasText: "RECEIVED" }).waitFor();
        events.push(taskEvent("task-started", "live-1"));
        await page.getByTestId("task-state").filter({ hasText: "STARTED" }).waitFor();
        events.push(taskEvent("task-succeeded", "live-1", { result: "42", runtime: 0.002 }));
        await page.getByTestId("task-state").filter({ hasText: "SUCCESS" }).waitFor();

        // A long result (a worker sends up to 1,024 characters) keeps its row a few lines tall
        const long = `'${"x".repeat(1000)}...'`;
        events.push(
          taskEvent("task-received", "long-1", { name: "capapp.long", args: "()", kwargs: "{}" }),
        );
        events.push(taskEvent("task-succeeded", "long-1", { result: long, runtime: 0.001 }));
        await page.goto(`${url}/#/tasks?name=capapp.long`);
        const longRow = page.locator('tr[data-task="long-1"]');
        await longRow.waitFor();
        const height = (await longRow.boundingBox())!.height;
        assert.ok(height < 100, `a row with a long result is ${height}px tall`);

        // A task id of the caller's (task_id=) with /, ?, # and %: its link, page and actions
        const odd = "report/2024-01?part=1#a 100%";
        events.push(
          taskEvent("task-received", odd, { name: "capapp.odd_id", args: "()", kwargs: "{}" }),
        );
        await page.goto(`${url}/#/tasks?name=capapp.odd_id`);
        // Its own row: until the table re-renders for the new filter it still shows long-1's.
        await page.locator(`tr[data-task="${odd}"]`).getByRole("link").click();
        await page.getByTestId("task-state").filter({ hasText: "RECEIVED" }).waitFor();
        assert.match(
          await page.locator("h2").textContent() ?? "",
          /report\/2024-01\?part=1#a 100%/,
        );
        await page.getByRole("button", { name: "Revoke" }).click();
        await page.getByRole("status").filter({ hasText: `Revoke sent for ${odd}` }).waitFor();
        assert.deepEqual(errors, []);
        await page.goto(`${url}/#/tasks/100%`); // typed by hand: no page error, the API's 404
        await page.getByText("No task 100% is known").waitFor();
        assert.deepEqual(errors.splice(0), [
          "Failed to load resource: the server responded with a status of 404 (Not Found)",
        ]);

        // Revoke from the UI reaches the broker (and so every worker)
        events.push(
          taskEvent("task-received", "rev-1", {
            name: "capapp.tracked",
            args: "(30,)",
            kwargs: "{}",
          }),
        );
        await page.goto(`${url}/#/tasks/rev-1`);
        // A double click sends one request: the button is disabled while it runs (held here).
        let revokePosts = 0;
        const release = Promise.withResolvers<void>();
        await page.route("**/api/tasks/rev-1/revoke", async (route) => {
          revokePosts++;
          await release.promise;
          await route.continue();
        });
        const revokeButton = page.getByRole("button", { name: "Revoke" });
        await revokeButton.dblclick();
        assert.equal(await revokeButton.isDisabled(), true, "Revoke is disabled while it runs");
        release.resolve();
        await page.getByRole("status").filter({ hasText: "Revoke sent for rev-1" }).waitFor();
        assert.equal(revokePosts, 1, "a double click on Revoke sent one request");
        const revoked = await (await app.broker()).listRevoked();
        assert.ok(revoked.some((r) => r.id === "rev-1"));

        // Queues: depth, a parked message with its reason, requeue, purge with confirmation
        for (let i = 0; i < 3; i++) await app.sendTask("capapp.add", [i, i]);
        await app.sendTask("no.such.task", [], { queue: "parked-demo" });
        const broker = await app.broker();
        const [m] = await broker.take(["parked-demo"], {
          max: 1,
          signal: AbortSignal.timeout(2000),
        });
        await broker.reject([{ delivery: m, reason: 'unregistered task "no.such.task"' }]);
        await nav(page, "Queues");
        await page.locator('tr[data-queue="celery"] td.num').filter({ hasText: "3" }).waitFor();
        await page.locator("tr[data-parked]").filter({ hasText: "unregistered task" }).waitFor();
        await shot(page, "queues");
        await page.getByRole("button", { name: "Requeue" }).click();
        await page.getByRole("status").filter({ hasText: "Requeued 1 parked message(s)" })
          .waitFor();
        await page.locator('tr[data-queue="celery"]').getByRole("button", { name: "Purge…" })
          .click();
        const dialog = page.getByRole("dialog");
        assert.equal(await dialog.getByRole("button", { name: "Purge" }).isDisabled(), true);
        await dialog.getByLabel("Queue name").fill("celery");
        await dialog.getByRole("button", { name: "Purge" }).click();
        await page.getByRole("status").filter({ hasText: "Purged 3 message(s) from celery" })
          .waitFor();
        assert.equal(await app.queueDepth("celery"), 0);

        // Every form control has a label; nothing overflows a phone's width
        const unlabeled = await page.locator(
          "input:not(label input):not([aria-label]), select:not(label select):not([aria-label])",
        ).count();
        assert.equal(unlabeled, 0);
        await page.setViewportSize({ width: 390, height: 844 });
        await page.goto(`${url}/#/tasks`);
        await page.locator("tr[data-task]").first().waitFor();
        const overflow = await page.evaluate<number>("document.documentElement.scrollWidth");
        assert.ok(overflow <= 390, `page is ${overflow}px wide at 390px`);
        await shot(page, "tasks-phone");
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
      }
    } finally {
      await dashboard.stop();
      await app.purge("parked-demo");
      await app.close();
    }
  },
});

Deno.test({
  name: "dashboard UI: Retry is offered for the failed tasks the server can send again",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { app, events, dashboard, url } = await replayDashboard();
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      // An unregistered task: the worker sends task-failed alone, no name, no arguments
      events.push(taskEvent("task-failed", "unreg-1", { exception: "NotRegistered('no.such')" }));
      await page.goto(`${url}/#/tasks/unreg-1`);
      await page.getByTestId("task-state").filter({ hasText: "FAILURE" }).waitFor();
      await page.getByTestId("no-retry").waitFor();
      assert.equal(await page.getByRole("button", { name: /^Retry/ }).count(), 0);
      // A rejected task (Reject(requeue=False)) with its arguments: sent again like a failure
      events.push(
        taskEvent("task-received", "rej-1", { name: "capapp.add", args: "(1, 2)", kwargs: "{}" }),
      );
      events.push(taskEvent("task-rejected", "rej-1", { requeue: false }));
      await page.goto(`${url}/#/tasks/rej-1`);
      await page.getByTestId("task-state").filter({ hasText: "REJECTED" }).waitFor();
      await page.getByRole("button", { name: /^Retry/ }).click();
      await page.getByRole("status").filter({ hasText: /Sent capapp\.add again as / }).waitFor();
      assert.equal(await app.queueDepth("celery"), 1);
    } finally {
      await browser.close();
      await dashboard.stop();
      await app.purge("celery");
      await app.close();
    }
  },
});

Deno.test({
  name: "dashboard UI: a task that succeeded after a retry shows the retry's exception as such",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { app, events, dashboard, url } = await replayDashboard();
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      const traceback = "Traceback (most recent call last):\ncelery.exceptions.Retry: Retry in 1s";
      [
        taskEvent("task-received", "ret-1", { name: "capapp.flaky", args: "(1,)", kwargs: "{}" }),
        taskEvent("task-started", "ret-1"),
        taskEvent("task-retried", "ret-1", { exception: "KeyError('transient')", traceback }),
      ].forEach((e) => events.push(e));
      await page.goto(`${url}/#/tasks/ret-1`);
      await page.getByTestId("task-state").filter({ hasText: "RETRY" }).waitFor();
      await page.getByText("Exception (last retry)", { exact: true }).waitFor();
      [
        taskEvent("task-received", "ret-1"),
        taskEvent("task-started", "ret-1"),
        taskEvent("task-succeeded", "ret-1", { result: "2", runtime: 0.001 }),
      ].forEach((e) => events.push(e));
      await page.getByTestId("task-state").filter({ hasText: "SUCCESS" }).waitFor();
      await page.getByRole("heading", { name: "Traceback (last retry)" }).waitFor();
      await page.getByText("Exception (last retry)", { exact: true }).waitFor();
      // a failure's own exception keeps the plain labels
      [
        taskEvent("task-received", "fail-1", { name: "capapp.boom", args: "()", kwargs: "{}" }),
        taskEvent("task-failed", "fail-1", { exception: "ValueError('boom')", traceback }),
      ].forEach((e) => events.push(e));
      await page.goto(`${url}/#/tasks/fail-1`);
      await page.getByTestId("task-state").filter({ hasText: "FAILURE" }).waitFor();
      await page.getByRole("heading", { name: "Traceback", exact: true }).waitFor();
      await page.getByText("Exception", { exact: true }).waitFor();
    } finally {
      await browser.close();
      await dashboard.stop();
      await app.close();
    }
  },
});

Deno.test({
  name: "dashboard UI: a task's timeline, ETA and the parked time are in the browser's time zone",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { app, events, dashboard, url } = await replayDashboard();
    // Tokyo is UTC+9 all year: what the page shows is the UTC time 9 hours on
    const browser = await launchChromium({ timezoneId: "Asia/Tokyo" });
    const tokyo = (ms: number) =>
      new Date(ms + 9 * 3600_000).toISOString().replace("T", " ").slice(0, 23);
    try {
      const page = await browser.context.newPage();
      const at = Math.floor(Date.now() / 1000) + 0.25;
      const eta = new Date((at + 60) * 1000).toISOString().replace("Z", "+00:00");
      events.push(taskEvent("task-received", "tz-1", {
        name: "capapp.later",
        args: "()",
        kwargs: "{}",
        eta,
        timestamp: at,
      }));
      await page.goto(`${url}/#/tasks/tz-1`);
      await page.getByTestId("task-state").filter({ hasText: "RECEIVED" }).waitFor();
      const timeline = await page.getByTestId("timeline").textContent() ?? "";
      assert.ok(timeline.includes(tokyo(at * 1000)), `${timeline}: not ${tokyo(at * 1000)}`);
      const fields = await page.getByTestId("task-fields").textContent() ?? "";
      assert.ok(fields.includes(`${tokyo((at + 60) * 1000)} / —`), fields);
      // a parked message's time
      await app.sendTask("no.such.task", [], { queue: "tz-parked" });
      const broker = await app.broker();
      const [m] = await broker.take(["tz-parked"], { max: 1, signal: AbortSignal.timeout(2000) });
      const before = Date.now();
      await broker.reject([{ delivery: m, reason: 'unregistered task "no.such.task"' }]);
      const after = Date.now();
      await page.goto(`${url}/#/queues`);
      const cell = page.locator("tr[data-parked] td").first();
      await cell.waitFor();
      const parked = await cell.textContent() ?? "";
      const minutes = [tokyo(before).slice(0, 16), tokyo(after).slice(0, 16)];
      assert.ok(minutes.includes(parked.slice(0, 16)), `${parked}, not in ${minutes}`);
    } finally {
      await browser.close();
      await dashboard.stop();
      await app.purge("tz-parked");
      await app.close();
    }
  },
});
