/**
 * Waits until `ok()` holds, asking every `everyMs`; throws `timed out waiting
 * for <what>` after `ms`.
 *
 * @example
 * ```ts
 * await until("two tasks done", () => worker.stats.succeeded >= 2);
 * ```
 */
export async function until(
  what: string,
  ok: () => boolean | Promise<boolean>,
  ms = 30_000,
  everyMs = 50,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Whether `path` exists (a marker file a task writes, say).
 *
 * @example
 * ```ts
 * await until("the task started", () => exists(`${dir}/started`));
 * ```
 */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
