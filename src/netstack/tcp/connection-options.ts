/** What one TCP connection is built from (tcb.ts): its flow, its layer's shared parts and its knobs. */
import type { Clock } from "../../util/clock.ts";
import type { Logger } from "../../util/log.ts";
import type { Random } from "../../util/random.ts";
import type { IpAddr, IpOutput } from "../types.ts";
import type { CongestionControlFactory } from "./congestion/types.ts";
import type { FairShare } from "./fair-share.ts";
import type { PeerPath } from "./peer-path.ts";
import type { TcpStats } from "./stats.ts";
import type { TcpControlBlock } from "./tcb.ts";
import type { TimeWaitTable } from "./time-wait.ts";

export interface TcpConnectionOptions {
  output: IpOutput;
  clock: Clock;
  random: Random;
  log: Logger;
  stats: TcpStats;
  /** Our side of the flow. */
  local: IpAddr;
  localPort: number;
  /** The peer's side. */
  remote: IpAddr;
  remotePort: number;
  /** The MSS we advertise (and the most we send): MTU minus IP and TCP headers. */
  mss: number;
  /** Bound of each of the send and receive buffers (the initial one when autotuning). */
  bufferSize: number;
  /** Autotune both buffers up to this many bytes each (autotune.ts); 0 or absent: fixed size. */
  autotuneMaxBufferSize?: number;
  /** Bound on the handshake; past it the connection closes with "timeout". */
  synTimeoutMs: number;
  /** Called once when the connection is finished and must leave the demux table. */
  onGone: (conn: TcpControlBlock) => void;
  /** Congestion controller per connection; CUBIC when absent. */
  congestionControl?: CongestionControlFactory;
  /** Bound on FIN-WAIT-2 without progress from the peer (default 60 s). */
  finWait2TimeoutMs?: number;
  /** Offer and accept SACK (RFC 2018); default true. */
  sack?: boolean;
  /** Pace data segments (pacing.ts); default true. */
  pacing?: boolean;
  /**
   * Queue the connection for the end of the event-loop turn (the layer then calls endTurn() once):
   * app events and the coalesced ACK go out once per turn, not once per segment.
   */
  queueTurn: (conn: TcpControlBlock) => void;
  /** Shared by the flows toward the same remote address (peer-path.ts); absent: this flow alone. */
  path?: PeerPath;
  /** The layer's output shared among its flows (fair-share.ts); absent: only the flow's pacer. */
  fairShare?: FairShare;
  /** Hold the turn's ACK of a short segment back (delayed-ack.ts); absent: ACK every turn. */
  delayAck?: (conn: TcpControlBlock) => void;
  /**
   * Where the flow's TIME-WAIT goes once the app has heard onClosed (time-wait.ts), under `key`
   * (the layer's demux key); absent: the connection itself waits out TIME-WAIT.
   */
  timeWait?: { table: TimeWaitTable; key: string };
}
