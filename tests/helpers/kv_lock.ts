/**
 * Holding a KV file's SQLite write lock from another process (a python3
 * sqlite3 connection in `BEGIN EXCLUSIVE`): Deno KV's commits on that file
 * wait, without an error, until the lock is let go.
 */

const HOLD = `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
sys.stdout.write("locked\\n")
sys.stdout.flush()
time.sleep(float(sys.argv[2]))
c.execute("ROLLBACK")
`;

/** A python3 process that holds a file's write lock. */
export interface HeldLock {
  /** Resolves once the process has ended (the lock is free). */
  status: Promise<Deno.CommandStatus>;
  /** Let the lock go at once (the process is killed) and wait for it to end. */
  release(): Promise<void>;
}

/**
 * Take the write lock of the KV file at `path` (made by a first open) in a
 * python3 process that lets it go after `seconds` or when released;
 * resolves once the lock is held.
 *
 * @example
 * ```ts ignore
 * const lock = await holdWriteLock(`${dir}/q.sqlite`, 60);
 * await lock.release();
 * ```
 */
export async function holdWriteLock(path: string, seconds: number): Promise<HeldLock> {
  const holder = new Deno.Command("python3", {
    args: ["-c", HOLD, path, String(seconds)],
    stdout: "piped",
  }).spawn();
  // Read to the end, never cancelled: with PYTHONUNBUFFERED=1 a print() is two
  // writes, and a pipe closed after the first killed python3 (BrokenPipeError)
  // and with it the lock, so the test saw a free file (seen once in CI).
  const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let said = "";
  while (!said.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    said += value;
  }
  (async () => {
    while (!(await reader.read()).done);
  })();
  const release = async () => {
    try {
      holder.kill("SIGKILL");
    } catch {
      // it ended already
    }
    await holder.status;
  };
  if (!said.includes("locked")) {
    await release();
    throw new Error(`python3 did not take the write lock of ${path}: ${said}`);
  }
  return { status: holder.status, release };
}
