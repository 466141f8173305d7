/**
 * The command-line program: what each command does (the command tree, its dispatch, --help and
 * --version are in program.ts, on citty) and the gateway's lifetime. Exit status: 0 done,
 * 1 runtime failure, 2 bad command line or configuration, or something the options ask for cannot
 * be opened (the UDP port is taken, the pcap file cannot be created...): one `wgslirpy: error: ...`
 * line, nothing left open.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { homedir, networkInterfaces } from "node:os";
import type { GatewayOptions } from "../options.ts";
import { loadOrCreateKeys, resolveStateDir, StateError } from "../state/keys.ts";
import { listPeers, loosePeerFiles } from "../state/peers.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { StartupError } from "../util/startup.ts";
import { generatePrivateKey, keyToBase64, publicKeyOf } from "../wireguard/keys.ts";
import { type LookupHost, parseGatewayArgsResolvingHosts } from "./config-hosts.ts";
import { KEYTOOL_FLAGS, REPLAY_FLAGS } from "./flags.ts";
import { helpWidth } from "./help.ts";
import { CliError, FlagReader, parseFlags, parseKeyFor, type ReadTextFile } from "./parse.ts";
import { type ProgramActions, runProgram } from "./program.ts";
import { resolveUapi } from "./uapi-path.ts";
import { type InterfaceList, parseUpArgs, peerEndpointFor, renderPeerConfig, upGatewayOptions } from "./up.ts";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readFile: ReadTextFile;
  readStdin: () => Promise<string>;
  home: () => string;
  interfaces: () => InterfaceList;
  /** The terminal's width when stdout is a TTY (help wraps to it), else undefined. */
  columns?: () => number | undefined;
  /** Resolves a config file's Endpoint host names; default: the system resolver. */
  lookupHost?: LookupHost;
}

export const processIo: CliIo = {
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  readFile: (p) => readFileSync(p, "utf8"),
  readStdin: () => Bun.stdin.text(),
  home: () => homedir(),
  interfaces: () => networkInterfaces() as InterfaceList,
  columns: () => (process.stdout.isTTY ? process.stdout.columns : undefined),
};

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** Run the program (the citty command tree in program.ts); resolves to the exit status. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const actions: ProgramActions = {
    main: async (args) => {
      const options = await parseGatewayArgsResolvingHosts(args, io, io.lookupHost);
      const log = createLogger(options.logLevel, { format: options.logFormat });
      if (options.mode === "gue") log.warn("GUE/FOU mode: packets travel unencrypted and unauthenticated");
      return await serve(options, log);
    },
    up: (args) => runUp(args, io),
    status: async (args) => {
      const { runStatus } = await import("./status.ts");
      await runStatus(args, io.env, io.home(), io.stdout);
      return EXIT_OK;
    },
    genkey: async (args) => {
      noPositionals(args, "genkey");
      io.stdout(`${keyToBase64(generatePrivateKey())}\n`);
      return EXIT_OK;
    },
    pubkey: async (args) => {
      noPositionals(args, "pubkey");
      const key = parseKeyFor(await io.readStdin(), "private key on stdin", true);
      io.stdout(`${keyToBase64(publicKeyOf(key))}\n`);
      return EXIT_OK;
    },
    replay: (args) => runReplay(args, io),
  };
  try {
    return await runProgram(argv, actions, { stdout: io.stdout, helpWidth: () => helpWidth(io.columns?.()) });
  } catch (e) {
    if (e instanceof CliError || e instanceof StateError || e instanceof StartupError) {
      io.stderr(`wgslirpy: error: ${oneLine(e.message)}\n`);
      return EXIT_USAGE;
    }
    io.stderr(`wgslirpy: error: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
    return EXIT_FAILURE;
  }
}

/** genkey and pubkey take no arguments but --help. */
function noPositionals(argv: readonly string[], command: string): void {
  const parsed = parseFlags(argv, KEYTOOL_FLAGS);
  if (parsed.positionals.length > 0) {
    throw new CliError(`unexpected argument ${JSON.stringify(parsed.positionals[0])} for "${command}"`);
  }
}

async function runReplay(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseFlags(argv, REPLAY_FLAGS);
  if (parsed.positionals.length !== 1) throw new CliError("replay needs exactly one capture file (replay FILE.pcap)");
  const r = new FlagReader(parsed, REPLAY_FLAGS);
  const upstream = r.string("upstream") ?? "capture";
  if (upstream !== "capture" && upstream !== "accept" && upstream !== "refuse" && upstream !== "live")
    throw new CliError(`invalid --upstream "${upstream}": expected capture, accept, refuse or live`);
  const pingable = r.string("pingable");
  if (pingable !== undefined && !isIP(pingable))
    throw new CliError(`invalid --pingable "${pingable}": not an IP address`);
  const dns = r.endpoint("dns");
  const mtu = r.int("mtu", 576, 65535, 1420);
  const file = parsed.positionals[0] as string;
  let data: Uint8Array;
  try {
    data = new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const { replayPcap } = await import("../replay/replay.ts");
  let result: Awaited<ReturnType<typeof replayPcap>>;
  try {
    result = await replayPcap(data, {
      upstream,
      peers: r.all("peer"),
      pingable,
      dns,
      mtu,
      out: (line) => io.stdout(`${line}\n`),
    });
  } catch (e) {
    throw new CliError(`${file}: ${(e as Error).message}`);
  }
  const drops = Object.entries(result.drops).filter(([, n]) => n > 0);
  io.stdout(
    `replayed ${result.fed} peer packets (${result.skipped} from the other side skipped); ` +
      `the stack sent ${result.emitted.length}; drops: ${drops.length ? drops.map(([k, n]) => `${k}=${n}`).join(" ") : "none"}\n`,
  );
  return EXIT_OK;
}

async function runUp(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseUpArgs(argv, io.env);
  const dir = args.stateDir ?? resolveStateDir(io.env, io.home());
  const keys = loadOrCreateKeys(dir);
  const log = createLogger(args.options.logLevel, { format: args.options.logFormat });
  if (keys.created.length > 0) log.info(`created ${keys.created.join(" and ")} in ${dir}`);
  for (const f of keys.looseFiles) log.warn(`${f} is readable by other users; chmod 600 it`);
  const endpoint = peerEndpointFor(args.options.bind, args.publicEndpoint, io.interfaces());
  if (args.peerCommand) {
    const { runPeerCommand } = await import("./enroll.ts");
    await runPeerCommand(args.peerCommand, args, keys, endpoint, {
      stdout: io.stdout,
      env: io.env,
      info: (m) => log.info(m),
    });
    return EXIT_OK;
  }
  const enrolled = listPeers(dir);
  for (const f of loosePeerFiles(enrolled)) log.warn(`${f} is readable by other users; chmod 600 it`);
  if (enrolled.length > 0)
    log.info(`serving ${enrolled.length} enrolled peer(s): ${enrolled.map((p) => p.name).join(", ")}`);
  // The config holds the peer's private key: print it when it is new or asked for, not on every start.
  if (keys.created.length > 0 || args.printConfigOnly || args.showConfig) {
    io.stdout(renderPeerConfig(keys, args.options, endpoint));
  } else {
    log.info(`peer keys kept in ${dir}; "wgslirpy up --print-config-only" prints the peer's config`);
  }
  if (args.printConfigOnly) return EXIT_OK;
  return await serve(upGatewayOptions(args, keys, enrolled), log);
}

/** Start the gateway and run until it ends or SIGINT/SIGTERM (a second signal exits at once). */
async function serve(options: GatewayOptions, log: Logger): Promise<number> {
  const { startGateway } = await import("../index.ts");
  if (options.mode === "wireguard" && !options.uapi) options.uapi = resolveUapi(options.uapiChoice, process.env);
  const ac = new AbortController();
  const onSignal = () => {
    if (ac.signal.aborted) process.exit(130);
    log.info("shutting down");
    ac.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    // A StartupError (nothing left open) propagates to runCli: one line, exit 2.
    const handle = await startGateway(options, { signal: ac.signal, log });
    ac.signal.addEventListener("abort", () => void handle.close(), { once: true });
    await handle.closed;
    return EXIT_OK;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
