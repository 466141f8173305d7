/**
 * Bulk throughput of the userspace TCP stack itself: two TcpLayers back to back in one process on
 * a VirtualClock (so only CPU time counts), each direction carrying SIZE bytes, at 0% and 1% loss.
 * Prints MB/s of CPU time (payload bytes both ways / process CPU seconds).
 *
 *   bun bench/tcp.ts [MiB per direction, default 32]
 */
import { transfer } from "../test/unit/tcp-transfer.ts";

const mib = Number(process.argv[2] ?? 32);
const size = mib << 20;

function run(loss: number, sack: boolean, cc: "cubic" | "newreno"): void {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const r = transfer({
    sizeAtoB: size,
    sizeBtoA: size,
    seed: 1,
    bufferSize: 4 << 20,
    sack,
    congestionControl: cc,
    aToB: { loss, delayMs: 1 },
    bToA: { loss, delayMs: 1 },
    limitMs: 3_600_000,
  });
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const wallS = (performance.now() - wall0) / 1000;
  if (!r.intact) throw new Error(`data mismatch at loss ${loss}`);
  const mb = (2 * size) / 1e6;
  const st = [r.layerA.stats, r.layerB.stats];
  console.log(
    `loss ${(loss * 100).toFixed(0)}% ${sack ? "SACK" : "no SACK"} ${cc}: ${mib} MiB each way, ` +
      `${(mb / cpuS).toFixed(1)} MB/s of CPU (${cpuS.toFixed(2)} s CPU, ${wallS.toFixed(2)} s wall), ` +
      `virtual ${(r.doneAt / 1000).toFixed(2)} s, segments ${st[0]!.segmentsOut + st[1]!.segmentsOut}, ` +
      `retransmits ${st[0]!.retransmits + st[1]!.retransmits}`,
  );
}

run(0, true, "cubic"); // warm-up (JIT)
for (const loss of [0, 0.01]) run(loss, true, "cubic");
run(0.01, false, "newreno");
