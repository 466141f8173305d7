import { type ConsolaInstance, createConsola } from "consola";

/**
 * Logging via consola. Levels follow the seed tool: error, warn, info, debug, trace.
 * The level comes from --log-level or WGSLIRPY_LOG (the CLI decides); the library default is info.
 */
export type LogLevelName = "silent" | "error" | "warn" | "info" | "debug" | "trace";

export const LOG_LEVELS: Record<LogLevelName, number> = {
  silent: -999,
  error: 0,
  warn: 1,
  info: 3,
  debug: 4,
  trace: 5,
};

export type Logger = ConsolaInstance;

export function createLogger(level: LogLevelName = "info", tag = "wgslirpy"): Logger {
  return createConsola({ level: LOG_LEVELS[level], defaults: { tag }, stderr: process.stderr, stdout: process.stderr });
}

/** A logger that discards everything, for unit tests. */
export const silentLogger: Logger = createConsola({ level: LOG_LEVELS.silent });
