// The kernel-peer harness on its own (no gateway): a real Linux kernel in qemu (a) runs kernel
// WireGuard against wireguard-go in a test namespace and pings across the tunnel, and (b) sends
// FOU/GUE datagrams whose exact bytes the test checks — the oracle for the gateway's GUE mode.
// Everything stays inside the namespace `ksm-…`: qemu's user-mode network maps the guest's 10.0.2.2
// to that namespace's loopback.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describeOrSkip } from "../../harness/gate.ts";
import { debianKernelVersion, findGuestKernel } from "../../harness/kernel/initramfs.ts";
import { kernelGuePeer, kernelWireGuardPeer, userNetEndpoint, wgGenKey } from "../../harness/kernel/peers.ts";
import { kernelSkipReason, runKernelPeer, USER_NET } from "../../harness/kernel/vm.ts";
import {
  addAddr,
  type BgProcess,
  createNs,
  deleteNs,
  exec,
  execCheck,
  have,
  spawnBg,
  tempDir,
  waitUntil,
} from "../../harness/netns.ts";

const skip = kernelSkipReason() ?? (have("wireguard-go") ? null : "wireguard-go missing");
const NS = "ksm-host";
const REFLECTOR = join(import.meta.dir, "../../harness/kernel/udp-reflector.ts");

const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const spaced = (h: string) => h.match(/../g)!.join(" ");

interface Dgram {
  from: string;
  port: number;
  bytes: Uint8Array;
}
function datagrams(p: BgProcess): Dgram[] {
  return p
    .lines()
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l))
    .map((j) => ({ from: j.from, port: j.port, bytes: fromHex(j.hex) }));
}
const ip4 = (b: Uint8Array, off: number) => Array.from(b.subarray(off, off + 4)).join(".");

describeOrSkip(skip, "kernel peer in qemu", () => {
  const procs: BgProcess[] = [];
  let work = "";

  beforeAll(async () => {
    await createNs(NS);
    work = tempDir("ksm");
  });
  afterAll(async () => {
    for (const p of procs) await p.stop(1000);
    rmSync("/var/run/wireguard/kswg0.sock", { force: true });
    await deleteNs(NS);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("boots linux-image-amd64's kernel with eth0 and the 9p share, runs the script, reports RESULT lines and the exit status", async () => {
    const share = join(work, "share-boot");
    const r = await runKernelPeer({
      netns: NS,
      script: [
        "result answer 42",
        "result mods $(lsmod | grep -c -E '^(wireguard|fou|fou6|ipip|sit) ')",
        "result kernel $(uname -r)",
        "result eth0 $(ip -4 -o addr show dev eth0 | awk '{print $4}')",
        "echo from-guest > /share/hello",
        "exit 3",
        "",
      ].join("\n"),
      shareDir: share,
      timeoutMs: 120_000,
    });
    console.log(
      `kernel-smoke: accel=${r.accel} boot ${Math.round(r.bootMs ?? -1)} ms (guest ${r.guestBootSeconds} s), total ${Math.round(r.totalMs)} ms`,
    );
    expect(r.exitReason).toBe("done");
    expect(r.results.answer).toBe("42");
    expect(r.results.mods).toBe("5");
    expect(r.exitCode).toBe(3);
    expect(r.results.eth0).toBe(USER_NET.cidr);
    expect(readFileSync(join(share, "hello"), "utf8")).toBe("from-guest\n");
    // Whatever else /boot holds, the guest runs the kernel linux-image-amd64 depends on.
    const deb = Bun.which("dpkg-query") && !process.env.WGSLIRPY_KERNEL ? debianKernelVersion() : null;
    expect(r.results.kernel).toBe(deb && "version" in deb ? deb.version : String(findGuestKernel()?.version));
  }, 150_000);

  test("a guest without its NIC or its 9p share fails loudly instead of running the script", async () => {
    // net "none" gives the guest no virtio-net device and no shareDir no 9p device: /init must
    // stop before /test.sh and the run must reject naming what is missing.
    const [noEth0, noShare] = await Promise.allSettled([
      runKernelPeer({ netns: null, script: "result ran yes\n", net: { mode: "none" }, requireInGuest: ["eth0"] }),
      runKernelPeer({ netns: null, script: "result ran yes\n", net: { mode: "none" }, requireInGuest: ["share"] }),
    ]);
    expect(noEth0.status).toBe("rejected");
    expect(noShare.status).toBe("rejected");
    const why = (s: PromiseSettledResult<unknown>) => String((s as PromiseRejectedResult).reason);
    expect(why(noEth0)).toMatch(/GuestSetupError|guest is not set up/);
    expect(why(noEth0)).toContain("WGSLIRPY-VM-SETUP-FAILED no eth0");
    expect(why(noShare)).toContain("WGSLIRPY-VM-SETUP-FAILED 9p share not mounted");
    expect(why(noEth0)).not.toContain("RESULT=ran=yes");
    expect(why(noShare)).not.toContain("RESULT=ran=yes");
  }, 150_000);

  test("hard timeout kills a guest that never finishes", async () => {
    const r = await runKernelPeer({ netns: NS, script: "sleep 600\n", timeoutMs: 4000, net: { mode: "none" } });
    expect(r.exitReason).toBe("timeout");
    expect(r.exitCode).toBeNull();
    expect(r.totalMs).toBeLessThan(20_000);
  }, 30_000);

  test("kernel WireGuard handshakes with wireguard-go and pings over IPv4 and IPv6", async () => {
    const host = await wgGenKey();
    const guest = await wgGenKey();
    const keyFile = join(work, "host.key");
    writeFileSync(keyFile, `${host.privateKey}\n`, { mode: 0o600 });
    rmSync("/var/run/wireguard/kswg0.sock", { force: true });
    const wgGo = spawnBg(NS, "wireguard-go", ["wireguard-go", "-f", "kswg0"]);
    procs.push(wgGo);
    await waitUntil("wireguard-go UAPI socket", () => existsSync("/var/run/wireguard/kswg0.sock"), 10_000);
    await execCheck(NS, [
      "wg",
      "set",
      "kswg0",
      "listen-port",
      "51820",
      "private-key",
      keyFile,
      "peer",
      guest.publicKey,
      "allowed-ips",
      "10.77.0.2/32,fd77::2/128",
    ]);
    await addAddr(NS, "kswg0", "10.77.0.1/24");
    await addAddr(NS, "kswg0", "fd77::1/64");
    await execCheck(NS, ["ip", "link", "set", "kswg0", "up"]);

    const r = await kernelWireGuardPeer({
      netns: NS,
      privateKey: guest.privateKey,
      peerPublicKey: host.publicKey,
      endpoint: userNetEndpoint(51820),
      addresses: ["10.77.0.2/24", "fd77::2/64"],
      allowedIps: ["10.77.0.1/32", "fd77::1/128"],
      routes: [],
      commands: ["ping -c 3 -i 0.3 -W 3 10.77.0.1", "ping -6 -c 3 -i 0.3 -W 3 fd77::1"],
    });
    for (const c of r.commands) console.log(`kernel-smoke: $ ${c.cmd} -> ${c.exitCode} (${c.ms} ms)\n${c.output}`);
    console.log(
      `kernel-smoke: wireguard run ${Math.round(r.vm.totalMs)} ms (boot ${Math.round(r.vm.bootMs ?? -1)} ms)`,
    );
    expect(r.vm.exitReason).toBe("done");
    expect(r.publicKey).toBe(guest.publicKey);
    expect(r.commands[0]!.exitCode).toBe(0);
    expect(r.commands[0]!.output).toMatch(/3 packets transmitted, 3 received/);
    expect(r.commands[1]!.exitCode).toBe(0);
    expect(r.commands[1]!.output).toMatch(/3 packets transmitted, 3 received/);
    expect(r.latestHandshake).toBeGreaterThan(0);
    // The wireguard-go side saw the handshake and data from the guest's kernel.
    const dump = (await exec(NS, ["wg", "show", "kswg0", "dump"])).stdout;
    const peer = dump
      .split("\n")
      .find((l) => l.startsWith(guest.publicKey))!
      .split("\t");
    expect(Number(peer[4])).toBeGreaterThan(0); // latest handshake
    expect(Number(peer[5])).toBeGreaterThan(0); // rx bytes
    await wgGo.stop(1000);
  }, 200_000);

  test("GUE: ipip/sit encap gue send 00 04 00 00 + IPv4 and 00 29 00 00 + IPv6, and accept replies", async () => {
    const refl = spawnBg(NS, "reflector-gue", [process.execPath, REFLECTOR, "--port", "7000", "--reflect"]);
    procs.push(refl);
    await refl.waitFor(/READY/, 10_000);
    const r = await kernelGuePeer({
      netns: NS,
      encap: "gue",
      remotePort: 7000,
      addresses4: ["10.78.0.2/24"],
      addresses6: ["fd78::2/64"],
      routes4: [],
      routes6: [],
      commands: ["ping -c 2 -i 0.3 -W 3 10.78.0.1", "ping -6 -c 2 -i 0.3 -W 3 fd78::1"],
    });
    await refl.stop(500);
    for (const c of r.commands) console.log(`kernel-smoke: $ ${c.cmd} -> ${c.exitCode}\n${c.output}`);
    const d = datagrams(refl);
    const v4 = d.find((x) => toHex(x.bytes).startsWith("00040000"));
    const v6 = d.find((x) => toHex(x.bytes).startsWith("00290000"));
    expect(v4).toBeDefined();
    expect(v6).toBeDefined();
    console.log(`kernel-smoke: GUE/IPv4 datagram: ${spaced(toHex(v4!.bytes))}`);
    console.log(`kernel-smoke: GUE/IPv6 datagram: ${spaced(toHex(v6!.bytes))}`);
    // GUE variant 0, proto 4, then an IPv4 ICMP echo request 10.78.0.2 -> 10.78.0.1.
    const p4 = v4!.bytes.subarray(4);
    expect(p4[0]).toBe(0x45);
    expect(p4[9]).toBe(1);
    expect(ip4(p4, 12)).toBe("10.78.0.2");
    expect(ip4(p4, 16)).toBe("10.78.0.1");
    expect(p4[20]).toBe(8);
    // GUE variant 0, proto 41, then an IPv6 ICMPv6 echo request fd78::2 -> fd78::1.
    const p6 = v6!.bytes.subarray(4);
    expect(p6[0]! >> 4).toBe(6);
    expect(p6[6]).toBe(58);
    expect(toHex(p6.subarray(8, 24))).toBe("fd780000000000000000000000000002");
    expect(toHex(p6.subarray(24, 40))).toBe("fd780000000000000000000000000001");
    expect(p6[40]).toBe(128);
    // Every datagram is GUE-framed (no raw IP on a gue tunnel).
    for (const x of d) expect(["00040000", "00290000"]).toContain(toHex(x.bytes.subarray(0, 4)));
    // The reflector's GUE-framed echo replies were accepted by the guest kernel.
    expect(r.commands[0]!.output).toMatch(/2 packets transmitted, 2 received/);
    expect(r.commands[1]!.output).toMatch(/2 packets transmitted, 2 received/);
  }, 200_000);

  test("FOU: ipip/sit encap fou send raw IPv4 (45 …) and raw IPv6 (6x …), and accept raw replies", async () => {
    const refl = spawnBg(NS, "reflector-fou", [process.execPath, REFLECTOR, "--port", "7001", "--reflect"]);
    procs.push(refl);
    await refl.waitFor(/READY/, 10_000);
    const r = await kernelGuePeer({
      netns: NS,
      encap: "fou",
      remotePort: 7001,
      addresses4: ["10.79.0.2/24"],
      addresses6: ["fd79::2/64"],
      routes4: [],
      routes6: [],
      commands: ["ping -c 2 -i 0.3 -W 3 10.79.0.1", "ping -6 -c 2 -i 0.3 -W 3 fd79::1"],
    });
    await refl.stop(500);
    for (const c of r.commands) console.log(`kernel-smoke: $ ${c.cmd} -> ${c.exitCode}\n${c.output}`);
    const d = datagrams(refl);
    const v4 = d.find((x) => x.bytes[0] === 0x45);
    const v6 = d.find((x) => x.bytes[0]! >> 4 === 6);
    expect(v4).toBeDefined();
    expect(v6).toBeDefined();
    console.log(`kernel-smoke: FOU/IPv4 datagram: ${spaced(toHex(v4!.bytes))}`);
    console.log(`kernel-smoke: FOU/IPv6 datagram: ${spaced(toHex(v6!.bytes))}`);
    expect(ip4(v4!.bytes, 12)).toBe("10.79.0.2");
    expect(ip4(v4!.bytes, 16)).toBe("10.79.0.1");
    expect(v4!.bytes[9]).toBe(1);
    expect(v6!.bytes[6]).toBe(58);
    expect(toHex(v6!.bytes.subarray(8, 24))).toBe("fd790000000000000000000000000002");
    for (const x of d) expect([4, 6]).toContain(x.bytes[0]! >> 4);
    expect(r.commands[0]!.output).toMatch(/2 packets transmitted, 2 received/);
    expect(r.commands[1]!.output).toMatch(/2 packets transmitted, 2 received/);
  }, 200_000);

  test("tap networking: exact outer addresses and ports (no NAT), tap removed afterwards", async () => {
    const refl = spawnBg(NS, "reflector-tap", [
      process.execPath,
      REFLECTOR,
      "--addr",
      "0.0.0.0", // the tap (and 10.95.0.1) only exists once the VM starts
      "--port",
      "7002",
      "--reflect",
    ]);
    procs.push(refl);
    await refl.waitFor(/READY/, 10_000);
    const r = await kernelGuePeer({
      netns: NS,
      net: { mode: "tap", ifname: "ksm-tap", hostCidrs: ["10.95.0.1/24"], guestCidrs: ["10.95.0.2/24"] },
      encap: "gue",
      remote: "10.95.0.1",
      local: "10.95.0.2",
      remotePort: 7002,
      localPort: 6655,
      addresses4: ["10.96.0.2/24"],
      addresses6: [],
      routes4: [],
      commands: ["ping -c 2 -i 0.3 -W 3 10.96.0.1"],
    });
    await refl.stop(500);
    const d = datagrams(refl);
    expect(d.length).toBeGreaterThan(0);
    for (const x of d) {
      expect(x.from).toBe("10.95.0.2");
      expect(x.port).toBe(6655);
    }
    expect(r.commands[0]!.output).toMatch(/2 packets transmitted, 2 received/);
    const links = await exec(NS, ["ip", "link", "show"]);
    expect(links.stdout).not.toContain("ksm-tap");
  }, 200_000);
});
