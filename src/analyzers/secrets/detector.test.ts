import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Finding } from "../../core/index.js";
import { base62ChecksumValid } from "./checksum.js";
import { base62Checksum, SECRET_TYPES, scanSecrets } from "./index.js";

function scan(text: string): Finding[] {
  const out: Finding[] = [];
  scanSecrets(text, "text", out);
  return out;
}
const codes = (text: string) => scan(text).map((f) => f.code);

// A made-up GitHub-format token with a correct checksum.
const random30 = "Xq7Lm2Pz9Rt4Vw8Ky1Nb6Hc3Jd5Fg0";
const githubToken = `ghp_${random30}${base62Checksum(random30)}`;
const jwt = [
  Buffer.from('{"alg":"RS256","typ":"JWT"}').toString("base64url"),
  Buffer.from('{"sub":"42","iat":1700000000}').toString("base64url"),
  "kq8Zr2Lm5Wt9Xp3Nd7Bv1Hc6Fg4Jy0Qa",
].join(".");

describe("scanSecrets", () => {
  it.each([
    ["secret.aws_key", "id AKIAZ7Q2M4N6P5R3T5V7 here"],
    ["secret.github_token", githubToken],
    ["secret.github_token", `"${githubToken}"`],
    ["secret.gitlab_token", "glpat-Zq8Lm2Pz9Rt4Vw8Ky1Nb"],
    ["secret.slack_token", "xoxb-123456789012-1234567890123-Zq8Lm2Pz9Rt4Vw8Ky1Nb6Hc3"],
    ["secret.stripe_key", "sk_live_Zq8Lm2Pz9Rt4Vw8Ky1Nb6Hc3"],
    ["secret.anthropic_key", `sk-ant-api03-${"Zq8Lm2Pz9Rt4".repeat(8)}AA`],
    ["secret.api_key", "sk-9f8e7d6c5b4a39281706f5e4d3c2b1a0"],
    ["secret.google_api_key", "AIzaSyZq8Lm2Pz9Rt4Vw8Ky1Nb6Hc3Jd5Fg0Q1w"],
    [
      "secret.sendgrid_key",
      `SG.${"Zq8Lm2Pz9Rt4Vw8Ky1Nb6H"}.${"Zq8Lm2Pz9Rt4Vw8Ky1Nb6Hc3Jd5Fg0Zq8Lm2Pz9Rt4V"}`,
    ],
    ["secret.jwt", `Authorization: ${jwt}`],
    [
      "secret.private_key",
      `-----BEGIN PRIVATE KEY-----\n${"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".repeat(3)}\n-----END PRIVATE KEY-----`,
    ],
    ["secret.connection_string", "mysql://root:Zq8Lm2Pz@db:3306/app"],
    ["secret.connection_string", "amqps://user:p4ss-w0rd!@mq.internal/vhost"],
    ["secret.password", "DB_PASSWORD=Zq8Lm2Pz9R"],
    ["secret.password", '"password": "c0rrect-h0rse!"'],
    ["secret.password", "dbPassword := 'Zq8L!m2Pz9'"],
    ["secret.generic", "apiKey: 'Zq8Lm2Pz9Rt4Vw8Ky1Nb6Hc3'"],
    ["secret.generic", "X-Api-Key=Zq8Lm2Pz9Rt4Vw8Ky1Nb6Hc3"],
    ["secret.bearer_token", "Authorization: Bearer Zq8Lm2Pz9Rt4Vw8Ky1Nb6Hc3Jd5"],
  ])("finds %s in %j", (code, text) => {
    expect(codes(text)).toContain(code);
  });

  it.each([
    ["git SHA", "commit 3f2a9c1d4e5b6a7980112233445566778899aabb"],
    ["SHA-256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["UUID", "550e8400-e29b-41d4-a716-446655440000"],
    ["base64 of text", Buffer.from("hello world, this is only ordinary text").toString("base64")],
    ["AWS example key id", "AKIAIOSFODNN7EXAMPLE"],
    ["checksum mismatch", `${githubToken.slice(0, -1)}${githubToken.endsWith("A") ? "B" : "A"}`],
    ["token inside a longer word", `x${githubToken}`],
    ["prose", "Remember: the password must be at least twelve characters."],
    ["placeholder", "password=<your-password-here>"],
    ["env reference", "api_key: process.env.API_KEY_VALUE_1"],
    ["shell reference", "TOKEN=$GITHUB_TOKEN_FROM_CI_2"],
    ["masked", "secret: ****************"],
    ["identifier-like value", "secret: my-app-secret-name"],
    ["page token", "page_token=CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA"],
    ["a path", "PWD=/var/lib/app/releases/42"],
    ["URL value", "token_endpoint: https://auth.example.com/oauth/token"],
    ["URL with an empty password", "redis://:@localhost:6379"],
    [
      "unsigned JWT",
      `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"a":1}').toString("base64url")}.`,
    ],
    ["PEM header without a body", "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----"],
    ["empty", ""],
  ])("ignores %s", (_name, text) => {
    expect(codes(text)).toEqual([]);
  });

  it("reports each type once per string and never echoes more than 4 characters", () => {
    const out = scan(`${githubToken} and again ${githubToken}`);
    expect(out).toHaveLength(1);
    expect(out[0]).toEqual({
      code: "secret.github_token",
      message: "possible GitHub token `ghp_…`",
      arg: "text",
    });
    const secret = "Zq8Lm2Pz9Rt4Vw8Ky1Nb6Hc3";
    for (const finding of scan(`api_key=${secret} postgres://u:${secret}@h/db sk_live_${secret}`)) {
      expect(finding.message).not.toContain(secret.slice(0, 5));
    }
  });

  it("does not double-report a token given to a secret-named variable", () => {
    expect(codes(`GITHUB_TOKEN=${githubToken}`)).toEqual(["secret.github_token"]);
  });

  it("finds the AWS secret key near its key id", () => {
    const text = "AKIAZ7Q2M4N6P5R3T5V7\nwJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Lm2Pz9R";
    expect(codes(text)).toEqual(["secret.aws_key", "secret.aws_secret_key"]);
  });

  it("names only known types", () => {
    const all = Object.keys(SECRET_TYPES).map((type) => `secret.${type}`);
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        for (const code of codes(`password=${text} ${text}`)) expect(all).toContain(code);
      }),
      { numRuns: 300 },
    );
  });

  it("stays linear on hostile input", () => {
    // Each of these would be quadratic or worse with a backtracking pattern over the whole text.
    const inputs = [
      "A".repeat(200_000),
      "password=".repeat(20_000),
      "ghp_".repeat(50_000),
      `-----BEGIN ${"A".repeat(100_000)}`,
      "a:".repeat(100_000),
      `postgres://${"a".repeat(100_000)}`,
      "eyJ".repeat(60_000),
    ];
    for (const text of inputs) expect(Array.isArray(scan(text))).toBe(true);
  });
});

describe("base62 checksum", () => {
  it("matches a real (revoked, published) GitHub token and rejects a changed one", () => {
    // From github.com/therootcompany/base62-token.js test fixtures.
    const published = "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";
    expect(base62ChecksumValid(published, 0, 4, 40)).toBe(true);
    expect(base62ChecksumValid(`${published.slice(0, 39)}8`, 0, 4, 40)).toBe(false);
  });
});
