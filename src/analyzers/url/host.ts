import ipaddr from "ipaddr.js";
import { type AddressRisk, classifyAddress, parseAddress } from "./address.js";

/**
 * The host as the WHATWG URL parser of a special scheme sees it: lowercased, percent-decoded,
 * IDNA-mapped (fullwidth digits and dots, enclosed alphanumerics, zero-width characters), IPv4
 * numbers in every form made dotted decimal, IPv6 compressed in brackets, trailing dots removed.
 * Null when it is not a valid host or would change meaning inside a URL. Never throws.
 */
export function canonicalHost(raw: string): string | null {
  if (raw === "" || /[\\/?#@\s]/.test(raw)) return null;
  if (raw.includes(":") && raw.charCodeAt(0) !== 91 /* [ */) return null;
  try {
    return stripTrailingDots(new URL(`http://${raw}/`).hostname);
  } catch {
    return null;
  }
}

export function stripTrailingDots(host: string): string {
  let end = host.length;
  while (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--;
  return end === host.length ? host : host.slice(0, end);
}

/** Names of cloud metadata services (exact). */
const METADATA_NAMES = new Set([
  "metadata",
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
  "metadata.tencentyun.com",
  "api.metadata.cloud.ibm.com",
  "rancher-metadata",
]);

/**
 * Suffixes that only a local resolver answers: RFC 6761/8375 special-use names, ICANN's
 * private-use `.internal`, Kubernetes' `.svc`, and names commonly configured on LANs (`.lan`,
 * `.corp`, `.home`) or for local development (`.test`, e.g. Laravel Valet).
 */
const PRIVATE_SUFFIXES = new Set([
  "localhost",
  "local",
  "internal",
  "localdomain",
  "home.arpa",
  "lan",
  "intranet",
  "corp",
  "home",
  "private",
  "svc",
  "test",
]);

/** Public domains whose every name resolves to loopback (a static list; `resolve: true` is the real check). */
const LOOPBACK_DOMAINS = new Set([
  "localtest.me",
  "lvh.me",
  "vcap.me",
  "fuf.me",
  "ulh.us",
  "127-0-0-1.org.uk",
  "ratchetlocal.com",
  "smackaho.st",
  "42foo.com",
  "beweb.com",
  "yoogle.com",
  "ortkut.com",
  "feacebook.com",
  "lacolhost.com",
  "localho.st",
  "spoofed.burpcollaborator.net",
]);

/** Wildcard DNS services: `<anything>.<ip>.nip.io` resolves to `<ip>` (dotted, dashed or hex). */
const WILDCARD_IP_DOMAINS = new Set(["nip.io", "sslip.io", "xip.io", "traefik.me", "backname.io"]);

/** Services built to answer differently on each query (DNS rebinding). */
const REBINDING_DOMAINS = new Set(["rbndr.us", "1u.ms", "rebind.it", "rebind.network"]);

/** Four numbers 0-999 separated by `.` or `-`, found at every offset (lookahead: overlapping windows). */
const EMBEDDED_QUAD = /(?<![0-9])(?=(\d{1,3})[.-](\d{1,3})[.-](\d{1,3})[.-](\d{1,3})(?![0-9]))/g;
const HAS_QUAD = /\d[.-]\d{1,3}[.-]\d{1,3}[.-]\d/;

/**
 * Classifies a canonical host name that is not an IP literal: metadata names, local-only
 * names (single labels, `localhost`, private suffixes), loopback-only domains, rebinding
 * services, and names that embed a non-public IPv4 address (`10.0.0.1.nip.io`,
 * `ip-10-0-0-1.example.com`). Null when nothing is known against it.
 */
export function classifyName(host: string): AddressRisk | null {
  if (METADATA_NAMES.has(host)) return { kind: "metadata", reason: "cloud metadata name" };
  // Walk label-aligned suffixes from the TLD up: `io`, `nip.io`, `10.0.0.1.nip.io`.
  let start = host.lastIndexOf(".") + 1;
  for (;;) {
    const suffix = start === 0 ? host : host.slice(start);
    if (PRIVATE_SUFFIXES.has(suffix)) return { kind: "private", reason: `local-only name (.${suffix})` };
    if (LOOPBACK_DOMAINS.has(suffix)) return { kind: "private", reason: `${suffix} resolves to loopback` };
    if (REBINDING_DOMAINS.has(suffix))
      return { kind: "private", reason: `${suffix} is a dns rebinding service` };
    if (WILDCARD_IP_DOMAINS.has(suffix)) return start === 0 ? null : wildcardRisk(host, suffix);
    if (start === 0) break;
    start = start >= 2 ? host.lastIndexOf(".", start - 2) + 1 : 0;
  }
  if (!host.includes("."))
    return { kind: "private", reason: "single-label name, resolved by local search domains" };
  return HAS_QUAD.test(host) ? embeddedRisk(host, false) : null;
}

/** A subdomain of a wildcard-IP service passes only when it spells addresses and all are public. */
function wildcardRisk(host: string, service: string): AddressRisk | null {
  const prefix = host.slice(0, host.length - service.length - 1);
  const risk = embeddedRisk(prefix, true);
  if (risk) return risk;
  return spellsAddress(prefix)
    ? null
    : { kind: "private", reason: `${service} name without a public address` };
}

function spellsAddress(prefix: string): boolean {
  return HAS_QUAD.test(prefix) || /(?:^|[.-])[0-9a-f]{8}(?:$|[.-])/.test(prefix) || prefix.includes("--");
}

/** Every IPv4 (and for wildcard services, hex IPv4 and dashed IPv6) spelled inside a name. */
function embeddedRisk(name: string, wildcard: boolean): AddressRisk | null {
  for (const match of name.matchAll(EMBEDDED_QUAD)) {
    const octets = [Number(match[1]), Number(match[2]), Number(match[3]), Number(match[4])];
    if (octets.some((octet) => octet > 255)) continue;
    const risk = classifyAddress(new ipaddr.IPv4(octets));
    if (risk) return named(risk, octets.join("."));
  }
  if (!wildcard) return null;
  for (const part of name.split(/[.-]/)) {
    if (/^[0-9a-f]{8}$/.test(part)) {
      const n = Number.parseInt(part, 16);
      const risk = classifyAddress(new ipaddr.IPv4([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]));
      if (risk) return named(risk, part);
    }
  }
  for (const label of name.split(".")) {
    // sslip.io spells IPv6 with dashes for colons: `--1` is ::1, `fe80--1` is fe80::1.
    if (!label.includes("--")) continue;
    const address = parseAddress(label.replaceAll("-", ":"));
    const risk = address && classifyAddress(address);
    if (risk) return named(risk, label);
  }
  return null;
}

function named(risk: AddressRisk, spelled: string): AddressRisk {
  return { kind: risk.kind, reason: `name embeds ${spelled}, ${risk.reason}` };
}

/** Tests a canonical host against `hosts` / `deny_hosts` patterns. */
export type HostMatcher = (host: string) => boolean;

/**
 * Compiles host patterns: an exact host (`api.github.com`, `127.0.0.1`, `[::1]`), `*.domain`
 * for any depth of subdomain but NOT the apex (list `github.com` too to allow it), or `*` for
 * any host. Patterns are canonicalised like URL hosts (case, IDNA, IPv4 forms). Throws with a
 * readable message for anything else.
 */
export function compileHostPatterns(patterns: readonly string[], key: string): HostMatcher {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  let any = false;
  for (const pattern of patterns) {
    if (pattern === "*") {
      any = true;
      continue;
    }
    const wildcard = pattern.startsWith("*.");
    const body = wildcard ? pattern.slice(2) : pattern;
    const host = body.includes("*")
      ? null
      : canonicalHost(body.includes(":") && !body.startsWith("[") ? `[${body}]` : body);
    if (host === null) {
      throw new Error(`${key}: \`${pattern}\` is not a host name, an IP address, \`*.domain\` or \`*\``);
    }
    if (wildcard) suffixes.push(`.${host}`);
    else exact.add(host);
  }
  if (any) return () => true;
  return (host) => {
    if (exact.has(host)) return true;
    for (const suffix of suffixes) if (host.endsWith(suffix)) return true;
    return false;
  };
}
