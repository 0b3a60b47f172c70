/** Messages of the two-phase migration, shared by both ends. */
export const PROTOCOL_VERSION = 1;

export interface Hello {
  version: number;
  count: number;
}
export interface Restored {
  id: number;
  restoreMs: number;
}
export interface Failed {
  id: number;
  code: string;
  reason: string;
}
export interface IdList {
  ids: number[];
}
export interface Activated {
  ids: number[];
  activateMs: number;
}
