/**
 * --help text rendered from the citty command definitions (program.ts, whose `args` come from the
 * flag tables): plain text (no colour escapes, so it reads the same piped, in a file or with
 * NO_COLOR), wrapped to the terminal width (80 columns when not a TTY).
 */
import type { FlagSpec } from "./flags.ts";

export interface CommandHelp {
  /** "wgslirpy" or "wgslirpy up". */
  name: string;
  description: string;
  /** What follows the name on the usage line, e.g. "[OPTIONS] FILE". */
  usage: string;
  flags: readonly FlagSpec[];
  /** Subcommands listed under COMMANDS (main command only). */
  commands?: readonly { name: string; description: string }[];
  /** Positional arguments listed under ARGUMENTS. */
  positionals?: readonly { name: string; description: string }[];
}

/** Help is never wider than this, even on a wide terminal (long lines are hard to read). */
export const MAX_HELP_WIDTH = 100;
export const PIPED_HELP_WIDTH = 80;
const MIN_HELP_WIDTH = 40;

/** The width to wrap to: the terminal's columns (capped), else 80. */
export function helpWidth(columns: number | undefined): number {
  if (!columns || !Number.isFinite(columns) || columns <= 0) return PIPED_HELP_WIDTH;
  return Math.max(MIN_HELP_WIDTH, Math.min(MAX_HELP_WIDTH, Math.floor(columns)));
}

/** Greedy word wrap of `text` into lines of at most `width` characters (long words stay whole). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line === "") line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** `-b, --bind-ip-port <IP:PORT>` (also `--dry-run` for an alias). */
export function flagSynopsis(f: FlagSpec): string {
  const names = [f.short ? `-${f.short}` : undefined, `--${f.long}`, f.alias ? `--${f.alias}` : undefined].filter(
    (n): n is string => n !== undefined,
  );
  return f.takesValue ? `${names.join(", ")} <${f.valueHint ?? "value"}>` : names.join(", ");
}

function flagText(f: FlagSpec): string {
  let text = f.description;
  if (f.repeatable) text += " (repeatable)";
  if (f.defaultText !== undefined) text += ` [default: ${f.defaultText}]`;
  return text;
}

/** Two columns: the term, then its description wrapped beside it (or below, when the term is long). */
function table(rows: readonly { term: string; text: string }[], width: number): string[] {
  const indent = 2;
  const longest = Math.max(0, ...rows.map((r) => r.term.length));
  const column = Math.min(longest, Math.floor(width * 0.4)) + indent + 2;
  const out: string[] = [];
  for (const { term, text } of rows) {
    const body = wrap(text, Math.max(20, width - column));
    if (indent + term.length + 2 <= column) {
      out.push(`${" ".repeat(indent)}${term.padEnd(column - indent)}${body[0] ?? ""}`.trimEnd());
      for (const l of body.slice(1)) out.push(`${" ".repeat(column)}${l}`);
    } else {
      out.push(`${" ".repeat(indent)}${term}`);
      for (const l of body) out.push(`${" ".repeat(column)}${l}`);
    }
  }
  return out;
}

export function renderHelp(cmd: CommandHelp, width: number): string {
  const out: string[] = [...wrap(cmd.description, width), "", `Usage: ${cmd.name} ${cmd.usage}`.trimEnd()];
  if (cmd.commands?.length) {
    out.push(
      "",
      "Commands:",
      ...table(
        cmd.commands.map((c) => ({ term: c.name, text: c.description })),
        width,
      ),
    );
  }
  if (cmd.positionals?.length) {
    out.push(
      "",
      "Arguments:",
      ...table(
        cmd.positionals.map((p) => ({ term: p.name, text: p.description })),
        width,
      ),
    );
  }
  out.push(
    "",
    "Options:",
    ...table(
      cmd.flags.map((f) => ({ term: flagSynopsis(f), text: flagText(f) })),
      width,
    ),
  );
  if (cmd.commands?.length) out.push("", `Run "${cmd.name} COMMAND --help" for a command's options.`);
  return `${out.join("\n")}\n`;
}
