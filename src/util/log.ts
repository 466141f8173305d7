import { type ConsolaInstance, type ConsolaReporter, createConsola, type LogObject } from "consola";

/**
 * Logging via consola. Levels follow the seed tool: error, warn, info, debug, trace.
 * The level comes from --log-level or WGSLIRPY_LOG (the CLI decides); the library default is info.
 *
 * Formats: on a terminal, consola's own (colours, no timestamps: the operator watches it live);
 * elsewhere (a file, journald, a pipe) one plain line per message with an ISO timestamp; with
 * `json` one JSON object per line for log collectors.
 */
export type LogLevelName = "silent" | "error" | "warn" | "info" | "debug" | "trace";
export type LogFormat = "text" | "json";
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

export const LOG_LEVELS: Record<LogLevelName, number> = {
  silent: -999,
  error: 0,
  warn: 1,
  info: 3,
  debug: 4,
  trace: 5,
};

export type Logger = ConsolaInstance;

export interface LoggerOptions {
  tag?: string;
  format?: LogFormat;
  /** Where lines go (default stderr). */
  write?: (line: string) => void;
  /** Whether the output is a terminal (default: process.stderr.isTTY). */
  tty?: boolean;
}

/** consola's type names -> the level names used in lines ("success", "start"... read as info). */
function levelName(o: LogObject): string {
  if (o.level <= 0) return "error";
  if (o.level === 1) return "warn";
  if (o.level >= 5) return "trace";
  if (o.level === 4) return "debug";
  return "info";
}

function argText(a: unknown): string {
  if (a instanceof Error) return a.message;
  if (typeof a === "string") return a;
  try {
    return JSON.stringify(a) ?? String(a);
  } catch {
    return String(a);
  }
}

export function lineReporter(format: LogFormat, write: (line: string) => void): ConsolaReporter {
  return {
    log(o: LogObject) {
      const msg = o.args.map(argText).join(" ");
      const time = (o.date ?? new Date()).toISOString();
      if (format === "json") {
        write(`${JSON.stringify({ time, level: levelName(o), msg, ...(o.tag ? { tag: o.tag } : {}) })}\n`);
      } else {
        write(`${time} ${levelName(o).toUpperCase().padEnd(5)} ${msg}\n`);
      }
    },
  };
}

export function createLogger(level: LogLevelName = "info", opts: LoggerOptions | string = {}): Logger {
  const o: LoggerOptions = typeof opts === "string" ? { tag: opts } : opts;
  const tag = o.tag ?? "wgslirpy";
  const format = o.format ?? "text";
  const tty = o.tty ?? process.stderr.isTTY === true;
  const write = o.write ?? ((line: string) => void process.stderr.write(line));
  if (format === "text" && tty && !o.write) {
    return createConsola({
      level: LOG_LEVELS[level],
      defaults: { tag },
      stderr: process.stderr,
      stdout: process.stderr,
    });
  }
  return createConsola({ level: LOG_LEVELS[level], defaults: { tag }, reporters: [lineReporter(format, write)] });
}

/** A logger that discards everything, for unit tests. */
export const silentLogger: Logger = createConsola({ level: LOG_LEVELS.silent });
