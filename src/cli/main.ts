/**
 * The command-line program: argument handling, --help (rendered by citty from the flag tables),
 * the subcommands and the gateway's lifetime. Exit status: 0 done, 1 runtime failure (e.g. the
 * UDP port is taken), 2 bad command line or configuration (one `wgslirpy: error: ...` line).
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { homedir, networkInterfaces } from "node:os";
import { type ArgsDef, defineCommand, renderUsage } from "citty";
import type { GatewayOptions } from "../options.ts";
import { loadOrCreateKeys, resolveStateDir, StateError } from "../state/keys.ts";
import { formatEndpoint } from "../util/endpoint.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { generatePrivateKey, keyToBase64, publicKeyOf } from "../wireguard/keys.ts";
import { type FlagSpec, KEYTOOL_FLAGS, MAIN_FLAGS, REPLAY_FLAGS, UP_FLAGS } from "./flags.ts";
import { CliError, FlagReader, parseFlags, parseGatewayArgs, parseKeyFor, type ReadTextFile } from "./parse.ts";
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
}

export const processIo: CliIo = {
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  readFile: (p) => readFileSync(p, "utf8"),
  readStdin: () => Bun.stdin.text(),
  home: () => homedir(),
  interfaces: () => networkInterfaces() as InterfaceList,
};

const DESCRIPTION = "Expose internet access without root using WireGuard";

function cittyArgs(table: readonly FlagSpec[]): ArgsDef {
  const args: ArgsDef = {};
  for (const f of table) {
    const alias = [f.short, f.alias].filter((a): a is string => a !== undefined);
    args[f.long] = f.takesValue
      ? {
          type: "string",
          alias,
          description: f.repeatable ? `${f.description} (repeatable)` : f.description,
          valueHint: f.valueHint,
          default: f.defaultText,
        }
      : { type: "boolean", alias, description: f.description };
  }
  return args;
}

const upCommand = defineCommand({
  meta: {
    name: "up",
    description: "quick start: keep keys in the state directory, print the peer's wg-quick config, serve",
  },
  args: cittyArgs(UP_FLAGS),
});
const genkeyCommand = defineCommand({
  meta: { name: "genkey", description: "print a new private key (like wg genkey)" },
  args: cittyArgs(KEYTOOL_FLAGS),
});
const pubkeyCommand = defineCommand({
  meta: { name: "pubkey", description: "read a private key on stdin, print its public key (like wg pubkey)" },
  args: cittyArgs(KEYTOOL_FLAGS),
});
const replayCommand = defineCommand({
  meta: {
    name: "replay",
    description: "feed the peer-side packets of a pcap through the netstack and print what it does",
  },
  args: cittyArgs(REPLAY_FLAGS),
});
const mainCommand = defineCommand({
  meta: { name: "wgslirpy", description: DESCRIPTION },
  args: cittyArgs(MAIN_FLAGS),
  subCommands: { up: upCommand, genkey: genkeyCommand, pubkey: pubkeyCommand, replay: replayCommand },
});

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === "--") return false;
    if (a === "--help" || a === "-h") return true;
  }
  return false;
}

/** Run the program; resolves to the exit status. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const sub = argv[0];
  try {
    if (sub === "replay") {
      const rest = argv.slice(1);
      if (wantsHelp(rest)) {
        io.stdout(`${await renderUsage(replayCommand, mainCommand)}\n`);
        return EXIT_OK;
      }
      return await runReplay(rest, io);
    }
    if (sub === "up" || sub === "genkey" || sub === "pubkey") {
      const rest = argv.slice(1);
      const cmd = sub === "up" ? upCommand : sub === "genkey" ? genkeyCommand : pubkeyCommand;
      if (wantsHelp(rest)) {
        io.stdout(`${await renderUsage(cmd, mainCommand)}\n`);
        return EXIT_OK;
      }
      if (sub === "up") return await runUp(rest, io);
      const parsed = parseFlags(rest, KEYTOOL_FLAGS);
      if (parsed.positionals.length > 0) {
        throw new CliError(`unexpected argument ${JSON.stringify(parsed.positionals[0])} for "${sub}"`);
      }
      if (sub === "genkey") {
        io.stdout(`${keyToBase64(generatePrivateKey())}\n`);
      } else {
        const key = parseKeyFor(await io.readStdin(), "private key on stdin", true);
        io.stdout(`${keyToBase64(publicKeyOf(key))}\n`);
      }
      return EXIT_OK;
    }
    if (wantsHelp(argv)) {
      io.stdout(`${await renderUsage(mainCommand)}\n`);
      return EXIT_OK;
    }
    const options = parseGatewayArgs(argv, io);
    const log = createLogger(options.logLevel);
    if (options.mode === "gue") log.warn("GUE/FOU mode: packets travel unencrypted and unauthenticated");
    return await serve(options, log, io);
  } catch (e) {
    if (e instanceof CliError || e instanceof StateError) {
      io.stderr(`wgslirpy: error: ${oneLine(e.message)}\n`);
      return EXIT_USAGE;
    }
    io.stderr(`wgslirpy: error: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
    return EXIT_FAILURE;
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
      dns: r.endpoint("dns"),
      mtu: r.int("mtu", 576, 65535, 1420),
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
  const log = createLogger(args.options.logLevel);
  if (keys.created.length > 0) log.info(`created ${keys.created.join(" and ")} in ${dir}`);
  for (const f of keys.looseFiles) log.warn(`${f} is readable by other users; chmod 600 it`);
  const endpoint = peerEndpointFor(args.options.bind, args.publicEndpoint, io.interfaces());
  io.stdout(renderPeerConfig(keys, args.options, endpoint));
  if (args.printConfigOnly) return EXIT_OK;
  return await serve(upGatewayOptions(args, keys), log, io);
}

/** Start the gateway and run until it ends or SIGINT/SIGTERM (a second signal exits at once). */
async function serve(options: GatewayOptions, log: Logger, io: CliIo): Promise<number> {
  const { startGateway } = await import("../index.ts");
  const ac = new AbortController();
  const onSignal = () => {
    if (ac.signal.aborted) process.exit(130);
    log.info("shutting down");
    ac.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    let handle: Awaited<ReturnType<typeof startGateway>>;
    try {
      handle = await startGateway(options, { signal: ac.signal, log });
    } catch (e) {
      io.stderr(`wgslirpy: error: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
      return EXIT_FAILURE;
    }
    log.info(`${options.mode === "gue" ? "GUE" : "WireGuard"} gateway listening on ${formatEndpoint(handle.local)}`);
    ac.signal.addEventListener("abort", () => void handle.close(), { once: true });
    await handle.closed;
    return EXIT_OK;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
