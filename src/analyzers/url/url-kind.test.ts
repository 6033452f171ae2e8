import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Finding } from "../../core/index.js";
import { type UrlOptions, urlKind } from "./index.js";

function codes(value: unknown, options: UrlOptions = {}): string[] {
  const out: Finding[] = [];
  urlKind.compile(urlKind.options.parse(options))(value, "url", out);
  return [...new Set(out.map((f) => f.code))].sort();
}

describe("url: bypass attempts with the default options", () => {
  it.each([
    // IPv4 in every encoding
    ["http://127.0.0.1/", "url.private"],
    ["http://2130706433/", "url.private"],
    ["http://0x7f000001/", "url.private"],
    ["http://0x7f.1/", "url.private"],
    ["http://0177.0.0.1/", "url.private"],
    ["http://017700000001/", "url.private"],
    ["http://127.1/", "url.private"],
    ["http://127.0.1/", "url.private"],
    ["http://0/", "url.private"],
    ["http://127.0.0.1./", "url.private"],
    ["http://0010.0.0.1/", "url.private"], // octal 8.0.0.1 for browsers, 10.0.0.1 for others
    ["http://%31%32%37.0.0.1/", "url.private"],
    ["http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/", "url.private"],
    ["http://10.0.0.1/", "url.private"],
    ["http://172.16.5.4/", "url.private"],
    ["http://192.168.1.1/", "url.private"],
    ["http://100.64.0.1/", "url.private"],
    ["http://224.0.0.1/", "url.private"],
    ["http://255.255.255.255/", "url.private"],
    ["http://240.0.0.1/", "url.private"],
    // IPv6 and IPv4 embedded in it
    ["http://[::1]/", "url.private"],
    ["http://[::]/", "url.private"],
    ["http://[0000::1]/", "url.private"],
    ["http://[::ffff:127.0.0.1]/", "url.private"],
    ["http://[::ffff:7f00:1]/", "url.private"],
    ["http://[::127.0.0.1]/", "url.private"],
    ["http://[64:ff9b::10.0.0.1]/", "url.private"],
    ["http://[64:ff9b:1::1]/", "url.private"],
    ["http://[2002:c0a8:101::1]/", "url.private"],
    ["http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "url.private"],
    ["http://[fc00::1]/", "url.private"],
    ["http://[fd12:3456::1]/", "url.private"],
    ["http://[fe80::1]/", "url.private"],
    ["http://[ff02::1]/", "url.private"],
    ["http://[fe80::1%25eth0]/", "url.unparsable"],
    // metadata
    ["http://169.254.169.254/latest/meta-data/", "url.metadata"],
    ["http://2852039166/", "url.metadata"],
    ["http://0xa9.0xfe.0xa9.0xfe/", "url.metadata"],
    ["http://0251.0376.0251.0376/", "url.metadata"],
    ["http://[::ffff:a9fe:a9fe]/", "url.metadata"],
    ["http://[fd00:ec2::254]/", "url.metadata"],
    ["http://100.100.100.200/latest/meta-data/", "url.metadata"],
    ["http://192.0.0.192/latest/", "url.metadata"],
    ["http://168.63.129.16/machine", "url.metadata"],
    ["http://metadata.google.internal/computeMetadata/v1/", "url.metadata"],
    ["http://METADATA.google.internal./", "url.metadata"],
    ["http://metadata/computeMetadata/v1/", "url.metadata"],
    ["http://instance-data/latest/", "url.metadata"],
    // names that only reach local things
    ["http://localhost/", "url.private"],
    ["http://LOCALHOST./", "url.private"],
    ["http://loc\u200balhost/", "url.private"],
    ["http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/", "url.private"],
    ["http://admin.localhost/", "url.private"],
    ["http://intranet/", "url.private"],
    ["http://db.internal/", "url.private"],
    ["http://printer.local/", "url.private"],
    ["http://kubernetes.default.svc/", "url.private"],
    ["http://localtest.me/", "url.private"],
    ["http://anything.lvh.me/", "url.private"],
    ["http://127.0.0.1.nip.io/", "url.private"],
    ["http://app.10.0.0.1.nip.io/", "url.private"],
    ["http://10-0-0-1.sslip.io/", "url.private"],
    ["http://magic-7f000001.nip.io/", "url.private"],
    ["http://--1.sslip.io/", "url.private"],
    ["http://169.254.169.254.nip.io/", "url.metadata"],
    ["http://app.nip.io/", "url.private"],
    ["http://7f000001.c0a80001.rbndr.us/", "url.private"],
    ["http://make-1.2.3.4-rebind-169.254-169.254-rr.1u.ms/", "url.private"],
    ["http://ip-10-0-0-1.example.com/", "url.private"],
    ["http://192.168.0.1.attacker.example/", "url.private"],
    // parser confusion
    ["http://169.254.169.254\\@evil.com/", "url.unparsable"],
    ["http://127.1.1.1:80\\@127.2.2.2:80/", "url.unparsable"],
    ["http:evil.com", "url.unparsable"],
    ["http:\\\\evil.com", "url.unparsable"],
    ["http:/evil.com", "url.unparsable"],
    ["http://127.0.0.1\t/", "url.unparsable"],
    ["http://exa\nmple.com/", "url.unparsable"],
    ["http://1.1.1.1 &@2.2.2.2# @3.3.3.3/", "url.unparsable"],
    ["http://425.510.425.510/", "url.unparsable"],
    ["http://0x41414141A9FEA9FE/", "url.unparsable"],
    ["http://7147006462/", "url.unparsable"],
    ["http://exa%00mple.com/", "url.unparsable"],
    ["not a url", "url.unparsable"],
    ["", "url.unparsable"],
    // schemes and userinfo
    ["file:///etc/passwd", "url.scheme"],
    ["gopher://127.0.0.1:6379/_INFO", "url.scheme"],
    ["dict://127.0.0.1:11211/stat", "url.scheme"],
    ["jar:http://127.0.0.1!/", "url.scheme"],
    ["javascript:alert(1)", "url.scheme"],
    ["http://evil.com@169.254.169.254/", "url.credentials"],
    ["https://user:secret@example.com/", "url.credentials"],
    ["http://@example.com/", "url.credentials"],
  ])("%s -> %s", (url, code) => {
    expect(codes(url)).toContain(code);
  });

  it("checks both hosts when clients disagree", () => {
    expect(codes("http://169.254.169.254\\@evil.com/")).toEqual(
      expect.arrayContaining(["url.unparsable", "url.metadata", "url.credentials"]),
    );
    expect(codes("http://evil.com\\@10.0.0.1/")).toEqual(
      expect.arrayContaining(["url.unparsable", "url.private"]),
    );
  });

  it("reads opaque hosts of other schemes like an HTTP client would", () => {
    expect(codes("gopher://0x7f.1/_x", { schemes: ["gopher"] })).toEqual(["url.private"]);
    expect(codes("ssh://%31%32%37.0.0.1/", { schemes: ["ssh"] })).toEqual(["url.private"]);
  });

  it.each([42, null, undefined, { href: "http://127.0.0.1" }, ["http://example.com"], "x".repeat(70_000)])(
    "refuses the non-URL %#",
    (value) => {
      expect(codes(value)).toEqual(["url.unparsable"]);
    },
  );
});

describe("url: benign look-alikes pass", () => {
  it.each([
    "https://example.com/",
    "https://10.example.com/",
    "https://example.com/127.0.0.1",
    "https://example.com/?next=http://127.0.0.1/",
    "https://example.com/#@127.0.0.1",
    "https://medium.com/@someone/post",
    "https://8.8.8.8/",
    "http://134744072/", // 8.8.8.8 as one number
    "http://0x08080808/",
    "https://1.1.1.1/dns-query",
    "https://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",
    "http://[64:ff9b::8.8.8.8]/",
    "http://[2002:808:808::1]/",
    "https://8.8.8.8.nip.io/",
    "https://8-8-8-8.sslip.io/",
    "https://nip.io/",
    "https://localhost.example.com/",
    "https://metadata.example.com/",
    "https://internal.example.com/",
    "https://my-local-shop.com/",
    "https://192-168-shop.com/",
    "https://v1.2.3.example.com/",
    "https://xn--bcher-kva.de/",
    "https://bücher.de/",
    "HTTPS://EXAMPLE.COM/Path",
    "https://example.com./",
    "  https://example.com/  ",
    "https://example.com:8443/",
    "https://api.github.com/repos/a/b?q=%40x",
    "https://172.15.0.1/",
    "https://172.32.0.1/",
    "https://100.63.255.255/",
    "https://100.128.0.1/",
    "https://169.253.0.1/",
    "https://11.0.0.1/",
  ])("%s", (url) => {
    expect(codes(url)).toEqual([]);
  });
});

describe("url: options", () => {
  const github = { hosts: ["github.com", "*.github.com"], schemes: ["https"] };

  it.each([
    ["https://github.com/", []],
    ["https://api.github.com/", []],
    ["https://a.b.github.com/", []],
    ["https://GitHub.com./", []],
    ["https://evilgithub.com/", ["url.host_not_allowed"]],
    ["https://github.com.evil.com/", ["url.host_not_allowed"]],
    ["https://github.com@evil.com/", ["url.credentials", "url.host_not_allowed"]],
    ["http://github.com/", ["url.scheme"]],
  ])("hosts [github.com, *.github.com]: %s", (url, expected) => {
    expect(codes(url, github)).toEqual(expected);
  });

  it("`*.domain` matches subdomains, not the apex", () => {
    expect(codes("https://github.com/", { hosts: ["*.github.com"] })).toEqual(["url.host_not_allowed"]);
    expect(codes("https://api.github.com/", { hosts: ["*.github.com"] })).toEqual([]);
  });

  it("canonicalises patterns like hosts (IDN, case, IPv4 forms)", () => {
    expect(codes("https://xn--bcher-kva.de/", { hosts: ["BÜCHER.de"] })).toEqual([]);
    expect(codes("http://8.8.8.8/", { hosts: ["134744072"] })).toEqual([]);
    expect(codes("http://[2606:4700::1]/", { hosts: ["2606:4700:0::1"] })).toEqual([]);
  });

  it("deny_hosts wins and uses the same patterns", () => {
    const options = { deny_hosts: ["*.evil.com", "bad.example"] };
    expect(codes("https://x.evil.com/", options)).toEqual(["url.host_denied"]);
    expect(codes("https://BAD.example./", options)).toEqual(["url.host_denied"]);
    expect(codes("https://evil.com/", options)).toEqual([]);
    expect(codes("https://good.example/", options)).toEqual([]);
  });

  it("ports compare the effective port", () => {
    const options = { ports: [443] };
    expect(codes("https://example.com/", options)).toEqual([]);
    expect(codes("https://example.com:443/", options)).toEqual([]);
    expect(codes("https://example.com:8443/", options)).toEqual(["url.port"]);
    expect(codes("http://example.com/", options)).toEqual(["url.port"]);
  });

  it("private: allow permits internal targets but never metadata", () => {
    const options = { private: "allow" as const };
    expect(codes("http://10.0.0.1/", options)).toEqual([]);
    expect(codes("http://localhost:8080/", options)).toEqual([]);
    expect(codes("http://169.254.169.254/", options)).toEqual(["url.metadata"]);
    expect(codes("http://metadata.google.internal/", options)).toEqual(["url.metadata"]);
  });

  it.each([
    ["http://[::169.254.169.254]/", "ipv4-compatible, dotted"],
    ["http://[::a9fe:a9fe]/", "ipv4-compatible, hex"],
    ["http://[::a9fe:aa02]/", "ipv4-compatible ECS credentials address"],
    ["http://[64:ff9b:1::a9fe:a9fe]/", "local-use NAT64, /96"],
    ["http://[64:ff9b:1:a9fe:a9:fe00::]/", "local-use NAT64, /48 embedding"],
    ["http://[64:ff9b:1:0:a9:fea9:fe00:0]/", "local-use NAT64, /64 embedding"],
  ])("private: allow still refuses metadata embedded in %s (%s)", (url) => {
    expect(codes(url, { private: "allow" })).toEqual(["url.metadata"]);
  });

  it.each(["http://[::a00:1]/", "http://[64:ff9b:1::a00:1]/", "http://[64:ff9b:1::7f00:1]/"])(
    "private: allow lets other embedded private addresses through: %s",
    (url) => {
      expect(codes(url, { private: "allow" })).toEqual([]);
      expect(codes(url)).toEqual(["url.private"]);
    },
  );

  it("schemes accept a trailing colon and any case", () => {
    expect(codes("wss://example.com/", { schemes: ["WSS:"] })).toEqual([]);
  });

  it.each([
    [{ hosts: ["exa*mple.com"] }, /hosts: `exa\*mple.com`/],
    [{ hosts: ["*github.com"] }, /hosts: `\*github.com`/],
    [{ deny_hosts: ["a/b"] }, /deny_hosts: `a\/b`/],
  ])("rejects bad patterns at compile time %#", (options, message) => {
    expect(() => urlKind.compile(urlKind.options.parse(options))).toThrow(message);
  });

  it("rejects unknown option keys and bad values", () => {
    expect(urlKind.options.safeParse({ host: ["x"] }).success).toBe(false);
    expect(urlKind.options.safeParse({ private: "maybe" }).success).toBe(false);
    expect(urlKind.options.safeParse({ ports: [70000] }).success).toBe(false);
    expect(urlKind.options.safeParse({ schemes: ["ht tp"] }).success).toBe(false);
  });
});

describe("url: robustness", () => {
  const check = urlKind.compile({});
  const checkAllowlist = urlKind.compile(urlKind.options.parse({ hosts: ["*.example.com"], ports: [443] }));

  it("never throws, and every finding has a code, message and arg", () => {
    const urlish = fc
      .tuple(
        fc.constantFrom("http://", "https://", "gopher://", "http:", "", "http://[", "HTTP://"),
        fc.string({ unit: "binary", maxLength: 40 }),
        fc.constantFrom("", "/", "@", "\\", ":80", "]", "%", "%00", "%c0%ae"),
        fc.string({ unit: "grapheme", maxLength: 20 }),
      )
      .map((parts) => parts.join(""));
    fc.assert(
      fc.property(fc.oneof(urlish, fc.anything()), (value) => {
        for (const run of [check, checkAllowlist]) {
          const out: Finding[] = [];
          run(value, "url", out);
          const bad = out.filter(
            (f) => !/^url\.[a-z_]+$/.test(f.code) || f.arg !== "url" || f.message === "",
          );
          if (bad.length > 0) throw new Error(`malformed findings ${JSON.stringify(bad)}`);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("pushes nothing for a good URL", () => {
    const out: Finding[] = [];
    check("https://example.com/path?q=1", "url", out);
    expect(out).toEqual([]);
  });
});

describe("url: resolve (DNS, the async half)", () => {
  const resolveCheck = urlKind.compileAsync!(urlKind.options.parse({ resolve: true }))!;

  async function resolveFindings(value: unknown): Promise<Finding[]> {
    const out: Finding[] = [];
    await resolveCheck(value, "url", out);
    return out;
  }

  it("is absent unless resolve: true", () => {
    expect(urlKind.compileAsync!(urlKind.options.parse({}))).toBeUndefined();
  });

  it("flags a name whose answer is loopback", async () => {
    const [finding] = await resolveFindings("http://localhost:8080/");
    expect(finding.code).toBe("url.private");
    expect(finding.message).toMatch(/resolves to (127\.0\.0\.1|::1)/);
  });

  it("fails closed when the name does not resolve", async () => {
    expect((await resolveFindings("https://does-not-exist.invalid/")).map((f) => f.code)).toEqual([
      "url.unresolvable",
    ]);
  });

  it("leaves literals and unparsable input to the synchronous half", async () => {
    expect(await resolveFindings("http://127.0.0.1/")).toEqual([]);
    expect(await resolveFindings("http://[::1]/")).toEqual([]);
    expect(await resolveFindings("not a url")).toEqual([]);
    expect(await resolveFindings(42)).toEqual([]);
  });

  it("with private: allow only metadata answers count", async () => {
    const allowCheck = urlKind.compileAsync!(urlKind.options.parse({ resolve: true, private: "allow" }))!;
    const out: Finding[] = [];
    await allowCheck("http://localhost/", "url", out);
    expect(out).toEqual([]);
  });
});
