/**
 * The command tree, defined with citty (meta, args, subCommands) and dispatched by citty's
 * runCommand. citty is the one source of the tree: --help (help.ts) and --version read these
 * definitions. What citty does not do is kept ours: each command's `run` hands `rawArgs` to the
 * strict parser (parse.ts, against the flag tables the `args` are generated from), and help is
 * rendered plain and wrapped instead of by citty's renderUsage (colour escapes when piped, no
 * wrapping).
 */
import { type ArgsDef, type CommandDef, type CommandMeta, defineCommand, runCommand } from "citty";
import { VERSION } from "../version.ts";
import { type FlagSpec, KEYTOOL_FLAGS, MAIN_FLAGS, REPLAY_FLAGS, STATUS_FLAGS, UP_FLAGS } from "./flags.ts";
import { type CommandHelp, renderHelp } from "./help.ts";

/** citty's meta plus what our help shows and citty's has no field for. */
export interface ProgramMeta extends CommandMeta {
  name: string;
  description: string;
  /** What follows the command's name on the usage line, e.g. "[OPTIONS] FILE". */
  usage: string;
  /** The paragraph heading the command's own --help (`description` is its line under Commands). */
  about?: string;
}

type Positional = { name: string; description: string };

/** citty `args` from a flag table (and the positional arguments, named as help shows them). */
export function cittyArgs(table: readonly FlagSpec[], positionals: readonly Positional[] = []): ArgsDef {
  const args: ArgsDef = {};
  for (const f of table) {
    const alias = [f.short, f.alias].filter((a): a is string => a !== undefined);
    const description = f.repeatable ? `${f.description} (repeatable)` : f.description;
    args[f.long] = f.takesValue
      ? { type: "string", alias, description, valueHint: f.valueHint, default: f.defaultText }
      : { type: "boolean", alias, description };
  }
  // Not required for citty: parse.ts checks the count and says what is missing in its own words.
  for (const p of positionals) args[p.name] = { type: "positional", description: p.description, required: false };
  return args;
}

/** The help text's model of a citty command: flags back from its `args` (one-letter aliases are short options). */
export async function commandHelp(cmd: CommandDef, parentName?: string): Promise<CommandHelp> {
  const meta = (await resolve(cmd.meta)) as ProgramMeta;
  const args = (await resolve(cmd.args)) ?? {};
  const flags: FlagSpec[] = [];
  const positionals: Positional[] = [];
  for (const [long, a] of Object.entries(args)) {
    if (a.type === "positional") {
      positionals.push({ name: long, description: a.description ?? "" });
      continue;
    }
    const aliases = "alias" in a ? [a.alias ?? []].flat() : [];
    flags.push({
      long,
      short: aliases.find((n) => n.length === 1),
      alias: aliases.find((n) => n.length > 1),
      takesValue: a.type === "string" || a.type === "enum",
      valueHint: a.valueHint,
      description: a.description ?? "",
      defaultText: a.default === undefined ? undefined : String(a.default),
    });
  }
  const commands: { name: string; description: string }[] = [];
  for (const [name, sub] of Object.entries((await resolve(cmd.subCommands)) ?? {})) {
    const subMeta = await resolve((await resolve(sub))?.meta);
    if (!subMeta?.hidden) commands.push({ name, description: subMeta?.description ?? "" });
  }
  const about = meta.about ?? meta.description;
  return {
    name: parentName ? `${parentName} ${meta.name}` : meta.name,
    description: meta.version ? `${about} (${meta.name} ${meta.version})` : about,
    usage: meta.usage,
    flags,
    commands,
    positionals,
  };
}

async function resolve<T>(value: T | Promise<T> | (() => T) | (() => Promise<T>) | undefined): Promise<T | undefined> {
  return typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;
}

export type SubcommandName = "up" | "status" | "genkey" | "pubkey" | "replay";

/** What each command does with its (strictly parsed by the action itself) arguments; resolves to the exit status. */
export type ProgramActions = Record<"main" | SubcommandName, (rawArgs: string[]) => Promise<number>>;

export interface ProgramIo {
  stdout: (text: string) => void;
  /** The width help wraps to. */
  helpWidth: () => number;
}

/** Whether one of `names` appears among the options (before `--`). */
export function wantsSwitch(argv: readonly string[], names: readonly string[]): boolean {
  for (const a of argv) {
    if (a === "--") return false;
    if (names.includes(a)) return true;
  }
  return false;
}

const ROOT_META: ProgramMeta = {
  name: "wgslirpy",
  version: VERSION,
  description: "Expose internet access without root using WireGuard",
  usage: "[OPTIONS]  |  wgslirpy COMMAND [OPTIONS]",
};

// `args` are functions: citty's parser appends camelCase spellings to the alias arrays it is
// given, and help must show only the spellings parse.ts accepts.
const SUBCOMMANDS: Record<SubcommandName, { meta: ProgramMeta; args: () => ArgsDef }> = {
  up: {
    meta: {
      name: "up",
      description: "quick start: keep keys in the state directory, print the peer's config, serve",
      about:
        "Quick start: keep a gateway and a peer key pair in the state directory, print the peer's wg-quick " +
        "config when the keys are created (or with --print-config-only), and serve.",
      usage: "[OPTIONS]",
    },
    args: () => cittyArgs(UP_FLAGS),
  },
  status: {
    meta: {
      name: "status",
      description: "a running gateway's peers, endpoints, handshakes and transfer",
      about:
        "Ask a running gateway (its UAPI socket) for its peers: endpoints, latest handshake, transfer. `wg show NAME` works too.",
      usage: "[--name NAME | --uapi PATH]",
    },
    args: () => cittyArgs(STATUS_FLAGS),
  },
  genkey: {
    meta: {
      name: "genkey",
      description: "print a new private key (like wg genkey)",
      about: "Print a new private key (like wg genkey).",
      usage: "",
    },
    args: () => cittyArgs(KEYTOOL_FLAGS),
  },
  pubkey: {
    meta: {
      name: "pubkey",
      description: "read a private key on stdin, print its public key (like wg pubkey)",
      about: "Read a private key on stdin, print its public key (like wg pubkey).",
      usage: "< private.key",
    },
    args: () => cittyArgs(KEYTOOL_FLAGS),
  },
  replay: {
    meta: {
      name: "replay",
      description: "feed the peer-side packets of a pcap through the netstack",
      about: "Feed the peer-side packets of a pcap capture through the netstack and print what it does.",
      usage: "[OPTIONS] FILE",
    },
    args: () =>
      cittyArgs(REPLAY_FLAGS, [{ name: "FILE", description: "a pcap file (LINKTYPE_RAW, e.g. written by --pcap)" }]),
  },
};

const isHelp = (args: readonly string[]) => wantsSwitch(args, ["--help", "-h"]);

/** The citty command tree whose commands run `actions` (--help and --version answered here). */
export function defineProgram(actions: ProgramActions, io: ProgramIo): { root: CommandDef; status: () => number } {
  let status = 0;
  const help = async (cmd: CommandDef, parent?: string) =>
    io.stdout(renderHelp(await commandHelp(cmd, parent), io.helpWidth()));
  const subCommands: Record<string, CommandDef> = {};
  for (const [name, def] of Object.entries(SUBCOMMANDS) as [SubcommandName, (typeof SUBCOMMANDS)[SubcommandName]][]) {
    const cmd: CommandDef = defineCommand({
      ...def,
      async run({ rawArgs }) {
        if (isHelp(rawArgs)) await help(cmd, ROOT_META.name);
        else status = await actions[name](rawArgs);
      },
    });
    subCommands[name] = cmd;
  }
  const root: CommandDef = defineCommand({
    meta: ROOT_META,
    args: () => cittyArgs(MAIN_FLAGS),
    subCommands,
    async run({ rawArgs }) {
      // citty runs the parent's `run` after a subcommand's too; the gateway runs only when no
      // subcommand was named (runProgram marks that with a leading "--").
      if (rawArgs[0] !== "--") return;
      const args = rawArgs.slice(1);
      if (isHelp(args)) await help(root);
      else if (wantsSwitch(args, ["--version"])) io.stdout(`${ROOT_META.name} ${ROOT_META.version}\n`);
      else status = await actions.main(args);
    },
  });
  return { root, status: () => status };
}

/**
 * Run the program on `argv` through citty; resolves to the exit status of the action that ran
 * (0 for --help and --version). Errors from the actions propagate.
 */
export async function runProgram(argv: readonly string[], actions: ProgramActions, io: ProgramIo): Promise<number> {
  const program = defineProgram(actions, io);
  // A subcommand is named by the first argument only. citty would look past options for the
  // first positional (`wgslirpy --help up`, `wgslirpy -k KEY stray`) and take it for a command;
  // a leading "--" stops its search, so anything else goes to the main command, parsed strictly.
  const first = argv[0];
  const named = first !== undefined && Object.hasOwn(SUBCOMMANDS, first);
  await runCommand(program.root, { rawArgs: named ? [...argv] : ["--", ...argv] });
  return program.status();
}
