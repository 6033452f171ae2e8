import ipaddr from "ipaddr.js";

/** Why an address must not be reached; `null` from {@link classifyAddress} means ordinary public. */
export interface AddressRisk {
  /** `metadata`: a cloud metadata endpoint (always refused); `private`: not on the public internet. */
  kind: "private" | "metadata";
  /** Short lowercase reason, e.g. `loopback address`, `ipv4-mapped 10.0.0.1 (private address)`. */
  reason: string;
}

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** Cloud metadata and host-agent endpoints reachable from inside a VM or container. */
const METADATA_V4 = new Set([
  "169.254.169.254", // AWS, GCP, Azure, DigitalOcean, OpenStack, Oracle (v2)
  "169.254.170.2", // AWS ECS task metadata and credentials
  "169.254.0.23", // Tencent Cloud
  "100.100.100.200", // Alibaba Cloud
  "192.0.0.192", // Oracle Cloud (classic)
  "168.63.129.16", // Azure WireServer: a public address only answered from inside Azure
]);
const METADATA_V6 = new Set(
  [
    "fd00:ec2::254", // AWS IMDS over IPv6
    "fd20:ce::254", // GCP metadata over IPv6
  ].map((text) => ipaddr.IPv6.parse(text).toNormalizedString()),
);

const IPV4_DOTTED = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/**
 * Parses a canonical address as the WHATWG URL parser prints hosts (`127.0.0.1`, `[::1]`) or as
 * DNS answers come back (`::1`). Returns null for anything else; never throws.
 */
export function parseAddress(text: string): Address | null {
  if (text.charCodeAt(0) === 91 /* [ */) {
    if (text.charCodeAt(text.length - 1) !== 93) return null;
    text = text.slice(1, -1);
  }
  if (IPV4_DOTTED.test(text))
    return ipaddr.IPv4.isValidFourPartDecimal(text) ? ipaddr.IPv4.parse(text) : null;
  if (text.includes(":") && ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text);
  return null;
}

/** An IPv4 address from two 16-bit IPv6 groups (the embedded address of mapped, NAT64, 6to4 forms). */
export function v4FromGroups(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 255, low >> 8, low & 255]);
}

/**
 * Classifies an address: null for public unicast, otherwise why it must not be reached. IPv6
 * forms that embed an IPv4 address (IPv4-mapped and -translated, NAT64 64:ff9b::/96, 6to4,
 * Teredo) are judged by the embedded address, so `::ffff:127.0.0.1` is loopback.
 */
export function classifyAddress(address: Address): AddressRisk | null {
  return address.kind() === "ipv4" ? classifyV4(address as ipaddr.IPv4) : classifyV6(address as ipaddr.IPv6);
}

function classifyV4(address: ipaddr.IPv4): AddressRisk | null {
  if (METADATA_V4.has(address.toString())) return { kind: "metadata", reason: "cloud metadata address" };
  const range = address.range();
  return range === "unicast" ? null : { kind: "private", reason: rangeName(range) };
}

function classifyV6(address: ipaddr.IPv6): AddressRisk | null {
  if (METADATA_V6.has(address.toNormalizedString()))
    return { kind: "metadata", reason: "cloud metadata address" };
  const p = address.parts;
  const range = address.range();
  switch (range) {
    case "unicast":
      // ::a.b.c.d (IPv4-compatible, deprecated by RFC 4291) is missing from ipaddr.js's table.
      if (p[0] === 0 && p[1] === 0 && p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0) {
        // Still judged by the embedded address, so `private: allow` cannot reach metadata this way.
        const inner = embedded("ipv4-compatible", v4FromGroups(p[6], p[7]));
        if (inner?.kind === "metadata") return inner;
        return { kind: "private", reason: "ipv4-compatible ipv6 address (deprecated)" };
      }
      return null;
    case "ipv4Mapped":
    case "rfc6145":
      return embedded("ipv4-mapped", v4FromGroups(p[6], p[7]));
    case "rfc6052":
      // 64:ff9b:1::/48 is local-use NAT64 (RFC 8215): a private network by definition.
      if (p[2] !== 0) return localNat64(p);
      return embedded("nat64", v4FromGroups(p[6], p[7]));
    case "6to4":
      return embedded("6to4", v4FromGroups(p[1], p[2]));
    case "teredo":
      // Teredo carries the server address plainly and the client address inverted.
      return (
        embedded("teredo server", v4FromGroups(p[2], p[3])) ??
        embedded("teredo client", v4FromGroups(~p[6] & 0xffff, ~p[7] & 0xffff))
      );
    default:
      return { kind: "private", reason: rangeName(range) };
  }
}

/** RFC 6052 positions (byte indexes) of the IPv4 address for NAT64 prefix lengths 48, 56, 64 and 96. */
const NAT64_EMBEDDINGS = [
  [6, 7, 9, 10],
  [7, 9, 10, 11],
  [9, 10, 11, 12],
  [12, 13, 14, 15],
] as const;

/**
 * Local-use NAT64 (64:ff9b:1::/48, RFC 8215) is private, but the operator picks the prefix
 * length, so every RFC 6052 position is checked for a metadata address: with `private: allow`
 * the translator would otherwise carry the call to 169.254.169.254.
 */
function localNat64(p: number[]): AddressRisk {
  for (const at of NAT64_EMBEDDINGS) {
    const bytes = at.map((i) => (i % 2 === 0 ? p[i >> 1]! >> 8 : p[i >> 1]! & 255));
    const inner = embedded("local-use nat64", new ipaddr.IPv4(bytes));
    if (inner?.kind === "metadata") return inner;
  }
  return { kind: "private", reason: "local-use nat64 address" };
}

function embedded(form: string, inner: ipaddr.IPv4): AddressRisk | null {
  const risk = classifyV4(inner);
  return risk && { kind: risk.kind, reason: `${form} ${inner.toString()}, ${risk.reason}` };
}

const RANGE_NAMES: Record<string, string> = {
  carrierGradeNat: "carrier-grade nat",
  linkLocal: "link-local",
  uniqueLocal: "unique-local",
  deprecatedSiteLocal: "site-local",
  rfc6052: "nat64",
};

function rangeName(range: string): string {
  return `${RANGE_NAMES[range] ?? range.toLowerCase()} address`;
}
