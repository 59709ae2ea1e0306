/**
 * What the command line says when `--app` names a module it cannot use.
 *
 * @module
 */

import { UsageError } from "./exit_codes.ts";

/** Celeriac's own source directory: a stack frame in it is not a place in the user's app. */
const OWN_SOURCE = new URL("../", import.meta.url).href;

/**
 * The first stack frame of `err` outside Celeriac's own source that the
 * message does not show already: where the app module threw.
 */
function placeInApp(err: Error): string | undefined {
  const frames = (err.stack ?? "").split("\n").map((l) => l.trim())
    .filter((l) => /^at .*(file|https?):\/\//.test(l));
  const at = frames.find((l) => !l.includes(OWN_SOURCE));
  return at && !err.message.includes(at) ? at : undefined;
}

/**
 * The module file a Celery-style `--app` value meant, if there is one: a
 * dotted module name (`examples.tasks`, as `celery -A` takes) or a path
 * without its extension (`examples/tasks`), as `./examples/tasks.ts`; with
 * Celery's `module:attribute` (`examples.tasks:app`), as `./examples/tasks.ts:app`.
 */
function modulePathMeant(spec: string): string | undefined {
  const celery = /^([A-Za-z_][\w.]*):([A-Za-z_$][\w$]*)$/.exec(spec);
  if (celery) {
    const path = modulePathMeant(celery[1]);
    return path && `${path}:${celery[2]}`;
  }
  if (/\.[cm]?[jt]sx?$/.test(spec) || /^[a-z][a-z0-9+.-]*:/i.test(spec)) return undefined;
  const stem = spec.replace(/^\.\//, "");
  const dotted = /^[A-Za-z_][\w.]*$/.test(stem) ? [`./${stem.replaceAll(".", "/")}.ts`] : [];
  for (const path of new Set([...dotted, `./${stem}.ts`])) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not there (or not readable): not what was meant
    }
  }
  return undefined;
}

/**
 * An `--app` module that could not be used, said so with the flag's value:
 * one with no app (a program, such as a demo, runs with deno run), a path
 * with no module (and the file a Celery-style module name meant), a module
 * with a syntax error (Deno's parser's message and place, once), a module
 * that threw while imported (where it threw: the worker prints only the
 * message).
 *
 * @example
 * ```ts ignore
 * await loadApp(url).catch((err) => appModuleExpected(err, "./tasks.ts", url));
 * ```
 *
 * @param err what importing the module threw
 * @param spec the `--app` value as given
 * @param url the module's URL
 * @returns never: it throws
 * @throws {UsageError} always (as Celery's `-A` that cannot load its app, a usage error): a
 *   module that exports no app, no module at the path, one that failed to import
 */
export function appModuleExpected(err: Error, spec: string, url: string): never {
  if (err instanceof TypeError && /must export its app/.test(err.message)) {
    throw new UsageError(
      `${err.message}. --app names the module that defines your app and its tasks ` +
        "(as ./tasks.ts does), not a program that uses them: run that with deno run",
    );
  }
  if (/has no Celery app exported as/.test(err.message)) {
    throw new UsageError(err.message, { cause: err });
  }
  const code = (err as Error & { code?: string }).code;
  if (code === "ERR_MODULE_NOT_FOUND" && err.message.includes(`"${url}"`)) {
    const meant = modulePathMeant(spec);
    throw new UsageError(
      `--app ${spec}: no module at ${url} (a relative path starts from the current directory, ${Deno.cwd()})` +
        (meant
          ? ` (did you mean --app ${meant}? --app takes a file path or URL, not a Python module name)`
          : ""),
      { cause: err },
    );
  }
  // Deno reports a module it cannot parse as a TypeError whose message is
  // "SyntaxError: <what>", the offending line and its place.
  const syntax = /^SyntaxError: ([^]*)$/.exec(err.message);
  if (syntax) {
    throw new UsageError(`--app ${spec}: syntax error: ${syntax[1]}`, {
      cause: err,
    });
  }
  const at = placeInApp(err);
  throw new UsageError(
    `--app ${spec}: importing the app module failed: ${err.name}: ${err.message}${
      at ? ` (${at})` : ""
    }`,
    { cause: err },
  );
}
