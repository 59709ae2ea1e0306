/**
 * Load the user's app module and find its {@link Celery} app.
 *
 * @module
 */

import { Celery } from "../client/app.ts";

/**
 * Split an `--app` value into a module path and an optional export name:
 * `./tasks.ts` or `./tasks.ts:myApp`.
 *
 * @example
 * ```ts
 * import { parseAppSpec } from "@celeriac/celeriac/worker";
 * parseAppSpec("./tasks.ts:myApp"); // { module: "./tasks.ts", exportName: "myApp" }
 * ```
 *
 * @param spec the `--app` value
 * @returns module and export name
 */
export function parseAppSpec(spec: string): { module: string; exportName?: string } {
  const m = /^(.*\.[cm]?[jt]sx?):([A-Za-z_$][\w$]*)$/.exec(spec);
  return m ? { module: m[1], exportName: m[2] } : { module: spec };
}

/**
 * Resolve a module path against the current directory into a URL. A URL is
 * one with `//` after its scheme (`file:///…`, `https://…`) or of a scheme
 * Deno imports without it (`jsr:`, `npm:`, `node:`, `data:`, `file:`);
 * anything else is a path, Celery's `examples.tasks:app` included (its
 * "scheme" `examples.tasks:` was kept as the URL, in no directory).
 *
 * @example
 * ```ts
 * import { moduleUrl } from "@celeriac/celeriac/worker";
 * moduleUrl("./examples/tasks.ts", Deno.cwd()); // "file:///…/examples/tasks.ts"
 * moduleUrl("jsr:@me/jobs/tasks.ts", Deno.cwd()); // "jsr:@me/jobs/tasks.ts"
 * moduleUrl("examples.tasks:app", "/srv"); // "file:///srv/examples.tasks:app"
 * ```
 *
 * @param module a path or URL
 * @param cwd the directory relative paths start from
 * @returns an absolute URL
 */
export function moduleUrl(module: string, cwd: string): string {
  if (/^([a-z][a-z0-9+.-]*:\/\/|(jsr|npm|node|data|file):)/i.test(module)) return module;
  const base = new URL(`file://${cwd.endsWith("/") ? cwd : cwd + "/"}`);
  // "./" first: URL() would read `examples.tasks:app` as a URL of scheme "examples.tasks" too.
  return new URL(/^[./]/.test(module) ? module : `./${module}`, base).href;
}

/**
 * Import an app module and return its app: the named export, else `app`,
 * else `default`, else the only exported app.
 *
 * @example
 * ```ts
 * import { loadApp } from "@celeriac/celeriac/worker";
 * const app = await loadApp("file:///srv/tasks.ts");
 * ```
 *
 * @param url module URL
 * @param exportName the export holding the app
 * @returns the app
 * @throws {TypeError} when the module exports no app
 */
export async function loadApp(url: string, exportName?: string): Promise<Celery> {
  const mod = await import(url) as Record<string, unknown>;
  const holders = Object.keys(mod).filter((name) => Celery.isApp(mod[name]));
  if (exportName) {
    const named = mod[exportName];
    if (Celery.isApp(named)) return named;
    throw new TypeError(
      `${url} has no Celery app exported as "${exportName}"${appsExported(holders, exportName)}`,
    );
  }
  for (const name of ["app", "default"]) {
    if (Celery.isApp(mod[name])) return mod[name] as Celery;
  }
  if (holders.length === 1) return mod[holders[0]] as Celery;
  throw new TypeError(
    `${url} must export its app: \`export const app = new Celery(...)\`` +
      (holders.length > 1
        ? ` (it exports ${holders.length}, as ${holders.join(", ")}; pick one with ` +
          `--app ${url}:${holders[0]})`
        : ""),
  );
}

/** What a module exports an app as, for `--app module:name` naming no app. */
function appsExported(holders: string[], exportName: string): string {
  if (holders.length === 0) {
    return `, nor under any other name: \`export const ${exportName} = new Celery(...)\``;
  }
  const found = holders.length === 1
    ? `one as ${holders[0]}`
    : `${holders.length}, as ${holders.join(", ")}`;
  // Without a name, --app takes `app`, else `default`, else the only app.
  const unnamed = holders.length === 1 || holders.includes("app") || holders.includes("default");
  return `: it exports ${found}. Name ${holders.length === 1 ? "it" : "one"} after the ":" ` +
    `(:${holders[0]})${unnamed ? ` or leave ":${exportName}" out` : ""}`;
}
