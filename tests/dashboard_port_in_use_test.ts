/**
 * A dashboard whose port is taken says how to pick another in the words of
 * whoever made it: the class names its `port` option (examples/dashboard.ts
 * and library users have no `--port` flag), the command line `--port`.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard } from "../dashboard.ts";
import { dashboardFromFlags, startDashboard } from "../src/cli/dashboard.ts";

Deno.test("dashboard: a port in use names the port option, and the command line --port", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  try {
    const embedded = new Dashboard({ app, port });
    await assert.rejects(
      embedded.start(),
      new Deno.errors.AddrInUse(
        `Port ${port} on 127.0.0.1 is in use: pick another with the \`port\` option`,
      ),
    );
    await embedded.stop();
    const values = { port: String(port) };
    const cli = await dashboardFromFlags(app, values);
    await assert.rejects(
      startDashboard(cli, values),
      new Deno.errors.AddrInUse(`Port ${port} on 127.0.0.1 is in use: pick another with --port`),
    );
    await cli.stop();
  } finally {
    taken.close();
    await app.close();
  }
});
