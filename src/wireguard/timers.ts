/**
 * The per-peer timer state machine of wireguard-go (device/timers.go), on the injected Clock.
 * The tunnel reports events (packet sent/received, handshake initiated/complete, session
 * derived); the timers call back for keepalives, (re)initiations and key erasure.
 */
import type { Clock, Timer } from "../util/clock.ts";
import type { Random } from "../util/random.ts";
import {
  KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_TIME,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
} from "./constants.ts";

export interface TimerActions {
  /** Send an empty transport packet (or start a handshake if there is no session). */
  sendKeepalive(): void;
  /** Send a handshake initiation; `isRetry` keeps the attempt counter. */
  sendHandshakeInitiation(isRetry: boolean): void;
  /** REKEY_ATTEMPT_TIME ran out: drop the packets waiting for a session. */
  handshakeGaveUp(): void;
  /** 3 × REJECT_AFTER_TIME without a new session: erase every key. */
  zeroKeyMaterial(): void;
  /** Debug log line. */
  log(message: string): void;
}

export class PeerTimers {
  handshakeAttempts = 0;
  /** Set once a last-minute renewal on receive was sent, until the next handshake completes. */
  sentLastMinuteHandshake = false;
  /** Clock time of the last completed handshake, or -1. */
  lastHandshakeAt = -1;
  private keepaliveNeeded = false;
  private readonly retransmitHandshake: Timer;
  private readonly sendKeepalive: Timer;
  private readonly newHandshake: Timer;
  private readonly zeroKeyMaterial: Timer;
  private readonly persistentKeepalive: Timer;
  /** Persistent keepalive interval in ms; 0 disables it. */
  persistentKeepaliveMs: number;

  constructor(
    clock: Clock,
    private readonly random: Random,
    private readonly actions: TimerActions,
    /** Persistent keepalive interval in ms; 0 disables it. */
    persistentKeepaliveMs: number,
  ) {
    this.retransmitHandshake = clock.timer(() => this.onRetransmitHandshake());
    this.sendKeepalive = clock.timer(() => this.onSendKeepalive());
    this.newHandshake = clock.timer(() => this.onNewHandshake());
    this.zeroKeyMaterial = clock.timer(() => this.actions.zeroKeyMaterial());
    this.persistentKeepalive = clock.timer(() => this.onPersistentKeepalive());
    this.persistentKeepaliveMs = persistentKeepaliveMs;
  }

  private jitter(): number {
    return this.random.u32() % REKEY_TIMEOUT_JITTER_MAX;
  }

  private onRetransmitHandshake(): void {
    if (this.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
      this.actions.log(`Handshake did not complete after ${this.handshakeAttempts + 2} attempts, giving up`);
      this.actions.handshakeGaveUp();
      if (this.zeroKeyMaterial.deadline < 0) this.zeroKeyMaterial.set(REJECT_AFTER_TIME * 3);
      return;
    }
    this.handshakeAttempts++;
    this.actions.log(
      `Handshake did not complete after ${REKEY_TIMEOUT / 1000} seconds, retrying (try ${this.handshakeAttempts + 1})`,
    );
    this.actions.sendHandshakeInitiation(true);
  }

  private onSendKeepalive(): void {
    this.actions.sendKeepalive();
    if (this.keepaliveNeeded) {
      this.keepaliveNeeded = false;
      this.sendKeepalive.set(KEEPALIVE_TIMEOUT);
    }
  }

  private onNewHandshake(): void {
    this.actions.log(
      `Retrying handshake because we stopped hearing back after ${(KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) / 1000} seconds`,
    );
    this.actions.sendHandshakeInitiation(false);
  }

  private onPersistentKeepalive(): void {
    if (this.persistentKeepaliveMs > 0) this.actions.sendKeepalive();
  }

  /** A transport packet with data (not a keepalive) was sent. */
  dataSent(): void {
    if (this.newHandshake.deadline < 0) this.newHandshake.set(KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + this.jitter());
  }

  /** A transport packet with data was received: answer within KEEPALIVE_TIMEOUT (passive keepalive). */
  dataReceived(): void {
    if (this.sendKeepalive.deadline < 0) this.sendKeepalive.set(KEEPALIVE_TIMEOUT);
    else this.keepaliveNeeded = true;
  }

  /** Any authenticated packet (transport, keepalive or handshake) was sent. */
  anyAuthenticatedPacketSent(): void {
    this.sendKeepalive.clear();
  }

  /** Any authenticated packet was received. */
  anyAuthenticatedPacketReceived(): void {
    this.newHandshake.clear();
  }

  /** Any authenticated packet went either way: restart the persistent keepalive countdown. */
  anyAuthenticatedPacketTraversal(): void {
    if (this.persistentKeepaliveMs > 0) this.persistentKeepalive.set(this.persistentKeepaliveMs);
  }

  handshakeInitiated(): void {
    this.retransmitHandshake.set(REKEY_TIMEOUT + this.jitter());
  }

  handshakeComplete(now: number): void {
    this.retransmitHandshake.clear();
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
    this.lastHandshakeAt = now;
  }

  sessionDerived(): void {
    this.zeroKeyMaterial.set(REJECT_AFTER_TIME * 3);
  }

  /** Change the persistent keepalive interval (0 = off); the other timers keep running. */
  setPersistentKeepalive(ms: number): void {
    this.persistentKeepaliveMs = ms;
    if (ms === 0) this.persistentKeepalive.cancel();
    else this.persistentKeepalive.set(ms);
  }

  /** Stop every timer (tunnel closed, or keys erased). */
  stopAll(): void {
    this.retransmitHandshake.cancel();
    this.sendKeepalive.cancel();
    this.newHandshake.cancel();
    this.zeroKeyMaterial.cancel();
    this.persistentKeepalive.cancel();
    this.keepaliveNeeded = false;
  }

  /** Deadlines, for tests and diagnostics (-1 = not armed). */
  deadlines(): Record<string, number> {
    return {
      retransmitHandshake: this.retransmitHandshake.deadline,
      sendKeepalive: this.sendKeepalive.deadline,
      newHandshake: this.newHandshake.deadline,
      zeroKeyMaterial: this.zeroKeyMaterial.deadline,
      persistentKeepalive: this.persistentKeepalive.deadline,
    };
  }
}
