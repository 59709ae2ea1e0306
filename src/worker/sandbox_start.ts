/**
 * Checks before a pool's Web Workers start: the process may read what they
 * load, each sandbox is within the process's permissions, and whether Deno may ask at a terminal for a
 * permission a sandboxed task was not granted. Deno asks when the process's stdin and stderr are both
 * terminals, unless it was started with `--no-prompt` or `DENO_NO_PROMPT`;
 * the asking task waits for the answer, and a yes grants its Web Worker what
 * its sandbox denies. A process cannot turn prompts off once started, so the
 * worker says so at start-up. Also the groups a pool starts its Web
 * Workers in ({@link sandboxGroups}).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { grantedNow } from "../client/runtime.ts";
import type { Group } from "./pool_member.ts";
import { moduleDirs, type Sandbox, spawnPermissions, ungrantedPermission } from "./sandboxes.ts";

const log = getLogger(["celeriac", "worker", "pool"]);

const DEFAULT_SANDBOX: Sandbox = { key: '"inherit"', permissions: "inherit", tasks: [] };

function noPromptSet(): boolean {
  if (grantedNow({ name: "env", variable: "DENO_NO_PROMPT" })) {
    if (Deno.env.get("DENO_NO_PROMPT")) return true;
  }
  if (!grantedNow({ name: "read", path: "/proc/self/cmdline" })) return false;
  try {
    const args = new TextDecoder().decode(Deno.readFileSync("/proc/self/cmdline")).split("\0");
    return args.includes("--no-prompt");
  } catch {
    return false; // not Linux, or Deno reads /proc/self only with every permission
  }
}

/**
 * Whether a sandboxed task denied a permission could make Deno ask at a
 * terminal instead of failing: stdin and stderr are terminals and neither
 * `DENO_NO_PROMPT` nor `--no-prompt` is known to be set (each is read only
 * where it is granted without a prompt).
 *
 * @example
 * ```ts ignore
 * if (sandboxesMayPrompt()) log.warn("run with --no-prompt");
 * ```
 *
 * @returns true when a prompt is possible
 */
export function sandboxesMayPrompt(): boolean {
  return Deno.stdin.isTerminal() && Deno.stderr.isTerminal() && !noPromptSet();
}

/**
 * The root of the file system a `deno compile` binary embeds its modules in
 * (`file:///tmp/deno-compile-<name>/`), from its `Deno.mainModule`, or null
 * for a program `deno run` runs. Deno loads a Web Worker's modules from it
 * whatever the process may read.
 *
 * @example
 * ```ts
 * import { compiledRoot } from "./sandbox_start.ts";
 * compiledRoot("file:///tmp/deno-compile-celeriac/worker.ts"); // "file:///tmp/deno-compile-celeriac/"
 * compiledRoot("file:///srv/celeriac/worker.ts"); // null
 * ```
 *
 * @param mainModule the program's main module URL
 * @returns the embedded file system's URL, with a trailing slash, or null
 */
export function compiledRoot(mainModule: string): string | null {
  return /^.*?\/deno-compile-[^/]+\//.exec(mainModule)?.[0] ?? null;
}

/**
 * Before a pool's Web Workers start: throw, naming the `--allow-read` flag,
 * when the process may not read the Web Worker script or the app module they
 * load (a `file:` URL), unless a `deno compile` binary embeds it
 * ({@link compiledRoot}). Without it each Web Worker died with Deno's
 * `Uncaught (in worker ...) Requires read access`, printed once per Web
 * Worker, before the pool's own error. Where Deno can ask at a terminal
 * instead, it is left to ask.
 *
 * @example
 * ```ts ignore
 * checkPoolLoads(RUNNER_URL, "file:///srv/app/tasks.ts");
 * ```
 *
 * @param runner the Web Worker script (`runner.ts`), in Celeriac's source
 * @param module the app module's URL
 * @param mainModule the program's main module URL (default `Deno.mainModule`)
 * @throws {Error} naming the files and the flag that lets the process read them
 */
export function checkPoolLoads(
  runner: URL,
  module: string,
  mainModule: string = Deno.mainModule,
): void {
  if (sandboxesMayPrompt()) return;
  const embedded = compiledRoot(mainModule);
  const loads: { file: URL; dir: URL }[] = [{ file: runner, dir: new URL("../../", runner) }];
  if (URL.canParse(module)) loads.push({ file: new URL(module), dir: new URL("./", module) });
  const unread = loads.filter(({ file }) =>
    file.protocol === "file:" &&
    !(embedded && file.href.startsWith(embedded)) &&
    !grantedNow({ name: "read", path: decodeURIComponent(file.pathname) })
  );
  if (unread.length === 0) return;
  const files = unread.map(({ file }) => decodeURIComponent(file.pathname));
  const dirs = unread.map(({ dir }) => decodeURIComponent(dir.pathname));
  const flag = [...new Set(dirs)].filter((d) => !dirs.some((o) => o !== d && d.startsWith(o)))
    .map((d) => d.replace(/\/$/, ""));
  throw new Error(
    `The pool's Web Workers cannot load ${files.join(" and ")}: the worker process has no ` +
      `read access to ${unread.length > 1 ? "them" : "it"}. Run deno with ` +
      `--allow-read=${flag.join(",")}`,
  );
}

/**
 * The error of a sandbox's Web Worker that cannot start.
 *
 * @example
 * ```ts ignore
 * throw cannotSpawn(group, 'the worker process has no read access to "/srv"');
 * ```
 *
 * @param group the sandbox's group
 * @param why what stopped it
 * @returns the error, saying what to change
 */
export function cannotSpawn(group: Group, why: string): Error {
  return new Error(
    `Cannot start a Web Worker with permissions ${group.sandbox.key} (tasks ` +
      `${group.sandbox.tasks.join(", ") || "all"}): ${why}. A sandbox cannot have more ` +
      `permissions than the worker process: grant them to the process, or narrow the sandbox`,
  );
}

/**
 * Before a pool's Web Workers start: throw when a sandbox asks for a
 * permission the process lacks (Deno would ask for it at a terminal, or
 * refuse it), and warn when a sandboxed task could be asked for one at a
 * terminal ({@link sandboxesMayPrompt}).
 *
 * @example
 * ```ts ignore
 * checkSandboxStart(groups);
 * ```
 *
 * @param groups the pool's groups, with the permissions their Web Workers start with
 * @throws {Error} naming the first permission the process lacks
 */
export function checkSandboxStart(groups: readonly Group[]): void {
  for (const g of groups) {
    const missing = ungrantedPermission(g.spawn.permissions);
    if (missing) throw cannotSpawn(g, `the worker process has no ${missing}`);
  }
  if (groups.some((g) => g.sandbox.permissions !== "inherit") && sandboxesMayPrompt()) {
    log.warn(
      "Permission sandboxes in a terminal: a sandboxed task that touches what it was not " +
        "granted makes Deno ask at this terminal (the task waits for the answer, and a yes " +
        "grants it to that Web Worker): start the process with DENO_NO_PROMPT=1 (or " +
        "--no-prompt, which the worker cannot see without -A) and it fails with " +
        "PermissionDenied instead",
    );
  }
}

/**
 * A pool's sandbox groups, with no Web Worker yet: one per sandbox (one
 * with the process's permissions, running every task, when there is none),
 * each with the permissions its Web Workers are spawned with. The app
 * module's directories are looked up only when a sandbox lists the paths it
 * may read: those its list does not cover are granted for loading the app,
 * then revoked (`spawnPermissions`).
 *
 * @example
 * ```ts ignore
 * const groups = sandboxGroups(options.sandboxes, options.module);
 * checkSandboxStart(groups);
 * ```
 *
 * @param sandboxes the pool's sandboxes; default none
 * @param module URL of the app module
 * @returns the groups, in the order of `sandboxes`
 */
export function sandboxGroups(sandboxes: Sandbox[] | undefined, module: string): Group[] {
  const all = sandboxes?.length ? sandboxes : [DEFAULT_SANDBOX];
  const lists = all.some((s) =>
    typeof s.permissions === "object" && Array.isArray(s.permissions.read)
  );
  const dirs = lists ? moduleDirs(module) : [];
  return all.map((sandbox) => ({
    sandbox,
    spawn: spawnPermissions(sandbox.permissions, dirs, dirs.length ? Deno.cwd() : "/"),
    members: [],
    failures: 0,
  }));
}
