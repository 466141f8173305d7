import { lookup } from "node:dns/promises";

/**
 * How the DNS server resolves names: through the host's own resolver, like the seed's
 * tokio::net::lookup_host (getaddrinfo: /etc/hosts, nsswitch, resolv.conf). Injectable for tests.
 */
export interface Resolver {
  /**
   * The addresses (IP literals) of `name` in `family`. Resolves [] when the name exists but has no
   * address of that family; rejects with `code: "ENOTFOUND"` when the name does not exist at all;
   * any other rejection means the lookup failed.
   */
  lookup(name: string, family: 4 | 6): Promise<string[]>;
}

export class SystemResolver implements Resolver {
  async lookup(name: string, family: 4 | 6): Promise<string[]> {
    try {
      return await addressesOf(name, family);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      // getaddrinfo says ENOTFOUND also when only the other family exists (e.g. AAAA of an
      // IPv4-only /etc/hosts name). Answering NXDOMAIN then would make clients cache the name as
      // missing for every type, so check the other family before saying so.
      const other = await addressesOf(name, family === 4 ? 6 : 4).catch(() => null);
      if (other && other.length > 0) return [];
      throw e;
    }
  }
}

async function addressesOf(name: string, family: 4 | 6): Promise<string[]> {
  const found = await lookup(name, { all: true, family });
  return found.filter((a) => a.family === family).map((a) => a.address);
}

export function isNotFound(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === "ENOTFOUND" || code === "DNS_ENOTFOUND";
}
