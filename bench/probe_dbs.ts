/**
 * The Redis databases of the bench's probes (`profile.ts`, `cpu_probe.ts`,
 * `memory_map.ts`): db 12 is the broker and db 13 the results, both
 * `FLUSHDB`'d when opened, and the bench's app configured for them.
 *
 * @module
 */

import { Redis } from "ioredis";
import { app } from "./tasks.ts";

/**
 * A probe's broker and result databases, open.
 *
 * @example
 * ```ts ignore
 * const { broker, results }: ProbeDbs = await openProbeDbs("redis://127.0.0.1:6379");
 * ```
 */
export interface ProbeDbs {
  /** URL of the broker's database (12). */
  brokerUrl: string;
  /** URL of the results' database (13). */
  backendUrl: string;
  /** A client of the broker's database. */
  broker: Redis;
  /** A client of the results' database. */
  results: Redis;
  /** Empty both databases again, disconnect both clients and close the bench's app. */
  close(): Promise<void>;
}

/**
 * Open db 12 (broker) and db 13 (results) of `server`, empty both, and
 * point the bench's app at them.
 *
 * @example
 * ```ts ignore
 * const dbs = await openProbeDbs("redis://127.0.0.1:6379");
 * await dbs.close();
 * ```
 *
 * @param server the Redis server's URL (its database part is replaced)
 * @returns the URLs, a client of each database, and their teardown
 */
export async function openProbeDbs(server: string): Promise<ProbeDbs> {
  const db = (n: number) => {
    const url = new URL(server);
    url.pathname = `/${n}`;
    return url.href;
  };
  const brokerUrl = db(12);
  const backendUrl = db(13);
  const broker = new Redis(brokerUrl);
  const results = new Redis(backendUrl);
  await Promise.all([broker.flushdb(), results.flushdb()]);
  app.configure({ broker: brokerUrl, backend: backendUrl });
  const close = async () => {
    await Promise.allSettled([broker.flushdb(), results.flushdb()]);
    broker.disconnect();
    results.disconnect();
    await app.close();
  };
  return { brokerUrl, backendUrl, broker, results, close };
}
