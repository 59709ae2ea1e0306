/**
 * Which thread is a Web Worker's own, told by the Web Worker itself. The
 * threads pool notes the threads new across each `new Worker()`
 * (`ThreadWatch.spawn`) and later takes the one named `worker-N` among
 * them; another Web Worker started in the same process meanwhile (by task
 * code, or, in `deno test --parallel`, by another test module: they share
 * the process) is named so too, and the pool could not tell them apart, so
 * a thread leaked by a terminate went unseen. The Web Worker reads its own
 * thread id from `/proc/thread-self` as it starts and says it in its
 * `ready`; when it cannot (off Linux, or a sandbox without read access to
 * it), the name is all there is.
 *
 * @module
 */

import type { ThreadRef } from "./thread_leaks.ts";

const THREAD_SELF = "/proc/thread-self";

/**
 * In a Web Worker (or any thread): the id of the thread running this, or
 * undefined when `/proc/thread-self` cannot be read without asking (off
 * Linux, read access not granted).
 *
 * @example
 * ```ts
 * import { ownThreadId } from "./thread_self.ts";
 * ownThreadId(); // 4242 on Linux with read access, else undefined
 * ```
 *
 * @returns the thread id, as `/proc/<pid>/task/<tid>` names it
 */
export function ownThreadId(): number | undefined {
  try {
    if (Deno.permissions.querySync({ name: "read", path: THREAD_SELF }).state !== "granted") {
      return undefined;
    }
    // "<pid>/task/<tid>"
    const tid = Number(Deno.readLinkSync(THREAD_SELF).split("/").pop());
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The threads that started with a Web Worker, narrowed to the one it said
 * is its own ({@link ownThreadId}); unchanged when it said none, or one not
 * among them.
 *
 * @example
 * ```ts
 * import { ownThread } from "./thread_self.ts";
 * ownThread([{ tid: 41, start: "9" }, { tid: 42, start: "9" }], 42); // [{ tid: 42, start: "9" }]
 * ```
 *
 * @param threads the threads new across its `new Worker()` (`ThreadWatch.spawn`), or null
 * @param tid the id it said is its own
 * @returns its thread alone when found, else `threads`
 */
export function ownThread(
  threads: ThreadRef[] | null,
  tid: number | undefined,
): ThreadRef[] | null {
  const own = threads?.filter((t) => t.tid === tid);
  return own?.length === 1 ? own : threads;
}
