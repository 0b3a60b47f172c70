/**
 * Frozen source sockets this process still holds, by 4-tuple. A checkpointed socket stays open
 * in repair mode (behind its drop filter) until it is released, so a late segment from the
 * peer never meets a closed port and draws an RST.
 */
import type net from 'node:net';
import type { RepairWindow } from './native-types.js';
import type { Endpoint } from './image.js';

export interface SourceHold {
  socket: net.Socket;
  fd: number;
  /** The window before the freeze closed it (null: kernel without TCP_REPAIR_WINDOW). */
  window: RepairWindow | null;
  reuseAddress: boolean;
  filtered: boolean;
}

const holds = new Map<string, SourceHold>();

export function tupleKey(local: Endpoint, peer: Endpoint): string {
  return `${local.address}|${local.port}|${peer.address}|${peer.port}`;
}

export function addHold(key: string, hold: SourceHold): void {
  holds.set(key, hold);
}

export function takeHold(key: string): SourceHold | undefined {
  const hold = holds.get(key);
  holds.delete(key);
  return hold;
}

export function hasHold(key: string): boolean {
  return holds.has(key);
}

/** Whether this process holds any frozen socket (restores elsewhere need no key then). */
export function holdsAny(): boolean {
  return holds.size > 0;
}

/** How many frozen sockets this process holds (for tests and leak checks). */
export function heldCount(): number {
  return holds.size;
}
