/**
 * WireGuard protocol constants (wireguard-go device/constants.go, the whitepaper §6).
 * Times are in milliseconds because every timer goes through the injected Clock.
 */

export const REKEY_AFTER_MESSAGES = 2 ** 60;
/**
 * The send counter that triggers a rekey here. REKEY_AFTER_MESSAGES (2^60) lies beyond the
 * exact range of JS numbers, so rekey at 2^52, well before REJECT_COUNTER_LIMIT; both are
 * unreachable in practice (2^52 packets ≈ 140 years at 1M packets/s).
 */
export const REKEY_SEND_COUNTER = 2 ** 52;
/** 2^64 − 2^13 − 1: not representable as a JS number; see REJECT_COUNTER_LIMIT. */
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
/**
 * Counters are kept as JS numbers. 2^53 messages take centuries at line rate, so treating
 * counters at or above 2^53 as "too large" is indistinguishable from REJECT_AFTER_MESSAGES
 * for any honest peer, and keeps the hot path free of BigInt.
 */
export const REJECT_COUNTER_LIMIT = Number.MAX_SAFE_INTEGER; // 2^53 − 1

export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
/** Jitter added to REKEY_TIMEOUT-based timers: 0..333 ms. */
export const REKEY_TIMEOUT_JITTER_MAX = 334;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
/** wireguard-go: at most one initiation consumed per peer every 20 ms (50/s). */
export const HANDSHAKE_INITIATION_RATE = 1000 / 50;
/** Retransmissions before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT. */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;
/** The initiator renews on receive once its key is this old (165 s). */
export const REKEY_ON_RECEIVE_AGE = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

export const INITIATION_SIZE = 148;
export const RESPONSE_SIZE = 92;
export const COOKIE_REPLY_SIZE = 64;
export const TRANSPORT_HEADER_SIZE = 16;
export const TAG_SIZE = 16;
export const KEEPALIVE_SIZE = TRANSPORT_HEADER_SIZE + TAG_SIZE;
/** Transport plaintext is zero-padded to a multiple of this. */
export const PADDING_MULTIPLE = 16;
