/**
 * Declarative flag tables. parse.ts parses argv strictly against them (unknown options, missing
 * values and repeated single-valued options are errors), and help.ts renders the --help text from
 * them.
 */

export interface FlagSpec {
  /** Long name without dashes, e.g. "bind-ip-port". */
  long: string;
  /** One-letter alias (case-sensitive: -k and -K differ). */
  short?: string;
  /** false for a switch. */
  takesValue: boolean;
  /** May be given several times (values collect in order). */
  repeatable?: boolean;
  valueHint?: string;
  description: string;
  /** Shown in --help only; defaults are applied by parse.ts. */
  defaultText?: string;
  /** Another long spelling of the same flag. */
  alias?: string;
  /** With takesValue: the value may be left out (then the flag reads as a switch). */
  optionalValue?: boolean;
}

const HELP: FlagSpec = { long: "help", short: "h", takesValue: false, description: "show this help" };

/** Flags shared by the main command and `up` (tuning, forwards, logging). */
const COMMON: FlagSpec[] = [
  {
    long: "keepalive-interval",
    short: "a",
    takesValue: true,
    valueHint: "seconds",
    description: "keepalive interval, in seconds (0 = off)",
  },
  {
    long: "mtu",
    takesValue: true,
    valueHint: "bytes",
    description: "maximum transfer unit to use for TCP",
    defaultText: "1420",
  },
  {
    long: "tcp-buffer-size",
    takesValue: true,
    valueHint: "bytes",
    description:
      "fixed in-application TCP buffer size per flow and direction (without it: starts at 65535 and grows with the path up to 8 MiB)",
    defaultText: "autotuned",
  },
  {
    long: "transmit-queue-capacity",
    takesValue: true,
    valueHint: "packets",
    description: "number of outgoing (to the peer) packets to hold in a queue",
    defaultText: "256",
  },
  {
    long: "udp-idle-timeout",
    takesValue: true,
    valueHint: "seconds",
    description: "forget an idle UDP NAT entry after this many seconds",
    defaultText: "92",
  },
  {
    long: "max-flows",
    takesValue: true,
    valueHint: "N",
    description:
      "host sockets the flows may hold at once (TCP flows + UDP mappings; a quarter for connects under way, half for UDP)",
    defaultText: "the open-files limit minus a reserve",
  },
  {
    long: "incoming-udp",
    short: "u",
    takesValue: true,
    repeatable: true,
    valueHint: "HOST,[SRC],DST",
    description: "forward this host UDP port into the tunnel, e.g. -u 0.0.0.0:1234,10.0.2.1:1234,10.0.2.15:1234",
  },
  {
    long: "incoming-tcp",
    short: "t",
    takesValue: true,
    repeatable: true,
    valueHint: "HOST,[SRC],DST",
    description:
      "forward this host TCP port into the tunnel (SRC port 0 = round-robin), e.g. -t 0.0.0.0:1234,,10.0.2.15:1234",
  },
  {
    long: "allow",
    takesValue: true,
    repeatable: true,
    valueHint: "CIDR[:PORTS]",
    description:
      "let the peer reach these destinations, e.g. --allow 127.0.0.1/32:8080 (rules of --allow/--deny apply in order, first match wins; the gateway host's own addresses, ports, loopback, link-local and cloud metadata are denied unless allowed)",
  },
  {
    long: "deny",
    takesValue: true,
    repeatable: true,
    valueHint: "CIDR[:PORTS]",
    description:
      "refuse these destinations (TCP: reset, UDP: ICMP admin-prohibited), e.g. --deny 10.0.0.0/8 or --deny 0.0.0.0/0:25",
  },
  {
    long: "log-level",
    takesValue: true,
    valueHint: "error|warn|info|debug|trace",
    description: "log verbosity (env WGSLIRPY_LOG)",
    defaultText: "info",
  },
  {
    long: "log-format",
    takesValue: true,
    valueHint: "text|json",
    description: "text: timestamped lines when stderr is not a terminal; json: one JSON object per line",
    defaultText: "text",
  },
  {
    long: "pcap",
    takesValue: true,
    valueHint: "FILE",
    description: "write every inner packet to this pcap file (created 0600: it holds decrypted traffic)",
  },
  {
    long: "stats-listen",
    takesValue: true,
    valueHint: "IP:PORT",
    description:
      "serve /metrics (Prometheus), /stats (JSON), /healthz and /readyz over HTTP here (use a loopback address)",
  },
  {
    long: "stats-interval",
    takesValue: true,
    valueHint: "seconds",
    description: "log a one-line summary (peers, flows, bytes/s each way) every this many seconds (0 = off)",
    defaultText: "0",
  },
  {
    long: "name",
    takesValue: true,
    valueHint: "NAME",
    description: "UAPI socket NAME.sock in /var/run/wireguard (else $XDG_RUNTIME_DIR/wireguard), for wg show/set NAME",
    defaultText: "wgslirpy",
  },
  { long: "uapi", takesValue: true, valueHint: "PATH", description: "serve the UAPI socket at exactly this path" },
  { long: "no-uapi", takesValue: false, description: "serve no UAPI socket" },
];

export const MAIN_FLAGS: FlagSpec[] = [
  {
    long: "config",
    short: "c",
    takesValue: true,
    valueHint: "FILE",
    description:
      "wg-quick style config: [Interface], [Gateway] (wgslirpy's own keys) and any number of [Peer] (replaces -k/-f/-K/-p)",
  },
  {
    long: "private-key",
    short: "k",
    takesValue: true,
    valueHint: "base64",
    description: 'main private key of this WireGuard node, base64-encoded ("INSECURE" with -K GUE: GUE/FOU mode)',
  },
  {
    long: "private-key-file",
    short: "f",
    takesValue: true,
    valueHint: "FILE",
    description: "main private key of this WireGuard node (content of a specified file), base64-encoded",
  },
  { long: "peer-key", short: "K", takesValue: true, valueHint: "base64", description: "peer's public key" },
  {
    long: "preshared-key-file",
    takesValue: true,
    valueHint: "FILE",
    description: "WireGuard preshared key (content of a specified file), base64-encoded",
  },
  {
    long: "peer-endpoint",
    short: "p",
    takesValue: true,
    valueHint: "IP:PORT",
    description: "address of the peer's UDP socket, where to send keepalives",
  },
  {
    long: "bind-ip-port",
    short: "b",
    takesValue: true,
    valueHint: "IP:PORT",
    description: "where to bind our own UDP socket for the WireGuard connection",
  },
  {
    long: "dns",
    short: "D",
    takesValue: true,
    valueHint: "IP:PORT",
    description: "serve a simple A/AAAA-only DNS server on this socket address inside the tunnel",
  },
  {
    long: "pingable",
    short: "P",
    takesValue: true,
    valueHint: "IP",
    description: "reply to ICMP pings on this single address inside the tunnel",
  },
  ...COMMON,
  HELP,
  { long: "version", takesValue: false, description: "print the version and exit" },
];

export const UP_FLAGS: FlagSpec[] = [
  {
    long: "bind-ip-port",
    short: "b",
    takesValue: true,
    valueHint: "IP:PORT",
    description: "where to bind the UDP socket",
    defaultText: "0.0.0.0:51820",
  },
  {
    long: "public-endpoint",
    takesValue: true,
    valueHint: "HOST:PORT",
    description: "Endpoint written into the peer config (default: the bind address)",
  },
  {
    long: "dns",
    short: "D",
    takesValue: true,
    valueHint: "IP:PORT",
    description: "DNS server inside the tunnel",
    defaultText: "10.0.2.1:53",
  },
  {
    long: "pingable",
    short: "P",
    takesValue: true,
    valueHint: "IP",
    description: "pingable address inside the tunnel",
    defaultText: "10.0.2.1",
  },
  {
    long: "state-dir",
    takesValue: true,
    valueHint: "DIR",
    description: "where the key pairs live (env WGSLIRPY_STATE_DIR, else $XDG_STATE_HOME/wgslirpy)",
  },
  {
    long: "show-config",
    takesValue: true,
    optionalValue: true,
    valueHint: "NAME",
    description:
      "NAME optional. Without it: print the quick-start peer's config (it holds the peer's private key) although the keys already exist, then serve; with NAME: that enrolled peer's config and QR code, and exit",
  },
  {
    long: "add-peer",
    takesValue: true,
    valueHint: "NAME",
    description:
      "enroll a device: next free address pair, keys kept in the state directory; print its config and a QR code, and exit",
  },
  { long: "remove-peer", takesValue: true, valueHint: "NAME", description: "forget an enrolled peer, and exit" },
  { long: "list", takesValue: false, description: "list the enrolled peers, and exit" },
  {
    long: "qr",
    takesValue: true,
    valueHint: "FILE",
    description: "with --add-peer / --show-config NAME: also write the QR code as a PNG",
  },
  {
    long: "print-config-only",
    alias: "dry-run",
    takesValue: false,
    description: "create/load the keys, print the peer config and exit",
  },
  ...COMMON,
  HELP,
];

export const KEYTOOL_FLAGS: FlagSpec[] = [HELP];

/** `status`: which gateway to ask (its UAPI socket), and where `up` keeps peer names. */
export const STATUS_FLAGS: FlagSpec[] = [
  {
    long: "name",
    takesValue: true,
    valueHint: "NAME",
    description: "the gateway's UAPI name",
    defaultText: "wgslirpy",
  },
  { long: "uapi", takesValue: true, valueHint: "PATH", description: "the gateway's UAPI socket path" },
  {
    long: "state-dir",
    takesValue: true,
    valueHint: "DIR",
    description: "where `up` keeps its peers (to show their names)",
  },
  HELP,
];

/** `wgslirpy replay FILE.pcap`: feed a capture's peer-side packets through the netstack. */
export const REPLAY_FLAGS: FlagSpec[] = [
  {
    long: "upstream",
    takesValue: true,
    valueHint: "capture|accept|refuse|live",
    description:
      "what answers the peer's TCP connections: the original server's bytes from the capture (default), a stub that accepts and discards, RST, or the real network",
    defaultText: "capture",
  },
  {
    long: "peer",
    takesValue: true,
    repeatable: true,
    valueHint: "IP",
    description: "the peer's inner address(es); default: the source of the first IPv4 and IPv6 packet",
  },
  {
    long: "pingable",
    short: "P",
    takesValue: true,
    valueHint: "IP",
    description: "answer echo requests to this address",
  },
  {
    long: "dns",
    short: "D",
    takesValue: true,
    valueHint: "IP:PORT",
    description: "with --upstream live: serve DNS here",
  },
  { long: "mtu", takesValue: true, valueHint: "bytes", description: "inner MTU", defaultText: "1420" },
  HELP,
];
