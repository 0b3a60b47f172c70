/**
 * Images on disk. An image holds payload bytes and sequence numbers, enough to hijack the
 * connection, so it is written owner-only (0600) and never replaces another file silently.
 */
import { openSync, writeSync, closeSync, readFileSync, fchmodSync } from 'node:fs';
import { decodeImage, encodeImage, type SocketImage } from './image.js';

/** Writes an encoded image to a new file, mode 0600; refuses (EEXIST) to replace an existing one. */
export function writeImageFile(path: string, image: SocketImage): void {
  const bytes = encodeImage(image);
  // O_EXCL: refuse to follow or overwrite an existing file (someone else's symlink included).
  const fd = openSync(path, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600); // the umask may only remove bits, but be explicit
    writeSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
}

/** Reads and decodes an image file written by {@link writeImageFile}. */
export function readImageFile(path: string): SocketImage {
  return decodeImage(readFileSync(path));
}
