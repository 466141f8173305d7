#!/usr/bin/env bun
/** wgslirpy command-line entry point (the logic lives in src/cli/). */
import { runCli } from "./cli/main.ts";

process.exitCode = await runCli(process.argv.slice(2));
