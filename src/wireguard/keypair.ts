/**
 * Transport sessions ("keypairs") and the current/previous/next rotation of wireguard-go
 * (noise-protocol.go BeginSymmetricSession, ReceivedWithKeypair).
 *
 * The responder's new keypair waits in `next` until the initiator's first transport packet
 * arrives on it (key confirmation); until then the responder keeps sending on `current`.
 */
import type { Aead } from "./aead.ts";
import { ReplayFilter } from "./replay.ts";

export class Keypair {
  /** Next counter to send with. */
  sendCounter = 0;
  readonly replay = new ReplayFilter();

  constructor(
    readonly send: Aead,
    readonly receive: Aead,
    readonly isInitiator: boolean,
    readonly localIndex: number,
    readonly remoteIndex: number,
    /** Clock time (ms) the keypair was derived. */
    readonly created: number,
  ) {}
}

export class Keypairs {
  current: Keypair | undefined;
  previous: Keypair | undefined;
  next: Keypair | undefined;

  /** The keypair a transport message addressed to `localIndex` belongs to. */
  lookup(localIndex: number): Keypair | undefined {
    if (this.current?.localIndex === localIndex) return this.current;
    if (this.next?.localIndex === localIndex) return this.next;
    if (this.previous?.localIndex === localIndex) return this.previous;
    return undefined;
  }

  /** Install a freshly derived keypair. The initiator uses it at once; the responder stages it. */
  install(kp: Keypair): void {
    if (kp.isInitiator) {
      if (this.next) {
        // An unconfirmed responder session loses to our own completed handshake.
        this.previous = this.next;
        this.next = undefined;
      } else {
        this.previous = this.current;
      }
      this.current = kp;
    } else {
      this.next = kp;
      this.previous = undefined;
    }
  }

  /** Called on every authenticated receive: promotes `next` when the peer first uses it. */
  confirm(kp: Keypair): boolean {
    if (kp !== this.next) return false;
    this.previous = this.current;
    this.current = kp;
    this.next = undefined;
    return true;
  }

  clear(): void {
    this.current = undefined;
    this.previous = undefined;
    this.next = undefined;
  }

  /** Local indices in use, so a new session index never collides with a live one. */
  hasIndex(index: number): boolean {
    return this.lookup(index) !== undefined;
  }
}
