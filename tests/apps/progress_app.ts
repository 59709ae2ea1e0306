/** Tasks that report custom states, for the progress tests. */

import { Celery } from "../../mod.ts";

export const app = new Celery();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reports PROGRESS {done, total} after each of `n` steps, then returns `n`. */
export const steps = app.task(
  "p.steps",
  { bind: true },
  async (ctx, n: number, pauseMs: number) => {
    for (let i = 1; i <= n; i++) {
      await sleep(pauseMs);
      await ctx.updateState({ state: "PROGRESS", meta: { done: i, total: n } });
    }
    await sleep(pauseMs);
    return n;
  },
);

/** Tries a state update that must be refused, and returns the error's name and message. */
export const refused = app.task("p.refused", { bind: true }, async (ctx, kind: string) => {
  try {
    if (kind === "ready") await ctx.updateState({ state: "SUCCESS", meta: 1 });
    else await ctx.updateState({ state: "PROGRESS", meta: { f: () => 1 } });
    return "stored";
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
});
