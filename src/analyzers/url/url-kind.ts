import { promises as dns } from "node:dns";
import { z } from "zod";
import type { Finding } from "../../core/index.js";
import type { ArgCheck, AsyncArgCheck, ConstraintKind } from "../kind.js";
import { preview } from "../kind.js";
import { type AddressRisk, classifyAddress, parseAddress } from "./address.js";
import {
  canonicalHost,
  classifyName,
  compileHostPatterns,
  type HostMatcher,
  stripTrailingDots,
} from "./host.js";

const urlOptions = z
  .object({
    /** Allowed schemes, default `[http, https]`. */
    schemes: z
      .array(z.string().regex(/^[A-Za-z][A-Za-z0-9+.-]*:?$/, "a URL scheme such as `https`"))
      .min(1)
      .optional(),
    /** Allowed hosts: exact names or addresses, `*.domain` (subdomains only), `*`. */
    hosts: z.array(z.string().min(1)).optional(),
    /** Refused hosts, same patterns as `hosts`. */
    deny_hosts: z.array(z.string().min(1)).optional(),
    /** Allowed ports; a URL without one uses its scheme's default. */
    ports: z.array(z.number().int().min(0).max(65535)).min(1).optional(),
    /** `block` (default) refuses loopback, private, link-local and other non-public targets. */
    private: z.enum(["block", "allow"]).optional(),
    /** Also resolve the name (DNS) and refuse if any answer is non-public; runs in `enforce`. */
    resolve: z.boolean().optional(),
  })
  .strict();

/** Options of the `url` constraint kind. */
export type UrlOptions = z.infer<typeof urlOptions>;

const MAX_URL_LENGTH = 65_536;
const DNS_TIMEOUT_MS = 5_000;
const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443, ftp: 21 };
const SPECIAL_SCHEMES = new Set(["http", "https", "ws", "wss", "ftp", "file"]);
/** Controls and spaces inside a URL: browsers drop tabs and newlines, other clients do not. */
const UNSAFE_CHARS = /[\u0000-\u0020\u007f]/;
/** `scheme://authority` as RFC 3986 splits it: the authority ends at `/`, `?` or `#`, not `\`. */
const AUTHORITY = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/;
const DOTTED_WITH_ZEROS = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/;

interface CompiledUrl {
  schemes: ReadonlySet<string>;
  allow: HostMatcher | null;
  deny: HostMatcher | null;
  ports: ReadonlySet<number> | null;
  blockPrivate: boolean;
}

/**
 * `url: { schemes, hosts, deny_hosts, ports, private, resolve }`: the argument is a URL to a
 * permitted, public destination. The URL is parsed as a browser does (WHATWG) and its authority
 * again as an RFC 3986 client does; when they name different hosts the URL is refused
 * (`url.unparsable`) and both hosts are checked. Userinfo (`user:pass@`) is always a finding
 * (`url.credentials`): an agent has no business putting credentials in a URL, and `@` is the
 * classic way to make a URL look like it goes elsewhere. Cloud metadata endpoints
 * (`url.metadata`) are refused even with `private: allow`.
 */
export const urlKind: ConstraintKind<UrlOptions> = {
  kind: "url",
  summary: "a URL with an allowed scheme, host and port that does not reach private or metadata addresses",
  options: urlOptions,
  compile(options) {
    const compiled = compileUrl(options);
    const check: ArgCheck = (value, arg, out) => checkUrl(value, arg, out, compiled);
    return check;
  },
  compileAsync(options) {
    if (!options.resolve) return undefined;
    const blockPrivate = options.private !== "allow";
    const check: AsyncArgCheck = async (value, arg, out) => {
      const host = typeof value === "string" ? resolvableHost(value) : null;
      if (host === null) return; // literals and unparsable URLs are the synchronous half's job
      let answers: Array<{ address: string }>;
      try {
        answers = await withTimeout(dns.lookup(host, { all: true, verbatim: true }), DNS_TIMEOUT_MS);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? "error";
        out.push({
          code: "url.unresolvable",
          arg,
          message: `\`${show(host)}\` did not resolve (${code})`,
        });
        return;
      }
      for (const { address } of answers) {
        const parsed = parseAddress(address);
        const risk: AddressRisk | null = parsed
          ? classifyAddress(parsed)
          : { kind: "private", reason: "unknown" };
        if (risk && (risk.kind === "metadata" || blockPrivate)) {
          const message = `\`${show(host)}\` resolves to ${address}: ${risk.reason}`;
          out.push({ code: `url.${risk.kind}`, arg, message });
        }
      }
    };
    return check;
  },
};

function compileUrl(options: UrlOptions): CompiledUrl {
  const schemes = (options.schemes ?? ["http", "https"]).map((s) => s.toLowerCase().replace(/:$/, ""));
  return {
    schemes: new Set(schemes),
    allow: options.hosts ? compileHostPatterns(options.hosts, "hosts") : null,
    deny: options.deny_hosts ? compileHostPatterns(options.deny_hosts, "deny_hosts") : null,
    ports: options.ports ? new Set(options.ports) : null,
    blockPrivate: options.private !== "allow",
  };
}

function checkUrl(value: unknown, arg: string, out: Finding[], c: CompiledUrl): void {
  if (typeof value !== "string") {
    out.push({ code: "url.unparsable", arg, message: `expected a URL string, got \`${show(value)}\`` });
    return;
  }
  if (value.length > MAX_URL_LENGTH) {
    out.push({ code: "url.unparsable", arg, message: `URL is longer than ${MAX_URL_LENGTH} characters` });
    return;
  }
  const text = trimControls(value);
  if (UNSAFE_CHARS.test(text)) {
    out.push({
      code: "url.unparsable",
      arg,
      message: `\`${show(text)}\` contains spaces or control characters`,
    });
    return;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    out.push({ code: "url.unparsable", arg, message: `\`${show(text)}\` is not a valid URL` });
    return;
  }
  const scheme = url.protocol.slice(0, -1);
  if (!c.schemes.has(scheme)) {
    out.push({
      code: "url.scheme",
      arg,
      message: `scheme \`${scheme}\` is not one of ${[...c.schemes].join(", ")}`,
    });
  }
  const special = SPECIAL_SCHEMES.has(scheme);
  const authority = AUTHORITY.exec(text)?.[1];
  if (authority === undefined && special && scheme !== "file") {
    // `http:evil.com`, `http:\\evil.com`: browsers repair these, other clients read a path.
    out.push({
      code: "url.unparsable",
      arg,
      message: `\`${show(text)}\` does not start with \`${scheme}://\``,
    });
    return;
  }
  if (url.username !== "" || url.password !== "" || authority?.includes("@")) {
    out.push({
      code: "url.credentials",
      arg,
      message: "URL carries userinfo (`user:password@`) before the host",
    });
  }
  // Opaque hosts of non-special schemes (gopher://0x7f.1) are read as a special scheme would.
  const host =
    url.hostname === "" ? "" : special ? stripTrailingDots(url.hostname) : canonicalHost(url.hostname);
  if (host === null) {
    out.push({
      code: "url.unparsable",
      arg,
      message: `host \`${show(url.hostname)}\` is not a valid host`,
    });
    return;
  }
  if (authority !== undefined) {
    const loose = looseHost(authority);
    if (loose !== url.hostname) {
      const canonical = loose.includes("\\") ? null : canonicalHost(loose);
      if (canonical !== host) {
        out.push({
          code: "url.unparsable",
          arg,
          message: `clients disagree on the host: \`${show(host, 40)}\` or \`${show(loose, 40)}\``,
        });
        if (canonical !== null) checkHost(canonical, arg, out, c);
      }
      if (c.blockPrivate) checkLeadingZeros(loose, arg, out);
    }
  }
  if (host === "") {
    if (c.allow) out.push({ code: "url.host_not_allowed", arg, message: "URL has no host" });
  } else {
    checkHost(host, arg, out, c);
  }
  if (c.ports) {
    const port = url.port !== "" ? Number(url.port) : DEFAULT_PORTS[scheme];
    if (port === undefined || !c.ports.has(port)) {
      out.push({
        code: "url.port",
        arg,
        message: `port ${port ?? "(none)"} is not one of ${[...c.ports].join(", ")}`,
      });
    }
  }
}

/** A preview of user text for a message, with controls and bidi overrides made visible. */
function show(value: unknown, max?: number): string {
  return preview(value, max).replace(
    /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g,
    (ch) => `\\u{${ch.charCodeAt(0).toString(16)}}`,
  );
}

/** Strips leading and trailing C0 controls and spaces, as the WHATWG parser does. */
function trimControls(value: string): string {
  const n = value.length;
  if (n === 0 || (value.charCodeAt(0) > 0x20 && value.charCodeAt(n - 1) > 0x20)) return value;
  let start = 0;
  let end = n;
  while (start < end && value.charCodeAt(start) <= 0x20) start++;
  while (end > start && value.charCodeAt(end - 1) <= 0x20) end--;
  return value.slice(start, end);
}

/** The host an RFC 3986 client takes from an authority: after the last `@`, before the port. */
function looseHost(authority: string): string {
  const hostPort = authority.slice(authority.lastIndexOf("@") + 1);
  if (hostPort.charCodeAt(0) === 91 /* [ */) {
    const close = hostPort.indexOf("]");
    return close < 0 ? hostPort : hostPort.slice(0, close + 1);
  }
  const colon = hostPort.indexOf(":");
  return colon < 0 ? hostPort : hostPort.slice(0, colon);
}

function checkHost(host: string, arg: string, out: Finding[], c: CompiledUrl): void {
  if (c.deny?.(host)) out.push({ code: "url.host_denied", arg, message: `host \`${show(host)}\` is denied` });
  if (c.allow && !c.allow(host)) {
    out.push({
      code: "url.host_not_allowed",
      arg,
      message: `host \`${show(host)}\` is not in the allowed hosts`,
    });
  }
  const address = parseAddress(host);
  const risk = address ? classifyAddress(address) : classifyName(host);
  if (risk && (risk.kind === "metadata" || c.blockPrivate)) {
    out.push({ code: `url.${risk.kind}`, arg, message: `host \`${show(host)}\`: ${risk.reason}` });
  }
}

/**
 * Browsers read `0010.0.0.1` as octal (8.0.0.1); clients that ignore leading zeros read
 * 10.0.0.1. Both readings must be public.
 */
function checkLeadingZeros(loose: string, arg: string, out: Finding[]): void {
  let text = loose;
  if (text.includes("%")) {
    try {
      text = decodeURIComponent(text);
    } catch {
      return; // the WHATWG parse already rejected or accepted it; nothing further to read
    }
  }
  const match = DOTTED_WITH_ZEROS.exec(stripTrailingDots(text.normalize("NFKC")));
  if (match === null || !match.slice(1).some((part) => part.length > 1 && part.startsWith("0"))) return;
  const octets = match.slice(1).map((part) => Number.parseInt(part, 10));
  if (octets.some((octet) => octet > 255)) return;
  const address = parseAddress(octets.join("."));
  const risk = address && classifyAddress(address);
  if (risk) {
    out.push({
      code: `url.${risk.kind}`,
      arg,
      message: `host \`${show(loose)}\` reads as ${octets.join(".")} when leading zeros are decimal: ${risk.reason}`,
    });
  }
}

/** The name `resolve: true` looks up, or null for IP literals and URLs the sync half refuses. */
function resolvableHost(value: string): string | null {
  const text = trimControls(value);
  if (text.length > MAX_URL_LENGTH || UNSAFE_CHARS.test(text)) return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.hostname === "") return null;
  const host = SPECIAL_SCHEMES.has(url.protocol.slice(0, -1))
    ? stripTrailingDots(url.hostname)
    : canonicalHost(url.hostname);
  return host === null || parseAddress(host) !== null ? null : host;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error("timed out"), { code: "ETIMEOUT" })), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
