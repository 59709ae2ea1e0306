/**
 * Waiting, before a KV file is opened, for the SQLite write lock another
 * process holds. Deno KV's reads and commits wait without end (and without
 * an error) while the lock is held, so a worker that opened such a file
 * would hang in its first read; probing first says what it waits for and
 * lets a stop signal end the wait.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { DatabaseSync } from "node:sqlite";
import { sleep } from "./sleep.ts";

const log = getLogger(["celeriac", "broker", "kv"]);

/** How long one probe lets SQLite wait for the lock. */
const PROBE_BUSY_MS = 50;

/**
 * Options of {@link waitForKvWriteLock}.
 *
 * @example
 * ```ts
 * const options: KvLockWaitOptions = { retryMs: 250 };
 * ```
 */
export interface KvLockWaitOptions {
  /** Ends the wait: it rejects with the signal's reason; default none. */
  signal?: AbortSignal;
  /** Pause between two probes while the lock is held, in ms; default 500. */
  retryMs?: number;
  /**
   * Asked right before each probe: `true` ends the wait without probing, e.g.
   * once this process opened the file meanwhile (closing the probe's handle
   * would drop the POSIX locks this process holds on it); default never.
   */
  skip?: () => boolean;
}

/**
 * Whether another process holds the write lock of an existing SQLite file:
 * `BEGIN IMMEDIATE` (then `ROLLBACK`) with a short busy timeout.
 *
 * @param path the file
 * @returns the SQLite message when the lock is held, `null` when it is free
 */
function probeWriteLock(path: string): string | null {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { timeout: PROBE_BUSY_MS });
  } catch {
    return null; // Not openable here: Deno.openKv says why.
  }
  try {
    db.exec("BEGIN IMMEDIATE");
    db.exec("ROLLBACK");
    return null;
  } catch (err) {
    const message = String((err as Error)?.message);
    return /locked|busy/i.test(message) ? message : null;
  } finally {
    db.close();
  }
}

/**
 * Wait until no other process holds the write lock of an existing KV file,
 * logging a warning while it does. A missing file (or `:memory:`) is not
 * waited for.
 *
 * @example
 * ```ts
 * import { waitForKvWriteLock } from "./kv_lock_wait.ts";
 * await waitForKvWriteLock("/tmp/no-such-celeriac.sqlite");
 * ```
 *
 * @param path the file's path
 * @param options signal and pause between probes
 * @returns when the lock is free
 * @throws the signal's reason when it aborts first
 */
export async function waitForKvWriteLock(
  path: string,
  options: KvLockWaitOptions = {},
): Promise<void> {
  const { signal, retryMs = 500, skip = () => false } = options;
  if (!(await Deno.stat(path).catch(() => null))?.isFile) return;
  let warned = false;
  for (;;) {
    signal?.throwIfAborted();
    if (skip()) return;
    const held = probeWriteLock(path);
    if (held === null) {
      if (warned) log.info("The write lock of {path} is free again: opening it", { path });
      return;
    }
    if (!warned) {
      log.warn(
        "Another process holds the write lock of {path} ({reason}): waiting until it lets go. " +
          "End that process's transaction (a sqlite3 shell in BEGIN, a process stopped with " +
          "Ctrl-Z or SIGSTOP), or use another kv:// file",
        { path, reason: held },
      );
      warned = true;
    }
    await sleep(retryMs, signal);
  }
}
