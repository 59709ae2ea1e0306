/** A KV broker in a temporary directory, for CLI tests that run `worker.ts` against it. */

import { Celery } from "../../mod.ts";

/**
 * Run `fn` with the URL of a KV broker in a new temporary directory and an
 * app on it (no result backend); the app is closed and the directory removed
 * after.
 *
 * @param prefix the temporary directory's name prefix
 */
export async function withKvBroker(
  prefix: string,
  fn: (url: string, app: Celery) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  const url = `kv://${dir}/broker.sqlite`;
  const app = new Celery({ broker: url, backend: null });
  try {
    await fn(url, app);
  } finally {
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
}
