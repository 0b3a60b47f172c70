/**
 * Sockets a receiver readies for a session before the source freezes anything (protocol step 0):
 * socket(), the freeze filter and IP_TRANSPARENT need no image, so doing them while the
 * connections still run here takes their cost out of the freeze. One per announced connection,
 * per family; a restore that finds none left makes its own socket as usual.
 */
import type { Family } from '../native-types.js';
import { discardPrepared, prepareFrozenSocket, type PreparedSocket } from '../restore.js';

export class SpareSockets {
  private readonly spares: Record<Family, PreparedSocket[]> = { 4: [], 6: [] };

  /**
   * Readies up to `ipv4` + `ipv6` sockets. Stops at the first refusal (EMFILE, a kernel without
   * the freeze filter...): fewer spares only means those restores create their own socket, and
   * then fail or not exactly as they would have. Returns how many were readied.
   */
  prepare(counts: Record<Family, number>, options: { transparent: boolean }): number {
    for (const family of [4, 6] as const) {
      try {
        for (let i = 0; i < counts[family]; i++) this.spares[family].push(prepareFrozenSocket(family, options));
      } catch {
        // see above: the restore of that connection will say what is wrong, if anything
      }
    }
    return this.spares[4].length + this.spares[6].length;
  }

  /** A readied socket of the family, or undefined when none is left. */
  take(family: Family): PreparedSocket | undefined {
    return this.spares[family].pop();
  }

  /** Closes the unused ones (never connected: nothing is sent). */
  closeAll(): void {
    for (const family of [4, 6] as const) {
      for (const spare of this.spares[family]) discardPrepared(spare);
      this.spares[family] = [];
    }
  }
}
