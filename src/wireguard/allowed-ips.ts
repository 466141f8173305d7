/**
 * Cryptokey routing table (wireguard-go allowedips.go): a path-compressed binary trie per address
 * family mapping prefixes to a value (the peer). Lookups walk at most one node per distinct
 * prefix length on the path, read the address straight out of a packet, and allocate nothing.
 *
 * A prefix belongs to at most one value: inserting it again moves it (as `wg set … allowed-ips`
 * does when two peers claim the same range).
 */
import { masked, type Prefix, prefixMatches } from "../wire/prefix.ts";

class TrieNode<T> {
  child0: TrieNode<T> | undefined = undefined;
  child1: TrieNode<T> | undefined = undefined;
  constructor(
    /** The prefix's address bytes, zero past `cidr` bits. */
    readonly key: Uint8Array,
    readonly cidr: number,
    public value: T | undefined,
  ) {}
}

/** Bit `i` (0 = most significant) of `buf` starting at `off`. */
function bitAt(buf: Uint8Array, off: number, i: number): number {
  return ((buf[off + (i >>> 3)] as number) >>> (7 - (i & 7))) & 1;
}

function commonBits(a: Uint8Array, b: Uint8Array, max: number): number {
  let n = 0;
  while (n < max && bitAt(a, 0, n) === bitAt(b, 0, n)) n++;
  return n;
}

class FamilyTrie<T> {
  root: TrieNode<T> | undefined;
  size = 0;
  constructor(readonly bits: number) {}

  lookup(buf: Uint8Array, off: number): T | undefined {
    let node = this.root;
    let found: T | undefined;
    while (node && prefixMatches(node.key, buf, off, node.cidr)) {
      if (node.value !== undefined) found = node.value;
      if (node.cidr === this.bits) break;
      node = bitAt(buf, off, node.cidr) === 0 ? node.child0 : node.child1;
    }
    return found;
  }

  insert(addr: Uint8Array, cidr: number, value: T): void {
    const key = masked(addr, cidr);
    let parent: TrieNode<T> | undefined;
    let node = this.root;
    while (node && node.cidr <= cidr && prefixMatches(node.key, key, 0, node.cidr)) {
      if (node.cidr === cidr) {
        if (node.value === undefined) this.size++;
        node.value = value;
        return;
      }
      parent = node;
      node = bitAt(key, 0, node.cidr) === 0 ? node.child0 : node.child1;
    }
    this.size++;
    const fresh = new TrieNode<T>(key, cidr, value);
    let replacement = fresh;
    if (node) {
      const common = commonBits(node.key, key, Math.min(node.cidr, cidr));
      if (common === cidr) {
        // The new prefix contains the existing subtree.
        this.setChild(fresh, bitAt(node.key, 0, cidr), node);
      } else {
        const fork = new TrieNode<T>(masked(key, common), common, undefined);
        this.setChild(fork, bitAt(node.key, 0, common), node);
        this.setChild(fork, bitAt(key, 0, common), fresh);
        replacement = fork;
      }
    }
    if (!parent) this.root = replacement;
    else this.setChild(parent, bitAt(key, 0, parent.cidr), replacement);
  }

  private setChild(node: TrieNode<T>, bit: number, child: TrieNode<T>): void {
    if (bit === 0) node.child0 = child;
    else node.child1 = child;
  }

  /** Remove one exact prefix (only if `owner` holds it, when given); true when it was removed. */
  remove(addr: Uint8Array, cidr: number, owner?: T): boolean {
    const key = masked(addr, cidr);
    let node = this.root;
    while (node && node.cidr <= cidr && prefixMatches(node.key, key, 0, node.cidr)) {
      if (node.cidr === cidr) {
        if (node.value === undefined || (owner !== undefined && node.value !== owner)) return false;
        node.value = undefined;
        this.size--;
        this.root = this.prune(this.root);
        return true;
      }
      node = bitAt(key, 0, node.cidr) === 0 ? node.child0 : node.child1;
    }
    return false;
  }

  /** Remove every prefix whose value satisfies `match`; returns how many. */
  removeWhere(match: (value: T) => boolean): number {
    let removed = 0;
    this.walk(this.root, (n) => {
      if (n.value !== undefined && match(n.value)) {
        n.value = undefined;
        removed++;
      }
    });
    if (removed > 0) {
      this.size -= removed;
      this.root = this.prune(this.root);
    }
    return removed;
  }

  /** Drop valueless nodes with fewer than two children (post-order). */
  private prune(node: TrieNode<T> | undefined): TrieNode<T> | undefined {
    if (!node) return undefined;
    node.child0 = this.prune(node.child0);
    node.child1 = this.prune(node.child1);
    if (node.value !== undefined) return node;
    if (node.child0 && node.child1) return node;
    return node.child0 ?? node.child1;
  }

  walk(node: TrieNode<T> | undefined, visit: (n: TrieNode<T>) => void): void {
    if (!node) return;
    visit(node);
    this.walk(node.child0, visit);
    this.walk(node.child1, visit);
  }
}

export class AllowedIps<T> {
  private readonly v4 = new FamilyTrie<T>(32);
  private readonly v6 = new FamilyTrie<T>(128);

  get size(): number {
    return this.v4.size + this.v6.size;
  }

  insert(prefix: Prefix, value: T): void {
    (prefix.address.length === 4 ? this.v4 : this.v6).insert(prefix.address, prefix.cidr, value);
  }

  /** Remove exactly this prefix (only if `owner` holds it, when given). */
  remove(prefix: Prefix, owner?: T): boolean {
    return (prefix.address.length === 4 ? this.v4 : this.v6).remove(prefix.address, prefix.cidr, owner);
  }

  removeValue(value: T): number {
    return this.v4.removeWhere((v) => v === value) + this.v6.removeWhere((v) => v === value);
  }

  /** Longest-prefix match of a 4- or 16-byte address. */
  lookup(address: Uint8Array): T | undefined {
    return address.length === 4 ? this.v4.lookup(address, 0) : this.v6.lookup(address, 0);
  }

  /** The value owning an IP packet's destination (`which` = "destination") or source address. */
  lookupPacket(packet: Uint8Array, which: "source" | "destination"): T | undefined {
    const version = (packet[0] as number) >>> 4;
    if (version === 4 && packet.length >= 20) return this.v4.lookup(packet, which === "source" ? 12 : 16);
    if (version === 6 && packet.length >= 40) return this.v6.lookup(packet, which === "source" ? 8 : 24);
    return undefined;
  }

  /** Every prefix owned by `value`, IPv4 first, each family in trie order. */
  prefixesOf(value: T): Prefix[] {
    const out: Prefix[] = [];
    for (const trie of [this.v4, this.v6]) {
      trie.walk(trie.root, (n) => {
        if (n.value === value) out.push({ address: n.key, cidr: n.cidr });
      });
    }
    return out;
  }

  /** Every (prefix, value) pair. */
  entries(): { prefix: Prefix; value: T }[] {
    const out: { prefix: Prefix; value: T }[] = [];
    for (const trie of [this.v4, this.v6]) {
      trie.walk(trie.root, (n) => {
        if (n.value !== undefined) out.push({ prefix: { address: n.key, cidr: n.cidr }, value: n.value });
      });
    }
    return out;
  }
}
