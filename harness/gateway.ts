// The gateway under test: `bun src/cli.ts <seed flags>` inside the gw namespace.
import { resolve } from "node:path";
import { type BgProcess, exec, rssKiB, sleep, spawnBg } from "./netns.ts";
import { ADDR } from "./topology.ts";

export const REPO_ROOT = resolve(import.meta.dir, "..");

export interface GatewayConfig {
  ns: string;
  privateKey: string;
  peerPublicKey: string;
  /** Outer UDP bind, default `${ADDR.gwOuter4}:PORT`. */
  bindPort: number;
  bindAddress?: string;
  /** `--peer-endpoint IP:PORT` (the gateway initiates). */
  peerEndpoint?: string;
  keepaliveInterval?: number;
  /** `--dns`, default "192.168.72.2:53"; null = none. */
  dns?: string | null;
  /** `--pingable`, default "192.168.72.2"; null = none. */
  pingable?: string | null;
  presharedKeyFile?: string;
  logLevel?: string;
  extraArgs?: string[];
  /** The program to run instead of `bun src/cli.ts` (e.g. [the compiled binary]). */
  command?: string[];
}

/** The flags of the seed's activation line for this config. */
export function gatewayArgs(c: GatewayConfig): string[] {
  const args = ["--private-key", c.privateKey, "-b", `${c.bindAddress ?? ADDR.gwOuter4}:${c.bindPort}`];
  args.push("--peer-key", c.peerPublicKey);
  if (c.peerEndpoint) args.push("--peer-endpoint", c.peerEndpoint);
  args.push("--keepalive-interval", String(c.keepaliveInterval ?? 10));
  const dns = c.dns === undefined ? `${ADDR.tunGw4}:53` : c.dns;
  if (dns) args.push("--dns", dns);
  const pingable = c.pingable === undefined ? ADDR.tunGw4 : c.pingable;
  if (pingable) args.push("--pingable", pingable);
  if (c.presharedKeyFile) args.push("--preshared-key-file", c.presharedKeyFile);
  args.push("--log-level", c.logLevel ?? "debug");
  args.push(...(c.extraArgs ?? []));
  return args;
}

export class Gateway {
  readonly isReference = false;
  private proc: BgProcess | null = null;
  constructor(readonly config: GatewayConfig) {}

  get pid(): number {
    if (!this.proc) throw new Error("gateway not started");
    return this.proc.pid;
  }

  get bindEndpoint(): string {
    return `${this.config.bindAddress ?? ADDR.gwOuter4}:${this.config.bindPort}`;
  }

  /** Start and wait until the outer UDP port is bound (bounded); throws with the log if it exits. */
  async start(timeoutMs = 15_000): Promise<void> {
    const argv = [...(this.config.command ?? [process.execPath, "src/cli.ts"]), ...gatewayArgs(this.config)];
    this.proc = spawnBg(this.config.ns, "gateway", argv, {
      cwd: REPO_ROOT,
      env: { ...process.env, WGSLIRPY_LOG: undefined, NO_COLOR: "1", FORCE_COLOR: "0" },
    });
    const port = this.config.bindPort;
    const deadline = performance.now() + timeoutMs;
    for (let i = 0; i < 1000; i++) {
      if (!this.proc.running()) throw new Error(`gateway exited (code ${await this.proc.exited}):\n${this.log()}`);
      const r = await exec(this.config.ns, ["ss", "-Hlun", `sport = :${port}`], { timeoutMs: 3000 });
      if (r.stdout.includes(`:${port}`)) return;
      if (performance.now() > deadline) break;
      await sleep(100);
    }
    throw new Error(
      `gateway did not bind UDP port ${port} within ${timeoutMs} ms\n--- log ---\n${this.log().slice(-4000)}`,
    );
  }

  running(): boolean {
    return this.proc?.running() ?? false;
  }

  log(): string {
    return this.proc?.output() ?? "";
  }

  /** Count log lines matching `re`. */
  countLog(re: RegExp): number {
    return this.log()
      .split("\n")
      .filter((l) => re.test(l)).length;
  }

  async rssKiB(): Promise<number | null> {
    return this.proc ? rssKiB(this.proc.pid) : null;
  }

  async waitLog(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    if (!this.proc) throw new Error("gateway not started");
    return this.proc.waitFor(re, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.proc?.stop(3000);
  }
}
