import type { Endpoint } from "../util/endpoint.ts";

/** The outer datagram socket a tunnel (WireGuard or GUE) talks through. */
export interface DatagramTransport {
  /** Send one datagram. May queue until the current poll's flush: callers must not reuse `data`. */
  send(data: Uint8Array, to: Endpoint): void;
  /** Set by the tunnel: called for every datagram received. `data` belongs to the callee. */
  onDatagram: (data: Uint8Array, from: Endpoint) => void;
  /** The bound local address. */
  readonly local: Endpoint;
  close(): void;
}
