/** Line-at-a-time reading of a child's stdout or our stdin. */
import type { Readable } from 'node:stream';

export class LineReader {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiter: ((line: string | null) => void) | null = null;
  private ended = false;

  constructor(stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.buffered += chunk;
      let newline: number;
      while ((newline = this.buffered.indexOf('\n')) >= 0) {
        this.push(this.buffered.slice(0, newline));
        this.buffered = this.buffered.slice(newline + 1);
      }
    });
    stream.on('end', () => {
      this.ended = true;
      this.waiter?.(null);
      this.waiter = null;
    });
  }

  /** The next line, or null at end of stream. */
  next(): Promise<string | null> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  private push(line: string): void {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      waiter(line);
    } else this.lines.push(line);
  }
}
