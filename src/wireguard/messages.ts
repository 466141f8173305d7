/**
 * WireGuard message layouts (whitepaper §5.4). Every message starts with a type byte and three
 * reserved zero bytes; integers are little-endian. Parsing is strict: exact length for handshake
 * messages, nonzero reserved bytes rejected. Parsed fields are views into the datagram.
 */
import {
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  KEEPALIVE_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  RESPONSE_SIZE,
  TRANSPORT_HEADER_SIZE,
} from "./constants.ts";

/** Why a datagram was rejected before any cryptography. */
export type FormatError = "short" | "badType" | "badLength";

export interface Initiation {
  sender: number;
  ephemeral: Uint8Array; // 32
  encryptedStatic: Uint8Array; // 32 + 16
  encryptedTimestamp: Uint8Array; // 12 + 16
  mac1: Uint8Array; // 16
  mac2: Uint8Array; // 16
}

export interface Response {
  sender: number;
  receiver: number;
  ephemeral: Uint8Array; // 32
  encryptedNothing: Uint8Array; // 16
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface CookieReply {
  receiver: number;
  nonce: Uint8Array; // 24
  encryptedCookie: Uint8Array; // 16 + 16
}

/** Byte offsets of the MAC fields: MAC1 covers [0, mac1), MAC2 covers [0, mac2). */
export const INITIATION_MAC1 = 116;
export const INITIATION_MAC2 = 132;
export const RESPONSE_MAC1 = 60;
export const RESPONSE_MAC2 = 76;

export const TRANSPORT_RECEIVER = 4;
export const TRANSPORT_COUNTER = 8;

const readU32 = (b: Uint8Array, o: number): number =>
  (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

export { readU32 as readU32LE, writeU32 as writeU32LE };

/**
 * The message type (1..4) of a datagram after checking the header and the size for that type,
 * or the reason it is malformed.
 */
export function messageType(buf: Uint8Array): number | FormatError {
  if (buf.length < 4) return "short";
  if (buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) return "badType";
  const type = buf[0]!;
  switch (type) {
    case MESSAGE_INITIATION:
      return buf.length === INITIATION_SIZE ? type : "badLength";
    case MESSAGE_RESPONSE:
      return buf.length === RESPONSE_SIZE ? type : "badLength";
    case MESSAGE_COOKIE_REPLY:
      return buf.length === COOKIE_REPLY_SIZE ? type : "badLength";
    case MESSAGE_TRANSPORT:
      return buf.length >= KEEPALIVE_SIZE ? type : "short";
    default:
      return "badType";
  }
}

function checkType(buf: Uint8Array, type: number): FormatError | null {
  const t = messageType(buf);
  if (typeof t === "string") return t;
  return t === type ? null : "badType";
}

export function parseInitiation(buf: Uint8Array): Initiation | FormatError {
  const err = checkType(buf, MESSAGE_INITIATION);
  if (err) return err;
  return {
    sender: readU32(buf, 4),
    ephemeral: buf.subarray(8, 40),
    encryptedStatic: buf.subarray(40, 88),
    encryptedTimestamp: buf.subarray(88, 116),
    mac1: buf.subarray(116, 132),
    mac2: buf.subarray(132, 148),
  };
}

export function parseResponse(buf: Uint8Array): Response | FormatError {
  const err = checkType(buf, MESSAGE_RESPONSE);
  if (err) return err;
  return {
    sender: readU32(buf, 4),
    receiver: readU32(buf, 8),
    ephemeral: buf.subarray(12, 44),
    encryptedNothing: buf.subarray(44, 60),
    mac1: buf.subarray(60, 76),
    mac2: buf.subarray(76, 92),
  };
}

export function parseCookieReply(buf: Uint8Array): CookieReply | FormatError {
  const err = checkType(buf, MESSAGE_COOKIE_REPLY);
  if (err) return err;
  return { receiver: readU32(buf, 4), nonce: buf.subarray(8, 32), encryptedCookie: buf.subarray(32, 64) };
}

function put(out: Uint8Array, off: number, field: Uint8Array, size: number): void {
  if (field.length !== size) throw new RangeError(`field at ${off} must be ${size} bytes, got ${field.length}`);
  out.set(field, off);
}

export function serializeInitiation(m: Initiation): Uint8Array {
  const out = new Uint8Array(INITIATION_SIZE);
  out[0] = MESSAGE_INITIATION;
  writeU32(out, 4, m.sender);
  put(out, 8, m.ephemeral, 32);
  put(out, 40, m.encryptedStatic, 48);
  put(out, 88, m.encryptedTimestamp, 28);
  put(out, 116, m.mac1, 16);
  put(out, 132, m.mac2, 16);
  return out;
}

export function serializeResponse(m: Response): Uint8Array {
  const out = new Uint8Array(RESPONSE_SIZE);
  out[0] = MESSAGE_RESPONSE;
  writeU32(out, 4, m.sender);
  writeU32(out, 8, m.receiver);
  put(out, 12, m.ephemeral, 32);
  put(out, 44, m.encryptedNothing, 16);
  put(out, 60, m.mac1, 16);
  put(out, 76, m.mac2, 16);
  return out;
}

export function serializeCookieReply(m: CookieReply): Uint8Array {
  const out = new Uint8Array(COOKIE_REPLY_SIZE);
  out[0] = MESSAGE_COOKIE_REPLY;
  writeU32(out, 4, m.receiver);
  put(out, 8, m.nonce, 24);
  put(out, 32, m.encryptedCookie, 32);
  return out;
}

/** Write a transport header (type 4, receiver, 64-bit counter) at the start of `out`. */
export function writeTransportHeader(out: Uint8Array, receiver: number, counter: number): void {
  out[0] = MESSAGE_TRANSPORT;
  out[1] = 0;
  out[2] = 0;
  out[3] = 0;
  writeU32(out, TRANSPORT_RECEIVER, receiver);
  writeU32(out, TRANSPORT_COUNTER, counter % 4294967296);
  writeU32(out, TRANSPORT_COUNTER + 4, Math.floor(counter / 4294967296));
}

export const transportReceiver = (buf: Uint8Array): number => readU32(buf, TRANSPORT_RECEIVER);
/** The low and high 32-bit halves of the transport counter. */
export const transportCounterLow = (buf: Uint8Array): number => readU32(buf, TRANSPORT_COUNTER);
export const transportCounterHigh = (buf: Uint8Array): number => readU32(buf, TRANSPORT_COUNTER + 4);
export const transportContent = (buf: Uint8Array): Uint8Array => buf.subarray(TRANSPORT_HEADER_SIZE);
