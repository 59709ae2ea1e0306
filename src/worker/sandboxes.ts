/**
 * Permission sandboxes: task code runs in Web Workers whose Deno
 * permissions are narrower than the worker process's. Tasks with the same
 * permission set share a group of Web Workers; every distinct set gets its
 * own group.
 *
 * @module
 */

import { dirname, resolve, sep } from "node:path";
import type { TaskPermissions } from "../client/permissions.ts";
import { grantedNow } from "../client/runtime.ts";

export { permissionDenied } from "./permission_denied.ts";

const KINDS = ["read", "write", "net", "env", "sys", "run", "ffi", "import"] as const;
type Kind = typeof KINDS[number];
type Value = boolean | "inherit" | string[];

/**
 * A group of tasks that run under one permission set.
 *
 * @example
 * ```ts
 * import type { Sandbox } from "@celeriac/celeriac/worker";
 * const sandbox: Sandbox = {
 *   key: '{"net":["api.example.com:443"]}',
 *   permissions: { net: ["api.example.com:443"] },
 *   tasks: ["tasks.fetch_rates"],
 * };
 * ```
 */
export interface Sandbox {
  /** Canonical text of the permission set (equal sets, equal keys). */
  key: string;
  /** The Deno permissions of its Web Workers. */
  permissions: TaskPermissions;
  /** Names of the tasks that run in it. */
  tasks: string[];
}

function isKind(k: string): k is Kind {
  return (KINDS as readonly string[]).includes(k);
}

function checkValue(kind: string, v: unknown): Value {
  if (v === true || v === false || v === "inherit") return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v;
  throw new TypeError(
    `Permission "${kind}" must be true, false, "inherit" or a list of strings, got ${
      JSON.stringify(v)
    }`,
  );
}

/**
 * Check a permission set and return it in canonical form: known kinds
 * only, lists sorted and without duplicates, kinds in a fixed order.
 *
 * @example
 * ```ts
 * import { normalizePermissions } from "@celeriac/celeriac/worker";
 * normalizePermissions({ read: ["b", "a", "a"], net: false });
 * // { read: ["a", "b"], net: false }
 * ```
 *
 * @param p a permission set (`"inherit"`, `"none"` or an object)
 * @returns the same set, canonical
 * @throws {TypeError} for unknown kinds or values
 */
export function normalizePermissions(p: TaskPermissions): TaskPermissions {
  if (p === "inherit" || p === "none") return p;
  if (typeof p !== "object" || p === null || Array.isArray(p)) {
    throw new TypeError(
      `Permissions must be "inherit", "none" or an object like { net: ["api.example.com:443"] }, ` +
        `got ${JSON.stringify(p)}`,
    );
  }
  const input = p as Record<string, unknown>;
  for (const k of Object.keys(input)) {
    if (!isKind(k)) {
      throw new TypeError(`Unknown permission "${k}": use one of ${KINDS.join(", ")}`);
    }
  }
  const out: Record<string, Value> = {};
  for (const k of KINDS) {
    if (input[k] === undefined) continue;
    const v = checkValue(k, input[k]);
    out[k] = Array.isArray(v) ? [...new Set(v)].sort() : v;
  }
  return out as TaskPermissions;
}

/**
 * Parse the `--task-permissions` flag: `inherit`, `none`, a JSON object
 * (`{"net":["api.example.com:443"],"read":false}`), or Deno's own flags
 * (`--allow-net=api.example.com:443 --allow-env=TZ`; a kind not named is
 * denied; `-A` / `--allow-all` means `inherit`).
 *
 * @example
 * ```ts
 * import { parseTaskPermissions } from "@celeriac/celeriac/worker";
 * parseTaskPermissions("--allow-net=api.example.com:443,127.0.0.1:6379 --allow-env");
 * // { net: ["127.0.0.1:6379", "api.example.com:443"], env: true }
 * parseTaskPermissions('{"read": ["./data"]}'); // { read: ["./data"] }
 * parseTaskPermissions("none"); // "none"
 * ```
 *
 * @param text the flag's value
 * @returns the permission set
 * @throws {TypeError} when the value cannot be read
 */
export function parseTaskPermissions(text: string): TaskPermissions {
  const s = text.trim();
  if (s === "inherit" || s === "none") return s;
  if (s.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(s);
    } catch (err) {
      throw new TypeError(`--task-permissions is not valid JSON: ${(err as Error).message}`);
    }
    return normalizePermissions(parsed as TaskPermissions);
  }
  const out: Record<string, Value> = {};
  for (const token of s.split(/\s+/).filter(Boolean)) {
    if (token === "-A" || token === "--allow-all") return "inherit";
    const m = /^--allow-([a-z]+)(?:=(.*))?$/.exec(token);
    if (!m || !isKind(m[1])) {
      throw new TypeError(
        `--task-permissions: cannot read "${token}"; use inherit, none, a JSON object, or ` +
          `Deno flags such as --allow-net=api.example.com:443 --allow-read=./data`,
      );
    }
    out[m[1]] = m[2] === undefined ? true : m[2].split(",").filter(Boolean);
  }
  return normalizePermissions(out as TaskPermissions);
}

/**
 * The canonical text of a permission set: equal sets give equal keys.
 *
 * @example
 * ```ts
 * import { permissionsKey } from "@celeriac/celeriac/worker";
 * permissionsKey({ net: ["b", "a"] }) === permissionsKey({ net: ["a", "b"] }); // true
 * ```
 *
 * @param p a permission set
 * @returns its key
 */
export function permissionsKey(p: TaskPermissions): string {
  return JSON.stringify(normalizePermissions(p));
}

/**
 * Group tasks by permission set: a task's `permissions` option, else the
 * worker's default. Groups come in the order their first task was
 * registered.
 *
 * @example
 * ```ts
 * import { planSandboxes } from "@celeriac/celeriac/worker";
 * const plan = planSandboxes([
 *   { name: "t.add", options: {} },
 *   { name: "t.fetch", options: { permissions: { net: ["api.example.com:443"] } } },
 *   { name: "t.mul", options: {} },
 * ], "none");
 * plan.map((s) => s.tasks); // [["t.add", "t.mul"], ["t.fetch"]]
 * ```
 *
 * @param tasks the registered tasks
 * @param defaults permissions of tasks that set none
 * @returns the sandboxes
 */
export function planSandboxes(
  tasks: Iterable<{ name: string; options: { permissions?: TaskPermissions } }>,
  defaults: TaskPermissions = "inherit",
): Sandbox[] {
  const byKey = new Map<string, Sandbox>();
  for (const t of tasks) {
    const permissions = normalizePermissions(t.options.permissions ?? defaults);
    const key = JSON.stringify(permissions);
    let s = byKey.get(key);
    if (!s) byKey.set(key, s = { key, permissions, tasks: [] });
    s.tasks.push(t.name);
  }
  return [...byKey.values()];
}

/**
 * The tasks of a sandbox plan that run in a permission sandbox (any set but
 * `inherit`): those the inline pool, which runs tasks in the worker's own
 * thread, cannot serve.
 *
 * @example
 * ```ts
 * import { planSandboxes, sandboxedTasks } from "./sandboxes.ts";
 * sandboxedTasks(planSandboxes([
 *   { name: "t.add", options: {} },
 *   { name: "t.fetch", options: { permissions: { net: ["api.example.com:443"] } } },
 * ])); // ["t.fetch"]
 * ```
 *
 * @param sandboxes what {@link planSandboxes} planned
 * @returns the names of the sandboxed tasks
 */
export function sandboxedTasks(sandboxes: readonly Sandbox[]): string[] {
  return sandboxes.filter((s) => s.permissions !== "inherit").flatMap((s) => s.tasks);
}

/**
 * A permission a Web Worker gives up once the app module is loaded: a
 * whole kind, or read access to one path.
 *
 * @example
 * ```ts
 * import type { Revocation } from "@celeriac/celeriac/worker";
 * const all: Revocation = { name: "env" };
 * const one: Revocation = { name: "read", path: "/srv/app" };
 * ```
 */
export type Revocation =
  | {
    name: "read" | "write" | "net" | "env" | "sys" | "run" | "ffi" | "import";
    path?: undefined;
  }
  | { name: "read"; path: string };

/**
 * Permissions a sandboxed Web Worker starts with, and what it gives up once
 * the app module is loaded (before it runs any task).
 *
 * @example
 * ```ts
 * import type { SpawnPermissions } from "@celeriac/celeriac/worker";
 * const spawn: SpawnPermissions = {
 *   permissions: { read: ["/srv/app"], net: "inherit", env: "inherit", import: "inherit" },
 *   revoke: [{ name: "net" }, { name: "env" }, { name: "import" }, { name: "read", path: "/srv/app" }],
 * };
 * ```
 */
export interface SpawnPermissions {
  /** Permissions given to the Web Worker when it is created. */
  permissions: TaskPermissions;
  /** What it revokes once the app module is imported. */
  revoke: Revocation[];
}

function covers(entry: string, path: string): boolean {
  return path === entry || path.startsWith(entry.endsWith(sep) ? entry : entry + sep);
}

/**
 * How a sandboxed Web Worker starts so that it can import the app module,
 * and what it revokes before running tasks.
 *
 * Importing the app module runs its top-level code (and that of the
 * packages it imports), which the worker's main thread has already run
 * with all of the process's permissions. So a kind the sandbox denies
 * entirely is inherited while loading and revoked afterwards. A kind the
 * sandbox lists stays that list; for `read` the module directories are
 * added while loading and revoked afterwards, unless the list covers them.
 * `import` too: a sandbox that does not grant it cannot import from a URL
 * once loaded (an `import()` of an address is a network request).
 *
 * @example
 * ```ts
 * import { spawnPermissions } from "@celeriac/celeriac/worker";
 * const s = spawnPermissions({ read: ["/srv/app/data"], net: ["api.example.com:443"] }, ["/srv/app"], "/srv");
 * s.permissions; // { read: ["/srv/app/data", "/srv/app"], write: "inherit", net: [...], ... }
 * s.revoke; // [{ name: "write" }, { name: "env" }, …, { name: "import" }, { name: "read", path: "/srv/app" }]
 * ```
 *
 * @param sandbox the sandbox's permissions
 * @param moduleDirs directories the app module and its imports are read from
 * @param cwd the directory relative paths are resolved against
 * @returns the permissions to spawn with and what to revoke after loading
 */
export function spawnPermissions(
  sandbox: TaskPermissions,
  moduleDirs: readonly string[],
  cwd: string,
): SpawnPermissions {
  if (sandbox === "inherit") return { permissions: "inherit", revoke: [] };
  const wanted = sandbox === "none" ? {} : normalizePermissions(sandbox) as Record<string, Value>;
  const p: Record<string, Value> = {};
  const revoke: Revocation[] = [];
  for (const kind of KINDS) {
    const v = wanted[kind];
    if (v === undefined || v === false) {
      p[kind] = "inherit";
      revoke.push({ name: kind });
    } else {
      p[kind] = v;
    }
  }
  const read = p.read;
  if (Array.isArray(read)) {
    const absolute = read.map((g) => resolve(cwd, g));
    const missing = moduleDirs.filter((d) => !absolute.some((g) => covers(g, d)));
    p.read = [...read, ...missing];
    for (const path of missing) revoke.push({ name: "read", path });
  }
  return { permissions: p as TaskPermissions, revoke };
}

/** The field of Deno's permission descriptor that names one item of each kind. */
const ITEM_FIELD = {
  read: "path",
  write: "path",
  net: "host",
  env: "variable",
  sys: "kind",
  run: "command",
  ffi: "path",
} as const;

function grantedToProcess(descriptor: Record<string, string>): boolean {
  try {
    return grantedNow(descriptor as unknown as Deno.PermissionDescriptor);
  } catch {
    return true; // a form Deno's query does not take (a wildcard host): Deno checks it at spawn
  }
}

/**
 * The first permission of a Web Worker's set that the process itself does
 * not hold, asked without a prompt: Deno would ask for it at a terminal when
 * the Web Worker starts (or refuse it elsewhere). `import` is left to Deno,
 * which allows some hosts without the flag.
 *
 * @example
 * ```ts
 * // deno run --allow-read=. …
 * ungrantedPermission({ read: ["/srv/data"] }); // 'read access to "/srv/data"'
 * ```
 *
 * @param p the permissions a Web Worker is to be started with
 * @returns what is missing (`read access to "/srv/data"`, `env access`), or null
 */
export function ungrantedPermission(p: TaskPermissions): string | null {
  if (typeof p !== "object") return null;
  const set = p as Record<string, Value>;
  for (const kind of KINDS) {
    if (kind === "import") continue;
    const v = set[kind];
    if (v === true && !grantedToProcess({ name: kind })) return `${kind} access`;
    if (!Array.isArray(v)) continue;
    for (const item of v) {
      if (!grantedToProcess({ name: kind, [ITEM_FIELD[kind]]: item })) {
        return `${kind} access to "${item}"`;
      }
    }
  }
  return null;
}

/**
 * Directories a Web Worker reads the app module from, when its sandbox
 * lists what it may read: the module's project
 * (the nearest directory above it holding `deno.json`, `deno.jsonc` or
 * `package.json`, else its own directory), and Celeriac's own sources when
 * they are local files. Remote modules (`jsr:`, `https:`) need none.
 *
 * @example
 * ```ts
 * import { moduleDirs } from "@celeriac/celeriac/worker";
 * moduleDirs("file:///srv/app/src/tasks.ts"); // ["/srv/app", ...] when /srv/app/deno.json exists
 * ```
 *
 * @param appModule URL of the app module
 * @returns absolute directories
 */
export function moduleDirs(appModule: string): string[] {
  const dirs: string[] = [];
  const own = new URL("../../", import.meta.url);
  if (own.protocol === "file:") dirs.push(resolve(own.pathname));
  const url = new URL(appModule);
  if (url.protocol === "file:") {
    const start = dirname(decodeURIComponent(url.pathname));
    dirs.push(projectRoot(start) ?? start);
  }
  return [...new Set(dirs)].filter((d, _, all) => !all.some((o) => o !== d && covers(o, d)));
}

function projectRoot(dir: string): string | null {
  for (let d = dir;; d = dirname(d)) {
    for (const f of ["deno.json", "deno.jsonc", "package.json"]) {
      try {
        Deno.statSync(`${d}${sep}${f}`);
        return d;
      } catch {
        // not here
      }
    }
    if (dirname(d) === d) return null;
  }
}
