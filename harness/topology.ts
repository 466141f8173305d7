// The gw/peer/inet layout of /work/shared/notes/test-network.md.
//
//   peer ns                      gw ns                           inet ns
//   [wireguard client]  veth     [gateway]               veth    [servers]
//   10.201.0.1/24  <----------> 10.201.0.2/24   10.202.0.1/24 <-> 10.202.0.2/24, 10.202.0.3/24
//   fd00:201::1/64              fd00:201::2/64  fd00:202::1/64    fd00:202::2/64, fd00:202::3/64
//
// No namespace has a route anywhere except its connected subnets (and, in the peer, the tunnel).
// gw's /etc/netns hosts file names the inet hosts; gw's resolv.conf says 127.0.0.1, where nothing
// listens, so unknown names fail at once without ever reaching the machine's resolver.
import { addAddr, addRoute, createNs, deleteNs, sweepNs, sysctl, veth } from "./netns.ts";

export const ADDR = {
  peerOuter4: "10.201.0.1",
  gwOuter4: "10.201.0.2",
  peerOuter6: "fd00:201::1",
  gwOuter6: "fd00:201::2",
  gwInet4: "10.202.0.1",
  gwInet6: "fd00:202::1",
  /** web.test */
  inet4: "10.202.0.2",
  inet6: "fd00:202::2",
  /** other.test: a second host address in inet */
  inet4b: "10.202.0.3",
  inet6b: "fd00:202::3",
  /** Inside the tunnel, like the seed's demo session. */
  tunPeer4: "192.168.76.1",
  tunPeer6: "fc00::1",
  /** The gateway's DNS and pingable address (seed: --dns 192.168.72.2:53 --pingable 192.168.72.2). */
  tunGw4: "192.168.72.2",
  /** An IPv6 pingable/DNS address for a second gateway run. */
  tunGw6: "fc00::72:2",
} as const;

/** Names the gateway's host resolver knows (gw's /etc/netns/NS/hosts). */
export const HOSTS = {
  /** A and AAAA */
  web: "web.test",
  /** A only */
  v4only: "v4only.test",
  /** AAAA only */
  v6only: "v6only.test",
  /** second address pair */
  other: "other.test",
  /** not in the hosts file */
  missing: "nosuchhost.test",
} as const;

export const GW_HOSTS_FILE = [
  "127.0.0.1 localhost",
  "::1 localhost ip6-localhost",
  `${ADDR.inet4} ${HOSTS.web}`,
  `${ADDR.inet6} ${HOSTS.web}`,
  `${ADDR.inet4} ${HOSTS.v4only}`,
  `${ADDR.inet6} ${HOSTS.v6only}`,
  `${ADDR.inet4b} ${HOSTS.other}`,
  `${ADDR.inet6b} ${HOSTS.other}`,
  "",
].join("\n");

export interface Topology {
  prefix: string;
  peer: string;
  gw: string;
  inet: string;
  /** Interface names inside the namespaces. */
  ifs: { peerToGw: string; gwToPeer: string; gwToInet: string; inetToGw: string };
  /** Add routes in inet back to the tunnel subnets via gw and turn on forwarding in gw (reference path). */
  enableForwarding(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Create the three namespaces `${prefix}peer`, `${prefix}gw`, `${prefix}inet` (deleting stale ones
 * with that prefix first). `prefix` must be unique per test file.
 */
export async function createTopology(prefix: string): Promise<Topology> {
  await sweepNs(prefix);
  const t: Topology = {
    prefix,
    peer: `${prefix}peer`,
    gw: `${prefix}gw`,
    inet: `${prefix}inet`,
    ifs: { peerToGw: "v-gw", gwToPeer: "v-peer", gwToInet: "v-inet", inetToGw: "v-gw" },
    async enableForwarding() {
      await sysctl(t.gw, "net.ipv4.ip_forward", 1);
      await sysctl(t.gw, "net.ipv6.conf.all.forwarding", 1);
      await addRoute(t.inet, ["192.168.76.0/24", "via", ADDR.gwInet4]);
      await addRoute(t.inet, ["fc00::/64", "via", ADDR.gwInet6]);
    },
    async destroy() {
      for (const ns of [t.peer, t.gw, t.inet]) await deleteNs(ns);
    },
  };
  try {
    await createNs(t.peer, { resolvConf: `nameserver ${ADDR.tunGw4}\n` });
    await createNs(t.gw, { hosts: GW_HOSTS_FILE, resolvConf: "nameserver 127.0.0.1\n" });
    await createNs(t.inet, { resolvConf: "nameserver 127.0.0.1\n" });
    await veth(t.peer, t.ifs.peerToGw, t.gw, t.ifs.gwToPeer);
    await veth(t.gw, t.ifs.gwToInet, t.inet, t.ifs.inetToGw);
    await addAddr(t.peer, t.ifs.peerToGw, `${ADDR.peerOuter4}/24`);
    await addAddr(t.peer, t.ifs.peerToGw, `${ADDR.peerOuter6}/64`);
    await addAddr(t.gw, t.ifs.gwToPeer, `${ADDR.gwOuter4}/24`);
    await addAddr(t.gw, t.ifs.gwToPeer, `${ADDR.gwOuter6}/64`);
    await addAddr(t.gw, t.ifs.gwToInet, `${ADDR.gwInet4}/24`);
    await addAddr(t.gw, t.ifs.gwToInet, `${ADDR.gwInet6}/64`);
    for (const a of [`${ADDR.inet4}/24`, `${ADDR.inet4b}/24`, `${ADDR.inet6}/64`, `${ADDR.inet6b}/64`]) {
      await addAddr(t.inet, t.ifs.inetToGw, a);
    }
  } catch (e) {
    await t.destroy();
    throw e;
  }
  return t;
}
