/** Shared pieces of the chaos suite: worker processes, result checks, seeds. */

import type { Redis } from "ioredis";
import { Proc } from "../helpers/procs.ts";
import { report } from "../helpers/report.ts";

/** The chaos task app, as a module path for `--app`. */
export const CHAOS_APP = "tests/chaos/app.ts";

/** The seed of this run: CHAOS_SEED, else random. Printed so a failure can be replayed. */
export function chaosSeed(label: string): number {
  const given = Deno.env.get("CHAOS_SEED");
  const seed = given ? Number(given) : Math.floor(Math.random() * 2 ** 31);
  report(`${label}: seed ${seed} (replay with CHAOS_SEED=${seed})`);
  return seed;
}

/** Start a worker process on the chaos app (not waiting for it to be ready). */
export function startWorker(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Proc {
  return Proc.start(
    name,
    Deno.execPath(),
    ["run", "-A", "worker.ts", "--app", CHAOS_APP, "--without-remote-control", ...args],
    { env },
  );
}

/** Whether a process is still running. */
export async function alive(p: Proc): Promise<boolean> {
  const done = await Promise.race([
    p.child.status.then(() => true),
    new Promise<false>((r) => setTimeout(() => r(false), 10)),
  ]);
  return !done;
}

/** The states stored for these ids (`null` when none), read with MGET. */
export async function statesOf(
  redis: Redis,
  keyPrefix: string,
  ids: readonly string[],
): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const metas = await redis.mget(...chunk.map((id) => `${keyPrefix}celery-task-meta-${id}`));
    chunk.forEach((id, j) => {
      const m = metas[j];
      out.set(id, m === null ? null : (/"status": "([A-Z]+)"/.exec(m)?.[1] ?? "?"));
    });
  }
  return out;
}

/** Wait until `done()` is true, polling; throws with `what` after `ms`. */
export async function waitUntil(
  what: string,
  done: () => Promise<boolean>,
  ms: number,
  context?: () => string,
) {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) {
      const more = context ? `\n${context()}` : "";
      throw new Error(`timed out after ${ms} ms waiting until ${what}${more}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Ids whose state is not terminal. */
export function notDone(states: Map<string, string | null>): string[] {
  return [...states].filter(([, s]) => s !== "SUCCESS" && s !== "FAILURE" && s !== "REVOKED")
    .map(([id]) => id);
}

/** The states of these ids through the app's result backend (any transport). */
export async function statesVia(
  backend: { get(id: string): Promise<{ status: string } | null> },
  ids: readonly string[],
): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (let i = 0; i < ids.length; i += 200) {
    const chunk = ids.slice(i, i + 200);
    const metas = await Promise.all(chunk.map((id) => backend.get(id)));
    chunk.forEach((id, j) => out.set(id, metas[j]?.status ?? null));
  }
  return out;
}
