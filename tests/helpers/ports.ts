/**
 * Port blocks for private test servers, reserved across processes.
 *
 * Blocks are `base + 0..99` for bases 20000, 20100, ... 28900: below the
 * ephemeral ports (32768 up, the ones the kernel hands to outgoing
 * connections and port-0 listeners), so no other process takes a server's
 * port between the check and its bind. Redis Cluster's bus ports
 * (`port + 10000`, 30000-38909) are partly ephemeral: an outgoing connection
 * may take one after the check, the node then fails with `PortInUseError`
 * and `privateServers` starts the set again on another block. A block
 * is held by listening on its last port (`base + 99`, which no server of a
 * block uses): the kernel lets one socket bind it, so two test processes
 * can never hold the same block, and it is freed when its holder exits, so
 * a killed run leaves no stale reservation behind. The block's first ten
 * ports and their bus ports must also be free (a server left over from a
 * killed run may still hold them).
 */

/** The first block's base. */
const FIRST = 20_000;
/** Ports per block. */
const SIZE = 100;
/** Number of blocks. */
const BLOCKS = 90;
/** Ports of a block checked free (and their bus ports). */
const USED = 10;

/** A reserved block of ports; {@link PortBlock.release} frees it. */
export interface PortBlock extends Disposable {
  /** Its first port; servers use `base + 0..9`, cluster buses `base + 10000..10009`. */
  readonly base: number;
  /** Free the block (no-op when already freed). */
  release(): void;
}

/** No block could be reserved: every one is held or has ports in use. */
export class NoFreePortsError extends Error {
  override name = "NoFreePortsError";
  readonly code = "NO_FREE_PORTS";
  constructor() {
    super(
      `no free port block in ${FIRST}-${FIRST + BLOCKS * SIZE - 1}: every block is held by ` +
        "another test process or has a port in use (stop leftover redis-server processes)",
    );
  }
}

/**
 * The index (0-89) of the block starting at `base`, for resources that must
 * differ between blocks as the ports do (a test's subnet, say).
 *
 * @example
 * ```ts
 * const subnet = 10 + blockIndex(ports.base);
 * ```
 */
export function blockIndex(base: number): number {
  return (base - FIRST) / SIZE;
}

function bind(port: number): Deno.TcpListener | null {
  try {
    return Deno.listen({ hostname: "127.0.0.1", port });
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return null;
    throw err;
  }
}

function free(port: number): boolean {
  const l = bind(port);
  l?.close();
  return l !== null;
}

/**
 * Reserve a block of ports no other process holds, in random order of the
 * blocks; hold it until `release()` (or `using`) or until the process exits.
 *
 * @example
 * ```ts
 * using ports = reservePorts();
 * await startRedis(ports.base, dir);
 * ```
 */
export function reservePorts(): PortBlock {
  const order = Array.from({ length: BLOCKS }, (_, i) => FIRST + i * SIZE);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  for (const base of order) {
    const lock = bind(base + SIZE - 1);
    if (!lock) continue;
    if (
      !Array.from({ length: USED }, (_, i) => base + i).every((p) => free(p) && free(p + 10_000))
    ) {
      lock.close();
      continue;
    }
    let held = true;
    return {
      base,
      release() {
        if (!held) return;
        held = false;
        lock.close();
      },
      [Symbol.dispose]() {
        this.release();
      },
    };
  }
  throw new NoFreePortsError();
}
