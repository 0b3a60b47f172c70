/** The authenticated control channel that carries socket images from one host to another. */
export { connectControl, listenControl, DEFAULT_IDENTITY, MIN_KEY_BYTES } from './tls-psk.js';
export type { ControlServer, PskOptions } from './tls-psk.js';
export { MessageChannel, ChannelError } from './channel.js';
export type { ChannelErrorCode, ChannelOptions } from './channel.js';
export { decodeMessage, encodeMessage, jsonMeta, parseJsonMeta, MESSAGE_TYPES, PROTOCOL_VERSION } from './messages.js';
export type { ImageSelection, Message, MessageOf, MessageType } from './messages.js';
export { encodeFrame, frameHeader, FrameDecoder, FrameError, DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_SIZE } from './frames.js';
export type { Frame, FrameErrorCode } from './frames.js';
