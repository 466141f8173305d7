/**
 * Where the UAPI socket goes. `--uapi PATH` exactly; else NAME.sock (`--name NAME`, default
 * "wgslirpy") in /var/run/wireguard when this process may write there (where `wg` looks), else in
 * $XDG_RUNTIME_DIR/wireguard; `--no-uapi` serves none.
 */
import { accessSync, constants, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type { UapiOptions } from "../uapi/attach.ts";
import { CliError, type FlagReader } from "./parse.ts";

export const DEFAULT_UAPI_NAME = "wgslirpy";
export const UAPI_DIR = "/var/run/wireguard";

/** What the flags ask for: nothing (the default), off, a path or a name. */
export type UapiChoice = { disabled: true } | { path: string } | { name: string };

export function parseUapiFlags(r: FlagReader): UapiChoice | undefined {
  const given = ["uapi", "name", "no-uapi"].filter((f) => r.has(f));
  if (given.length > 1) {
    throw new CliError(`${given.map((f) => r.name(f)).join(" and ")} cannot be combined`);
  }
  if (r.switch("no-uapi")) return { disabled: true };
  const path = r.string("uapi");
  if (path !== undefined) {
    if (path === "") throw new CliError(`invalid ${r.name("uapi")}: empty path`);
    return { path };
  }
  const name = r.string("name");
  if (name !== undefined) {
    // wg and the kernel allow interface names of 1..15 characters.
    if (!/^[A-Za-z0-9_=+.-]{1,15}$/.test(name)) {
      throw new CliError(`invalid ${r.name("name")} "${name}": 1 to 15 of A-Z a-z 0-9 _ = + . -`);
    }
    return { name };
  }
  return undefined;
}

function writableDir(dir: string): boolean {
  // The directory itself, or (to create it) its nearest existing parent.
  let d = dir;
  while (!existsSync(d)) {
    const up = dirname(d);
    if (up === d) return false;
    d = up;
  }
  try {
    accessSync(d, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The socket to serve, or undefined when there is none to serve. */
export function resolveUapi(
  choice: UapiChoice | undefined,
  env: Record<string, string | undefined>,
  canWrite: (dir: string) => boolean = writableDir,
): UapiOptions | undefined {
  if (choice && "disabled" in choice) return undefined;
  if (choice && "path" in choice) return { path: choice.path, required: true };
  const name = choice && "name" in choice ? choice.name : DEFAULT_UAPI_NAME;
  const runtime = env.XDG_RUNTIME_DIR;
  const dir = canWrite(UAPI_DIR) ? UAPI_DIR : runtime ? join(runtime, "wireguard") : undefined;
  if (!dir) {
    if (choice)
      throw new CliError(`no directory for the UAPI socket: ${UAPI_DIR} is not writable and XDG_RUNTIME_DIR is unset`);
    return undefined;
  }
  return { path: join(dir, `${name}.sock`), required: choice !== undefined };
}
