/**
 * wg-quick accepts `Endpoint = HOST:PORT`; the gateway resolves such names once, at startup,
 * through the host's resolver (/etc/hosts, nsswitch), before the options are built. An IPv4
 * address is preferred: it works with both the default 0.0.0.0 bind and a dual-stack [::] one.
 */
import { lookup } from "node:dns/promises";
import type { GatewayOptions } from "../options.ts";
import { parseConfigFile } from "./config-file.ts";
import { MAIN_FLAGS } from "./flags.ts";
import { CliError, FlagReader, type ParseContext, parseFlags, parseGatewayArgs, readKeyFile } from "./parse.ts";

/** Resolve one host name to one IP literal; rejects (with an error `code`) when it does not resolve. */
export type LookupHost = (name: string) => Promise<string>;

export const systemLookupHost: LookupHost = async (name) => {
  const all = await lookup(name, { all: true });
  const chosen = all.find((a) => a.family === 4) ?? all[0];
  if (!chosen) throw Object.assign(new Error(`no address for ${name}`), { code: "ENOTFOUND" });
  return chosen.address;
};

/** parseGatewayArgs, with the --config file's Endpoint host names resolved first. */
export async function parseGatewayArgsResolvingHosts(
  argv: readonly string[],
  ctx: ParseContext,
  lookupHost: LookupHost = systemLookupHost,
): Promise<GatewayOptions> {
  const r = new FlagReader(parseFlags(argv, MAIN_FLAGS), MAIN_FLAGS);
  const file = r.string("config");
  if (file === undefined) return parseGatewayArgs(argv, ctx);
  const hosts = new Map<string, string>();
  for (const h of parseConfigFile(readKeyFile(file, r.name("config"), ctx), file).endpointHosts) {
    if (hosts.has(h.host)) continue;
    try {
      hosts.set(h.host, await lookupHost(h.host));
    } catch (e) {
      const why = (e as { code?: unknown }).code ?? (e instanceof Error ? e.message : String(e));
      throw new CliError(`${file}:${h.line}: Endpoint host "${h.host}" does not resolve (${String(why)})`);
    }
  }
  return parseGatewayArgs(argv, { ...ctx, hosts });
}
