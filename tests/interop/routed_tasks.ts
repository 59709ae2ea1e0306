/**
 * The interop tasks (tasks.ts) in an app that routes Python's tasks
 * (`py.*`) to the queue named by INTEROP_PY_QUEUE, as a Celery app's
 * `task_routes` would: for the routing tests of follow-ups.
 */

import { app } from "./tasks.ts";

app.configure({ taskRoutes: { "py.*": Deno.env.get("INTEROP_PY_QUEUE") ?? "python" } });

export { app };
