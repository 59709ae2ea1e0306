/** An app module whose import throws (a task module with a bug at top level), for tests/cli_logging_test.ts. */
import { Celery } from "../../mod.ts";

export const app = new Celery({ broker: "kv://:memory:" });
throw new Error("settings.json is missing");
