/**
 * Typed messages over any byte stream (in practice the TLS-PSK socket of tls-psk.ts). Every wait
 * is bounded: a peer that dies, stalls or sends garbage turns into a ChannelError, never a hang.
 */
import type { Duplex } from 'node:stream';
import { DEFAULT_MAX_FRAME_SIZE, FrameDecoder, FrameError, frameHeader } from './frames.js';
import { decodeMessage, encodeMessage, type Message, type MessageOf, type MessageType } from './messages.js';

export type ChannelErrorCode = 'ERR_CHANNEL_CLOSED' | 'ERR_CHANNEL_TIMEOUT' | 'ERR_CHANNEL_UNEXPECTED' | 'ERR_CHANNEL_SOCKET';

export class ChannelError extends Error {
  readonly code: ChannelErrorCode;
  constructor(code: ChannelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChannelError';
    this.code = code;
  }
}

export interface ChannelOptions {
  maxFrameSize?: number;
  /** Default bound for receive(); default 10 s. */
  receiveTimeoutMs?: number;
}

type Waiter = { resolve: (message: Message) => void; reject: (error: Error) => void; timer: NodeJS.Timeout };

export class MessageChannel {
  private readonly socket: Duplex;
  private readonly decoder: FrameDecoder;
  private readonly maxFrameSize: number;
  private readonly receiveTimeoutMs: number;
  private readonly inbox: Message[] = [];
  private readonly waiters: Waiter[] = [];
  private failure: Error | null = null;

  constructor(socket: Duplex, options: ChannelOptions = {}) {
    this.socket = socket;
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.decoder = new FrameDecoder(this.maxFrameSize);
    this.receiveTimeoutMs = options.receiveTimeoutMs ?? 10_000;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (error) => this.fail(new ChannelError('ERR_CHANNEL_SOCKET', `control connection failed: ${error.message}`, { cause: error })));
    socket.on('close', () => this.fail(new ChannelError('ERR_CHANNEL_CLOSED', 'control connection closed')));
  }

  /** Sends one message; resolves once it is handed to the kernel (back-pressure respected). */
  async send(message: Message): Promise<void> {
    if (this.failure) throw this.failure;
    const { type, parts } = encodeMessage(message);
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    const header = frameHeader(type, length, this.maxFrameSize);
    const chunks = [header, ...parts.filter((part) => part.length > 0)];
    await new Promise<void>((resolve, reject) => {
      chunks.forEach((chunk, i) => {
        const last = i === chunks.length - 1;
        this.socket.write(chunk, last ? (error?: Error | null) => (error ? reject(error) : resolve()) : undefined);
      });
    });
  }

  /** The next message, or a ChannelError after `timeoutMs` or when the connection fails. */
  receive(timeoutMs = this.receiveTimeoutMs): Promise<Message> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          // A stalled peer leaves the conversation in an unknown state: the channel is done.
          this.fail(new ChannelError('ERR_CHANNEL_TIMEOUT', `no message from the peer within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** receive(), insisting on one message type (a protocol step). */
  async expect<T extends MessageType>(type: T, timeoutMs?: number): Promise<MessageOf<T>> {
    const message = await this.receive(timeoutMs);
    if (message.type !== type) {
      const error = new ChannelError('ERR_CHANNEL_UNEXPECTED', `expected a ${type} message, got ${message.type}`);
      this.fail(error);
      throw error;
    }
    return message as MessageOf<T>;
  }

  /** Ends our side cleanly (FIN after the queued frames) and waits, bounded, for the socket to close. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.failure) return;
    try {
      for (const frame of this.decoder.push(chunk)) this.deliver(decodeMessage(frame));
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private onEnd(): void {
    try {
      this.decoder.end();
      this.fail(new ChannelError('ERR_CHANNEL_CLOSED', 'peer closed the control connection'));
    } catch (error) {
      this.fail(error as FrameError);
    }
  }

  private deliver(message: Message): void {
    const waiter = this.waiters.shift();
    if (!waiter) {
      this.inbox.push(message);
      return;
    }
    clearTimeout(waiter.timer);
    waiter.resolve(message);
  }

  /** The first failure wins and is what every later call reports; the socket is torn down. */
  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    if (!this.socket.destroyed) this.socket.destroy();
  }
}
