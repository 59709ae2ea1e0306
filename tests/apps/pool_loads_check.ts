/**
 * Runs the threads pool's start-up read check (`checkPoolLoads`) in a
 * process started without `--allow-read`, as a `deno compile` binary run
 * with the README's `--allow-read=.` would be for its embedded files:
 * Celeriac's `runner.ts` and the app module under the main module's root
 * `args[0]`. Prints `loads ok` or the check's error.
 */

import { checkPoolLoads } from "../../src/worker/sandbox_start.ts";
import { report } from "../helpers/report.ts";

const [root] = Deno.args;
try {
  checkPoolLoads(
    new URL("src/worker/runner.ts", root),
    new URL("tasks.ts", root).href,
    `${root}worker.ts`,
  );
  report("loads ok");
} catch (err) {
  report((err as Error).message);
}
