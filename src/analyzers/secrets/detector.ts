import { z } from "zod";
import type { Finding } from "../../core/index.js";
import type { Detector } from "../kind.js";
import { base62ChecksumValid } from "./checksum.js";
import { FORMAT_TYPES, TOKEN_FORMATS, type TokenFormat } from "./formats.js";
import { forEachDecoded } from "./layers.js";

/*
 * How a scan runs. A JavaScript loop over every character costs more than the budget (a few µs
 * per KB), so the text is searched with indexOf, which is vectorised:
 *  - for the literal prefix of every token format (AKIA, ghp_, sk-, eyJ, -----BEGIN, ...); where one
 *    starts a word, sticky regular expressions check the exact format from that index;
 *  - for every `=` and `:`, where the identifier before (password=, "api_key":, AccountKey=) and
 *    the value after decide, and `://` is checked for credentials in the URL.
 * Every regular expression has bounded repetition, no nested quantifiers, and runs from a fixed
 * index, so the work is linear in the text. A clean string allocates nothing.
 */

/** Finding codes this detector can produce, each `secret.<type>`. */
export const SECRET_TYPES = {
  aws_key: "AWS access key id",
  aws_secret_key: "AWS secret access key",
  gcp_service_account: "GCP service-account private key",
  azure_key: "Azure storage or service-bus key",
  github_token: "GitHub token",
  gitlab_token: "GitLab token",
  slack_token: "Slack token",
  slack_webhook: "Slack webhook URL",
  stripe_key: "Stripe live key",
  openai_key: "OpenAI API key",
  anthropic_key: "Anthropic API key",
  api_key: "API key",
  google_api_key: "Google API key",
  twilio_key: "Twilio API key",
  sendgrid_key: "SendGrid API key",
  npm_token: "npm token",
  pypi_token: "PyPI token",
  private_key: "private key",
  jwt: "JSON Web Token",
  connection_string: "password in a connection URL",
  password: "password",
  generic: "secret value",
  bearer_token: "bearer token",
  basic_auth: "user and password in a Basic Authorization header",
  auth_header: "credential in an Authorization header",
  telegram_bot_token: "Telegram bot token",
  discord_webhook: "Discord webhook URL",
  mailchimp_key: "Mailchimp API key",
  ...FORMAT_TYPES,
} as const;

export type SecretType = keyof typeof SECRET_TYPES;

const TOKEN = new Uint8Array(128);
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = 1;
for (let c = 97; c <= 122; c++) TOKEN[c] = 1;
TOKEN[95] = 1; // _
TOKEN[45] = 1; // -
TOKEN[46] = 1; // .

const MIN_RUN = 20;

const AWS_ID = /(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}(?![A-Za-z0-9])/y;
const GOOGLE = /AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/y;
const GITHUB = /gh[pousr]_[A-Za-z0-9]{36}(?![A-Za-z0-9])/y;
const GITHUB_PAT = /github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}(?![A-Za-z0-9])/y;
const GITLAB = /gl(?:pat|ptt|dt|rt|cbt|soat|ft|imt|agent)-[A-Za-z0-9_.-]{20,200}/y;
const SLACK = /xox[abposr]-[0-9A-Za-z]{1,40}-[0-9A-Za-z-]{8,200}/y;
const STRIPE = /[sr]k_(?:live|prod)_[0-9A-Za-z]{20,200}/y;
const ANTHROPIC = /sk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_-]{60,200}/y;
const OPENAI_PROJECT = /sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,250}/y;
const SK_KEY = /sk-[A-Za-z0-9_-]{32,250}/y;
const SENDGRID = /SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/y;
const TWILIO = /SK[0-9a-fA-F]{32}(?![0-9A-Za-z])/y;
const NPM = /npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/y;
const PYPI = /pypi-AgE[A-Za-z0-9_-]{50,400}/y;
const JWT = /eyJ([A-Za-z0-9_-]{4,2048})\.[A-Za-z0-9_-]{4,8192}\.[A-Za-z0-9_-]{16,2048}/y;
const PEM = /-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----/y;
const URL_CREDENTIALS = /[^\s:@/?#"'<>]{0,128}:([^\s@/?#"'<>]{1,256})@[A-Za-z0-9[]/y;
const AWS_SECRET = /(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g;
const AZURE_ACCOUNT_KEY = /[A-Za-z0-9+/]{86}==/y;
const BASE64_40 = /[A-Za-z0-9+/%]{40,200}/y;
const PLACEHOLDER =
  /example|xxxx|\*\*\*|\.\.\.|changeme|change_me|your[_-]|placeholder|dummy|redacted|sample|<|>|\$\{|\{\{|\$\(|%s|%\(|process\.env|os\.environ|getenv|secrets\./i;
const DISCORD_HOOK =
  /(?:[a-z]{1,12}\.)?discord(?:app)?\.com\/api\/webhooks\/\d{5,30}\/[A-Za-z0-9_-]{60,100}/y;
const SLACK_HOOK = /hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/+-]{20,200}/y;

const CODES = new Map((Object.keys(SECRET_TYPES) as SecretType[]).map((type) => [type, `secret.${type}`]));

// Per-scan state kept at module level so a clean scan allocates nothing (no closure, no set).
let scanText = "";
let scanArg = "";
let scanOut: Finding[] = [];
/** Where this scan's findings start in `scanOut` (one finding per type per string). */
let scanFirst = 0;
// Where specific formats were found, so a `token=ghp_...` assignment is not reported twice.
const specificAt = new Int32Array(16);
let specificCount = 0;
/**
 * Collecting spans to mask (`findSecretSpans`): start, end pairs in the top-level text. In a
 * decoded layer the span is the encoded region it came from (`layerSpan`).
 */
let maskSpans: number[] | undefined;
let layerStart = 0;
let layerEnd = 0;

function recordSpan(type: SecretType, at: number): void {
  if (scanLayer !== "") {
    maskSpans!.push(layerStart, layerEnd);
    return;
  }
  const text = scanText;
  let end = at;
  if (text.startsWith("PuTTY", at)) {
    const mac = text.indexOf("Private-MAC:", at);
    end = mac < 0 ? text.length : Math.min(text.length, lineEndAt(text, mac));
  } else if (type === "private_key" || type === "gcp_service_account") {
    const close = text.indexOf("-----END", at);
    const marker = close < 0 ? -1 : text.indexOf("-----", close + 8);
    end = marker < 0 ? text.length : marker + 5;
  } else {
    while (end < text.length && end - at < 4096 && !isMaskStop(text.charCodeAt(end))) end++;
  }
  if (end > at) maskSpans!.push(at, end);
}

function lineEndAt(text: string, from: number): number {
  const nl = text.indexOf("\n", from);
  return nl < 0 ? text.length : nl;
}

function isMaskStop(c: number): boolean {
  return (
    c <= 32 ||
    c === 34 ||
    c === 39 ||
    c === 96 ||
    c === 44 ||
    c === 59 ||
    c === 60 ||
    c === 62 ||
    c === 41 ||
    c === 93 ||
    c === 125
  );
}

/** How the scanned text was decoded from the argument (`base64-encoded`), for messages. */
let scanLayer = "";
/** `passwords: any`: a password-named value counts without looking random. */
let weakPasswords = true;

function hit(type: SecretType, at: number, prefix: number): void {
  if (type !== "password" && type !== "generic" && specificCount < specificAt.length) {
    specificAt[specificCount++] = at;
  }
  const code = CODES.get(type)!;
  if (maskSpans !== undefined) recordSpan(type, at);
  for (let i = scanFirst; i < scanOut.length; i++) if (scanOut[i]!.code === code) return;
  const shown = prefix > 0 ? ` \`${scanText.slice(at, at + Math.min(prefix, 4))}…\`` : "";
  const layer = scanLayer === "" ? "" : ` (${scanLayer})`;
  scanOut.push({ code, message: `possible ${SECRET_TYPES[type]}${shown}${layer}`, arg: scanArg });
}

// Where a token can start: the prefix of every format, at a word boundary, in one expression.
// One native pass over the text costs less than an indexOf pass per prefix once there are dozens;
// the alternatives are specific enough (`gh[pousr]_`, not `gh`) that clean prose rarely matches,
// so a clean scan allocates nothing. `-----BEGIN` cannot follow a word boundary: it has its own pass.
const FORMATS_BY_PREFIX = new Map<string, TokenFormat[]>();
for (const format of TOKEN_FORMATS) {
  const list = FORMATS_BY_PREFIX.get(format.prefix);
  if (list) list.push(format);
  else FORMATS_BY_PREFIX.set(format.prefix, [format]);
}
const OWN_PREFIXES = [
  "AKIA",
  "ASIA",
  "ABIA",
  "ACCA",
  "A3T",
  "AIza",
  "gh[pousr]_",
  "github_pat_",
  "gl(?:pat|ptt|dt|rt|cbt|soat|ft|imt|agent)-",
  "xox[abposr]-",
  "[sr]k_(?:live|prod)_",
  "sk-",
  "SG\\.",
  "SK[0-9a-fA-F]",
  "npm_",
  "pypi-",
  "eyJ",
  "[Bb]earer ",
  "[Bb]asic ",
];
const TOKEN_START = new RegExp(
  `\\b(?:${[...OWN_PREFIXES, ...[...FORMATS_BY_PREFIX.keys()].map((p) => p.replace(/[.]/g, "\\."))].join("|")})`,
  "g",
);

/**
 * Scans one string; pushes one finding per secret type found. Never echoes more than 4 characters.
 * `arg` is the dotted path of the string in the arguments: its last segment names the value
 * (`env.AWS_SECRET_ACCESS_KEY`, `headers.Authorization`) the way `KEY=` would in text.
 */
export function scanSecrets(text: string, arg: string, out: Finding[]): void {
  scanArg = arg;
  scanOut = out;
  scanFirst = out.length;
  decodeBudget = DECODE_BUDGET;
  decodeCount = 0;
  try {
    scanText = text;
    scanLayer = "";
    scanPlain(text);
    if (arg.length > 2) namedByPath(text, arg);
    scanDecoded(text, 1);
  } finally {
    scanText = "";
    scanArg = "";
    scanOut = [];
    scanLayer = "";
  }
}

/** Decoding stops after this many layers (base64 of base64 of a URL-encoded token is 3). */
const MAX_LAYERS = 3;
/** Characters decoded per scanned string, over all layers; the cost bound. */
const DECODE_BUDGET = 32_768;
/** Decoded views scanned per string, over all layers. */
const MAX_DECODES = 32;
let decodeBudget = 0;
let decodeCount = 0;
const remainingBudget = (): number => (decodeCount >= MAX_DECODES ? 0 : decodeBudget);

/** Scans each decoded view of `text` (see layers.ts), and their decoded views, within the bounds. */
function scanDecoded(text: string, layer: number): void {
  if (layer > MAX_LAYERS) return;
  forEachDecoded(
    text,
    (decoded, how, from, to) => {
      if (layer === 1) {
        layerStart = from;
        layerEnd = to;
      }
      if (decodeCount >= MAX_DECODES || decodeBudget < decoded.length) return false;
      decodeCount++;
      decodeBudget -= decoded.length;
      const outerText = scanText;
      const outerLayer = scanLayer;
      scanText = decoded;
      scanLayer = outerLayer === "" ? how : `${how}, ${outerLayer}`;
      try {
        scanPlain(decoded);
        scanDecoded(decoded, layer + 1);
      } finally {
        scanText = outerText;
        scanLayer = outerLayer;
      }
      return true;
    },
    remainingBudget,
  );
}

/** One pass of every finder over `text` as it is. */
function scanPlain(text: string): void {
  specificCount = 0;
  TOKEN_START.lastIndex = 0;
  for (let m = TOKEN_START.exec(text); m !== null; m = TOKEN_START.exec(text))
    tokenStart(text, m[0], m.index);
  for (let i = text.indexOf("-----BEGIN"); i >= 0; i = text.indexOf("-----BEGIN", i + 1)) privateKey(text, i);
  for (let i = text.indexOf(":AA"); i >= 0; i = text.indexOf(":AA", i + 1)) telegramBot(text, i);
  for (let i = text.indexOf("Q~"); i >= 0; i = text.indexOf("Q~", i + 1)) azureClientSecret(text, i);
  for (let i = text.indexOf("-us"); i >= 0; i = text.indexOf("-us", i + 1)) mailchimp(text, i);
  for (let i = text.indexOf(":"); i >= 0; i = text.indexOf(":", i + 1)) assignment(text, i);
  for (let i = text.indexOf("="); i >= 0; i = text.indexOf("=", i + 1)) assignment(text, i);
  if (text.indexOf("login") >= 0) {
    let checked = 0;
    for (let i = text.indexOf("password"); i >= 0 && checked < 64; i = text.indexOf("password", i + 1)) {
      if (netrcPassword(text, i)) checked++;
    }
  }
  const putty = text.indexOf("PuTTY-User-Key-File-");
  if (putty >= 0) puttyKey(text, putty);
}

function isToken(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

function runEnd(text: string, start: number): number {
  let end = start;
  const limit = Math.min(text.length, start + 4096);
  while (end < limit && isToken(text.charCodeAt(end))) end++;
  return end;
}

/** A provider format at `start`: report it when the shape matches and the value is not a stand-in. */
function tokenFormat(text: string, format: TokenFormat, start: number): void {
  if (!at(format.shape, text, start)) return;
  const end = format.shape.lastIndex;
  if (isPlaceholder(text, start, end)) return;
  if (format.random && !looksRandom(text, start + format.prefix.length, end)) return;
  hit(format.type as SecretType, start, Math.min(format.prefix.length, 4));
}

/** A token prefix (`prefix`, as matched) at `start`: check the format it starts. */
function tokenStart(text: string, prefix: string, start: number): void {
  // The word boundary lets `-` and `.` through; a token starts a run of token characters.
  if (isToken(text.charCodeAt(start - 1))) return;
  const formats = FORMATS_BY_PREFIX.get(prefix);
  if (formats !== undefined) {
    for (const format of formats) tokenFormat(text, format, start);
  } else if (prefix.endsWith("asic ")) {
    basicCredentials(text, start + 6);
  } else if (prefix.endsWith("earer ")) {
    const from = start + 7;
    const end = runEnd(text, from);
    if (end - from >= MIN_RUN && looksRandom(text, from, end)) hit("bearer_token", from, 0);
  } else {
    tokenRun(text, start);
  }
}

function at(re: RegExp, text: string, index: number): boolean {
  re.lastIndex = index;
  return re.test(text);
}

/** A word starting at `start` with a known prefix: check the exact format. */
function tokenRun(text: string, start: number): void {
  const c0 = text.charCodeAt(start);
  const c1 = text.charCodeAt(start + 1);
  switch (c0) {
    case 65: // A
      if (at(AWS_ID, text, start) && !isPlaceholder(text, start, start + 20)) {
        hit("aws_key", start, 4);
        awsSecretNear(text, start);
      } else if (c1 === 73 && at(GOOGLE, text, start) && !isPlaceholder(text, start, start + 39)) {
        hit("google_api_key", start, 4);
      }
      return;
    case 103: // g
      if (at(GITHUB, text, start)) {
        // A valid checksum proves a real token; a random-looking body is treated as one too,
        // since a made-up token in a test is still what an exfiltration would carry.
        if (base62ChecksumValid(text, start, 4, 40) || looksRandom(text, start + 4, start + 40))
          hit("github_token", start, 4);
      } else if (at(GITHUB_PAT, text, start) && looksRandom(text, start + 11, start + 93)) {
        hit("github_token", start, 4);
      } else if (at(GITLAB, text, start)) {
        // GitLab token bodies are base64url-like and may hold no digit (`glpat-` + 20 letters).
        const body = text.indexOf("-", start) + 1;
        const end = GITLAB.lastIndex;
        if (
          !isPlaceholder(text, body, end) &&
          (looksRandom(text, body, end) || (hasCase(text, body, end) && entropy(text, body, end) >= 3.5))
        )
          hit("gitlab_token", start, 4);
      }
      return;
    case 120: // x
      if (at(SLACK, text, start) && !isPlaceholder(text, start, SLACK.lastIndex))
        hit("slack_token", start, 4);
      return;
    case 114: // r
    case 115: // s
      if (at(STRIPE, text, start)) {
        if (!isPlaceholder(text, start, STRIPE.lastIndex)) hit("stripe_key", start, 4);
      } else if (c0 === 115 && c1 === 107 && text.charCodeAt(start + 2) === 45) skKey(text, start);
      return;
    case 83: // S
      if (c1 === 71 && at(SENDGRID, text, start)) hit("sendgrid_key", start, 3);
      else if (c1 === 75 && at(TWILIO, text, start)) hit("twilio_key", start, 2);
      return;
    case 110: // n
      if (
        at(NPM, text, start) &&
        (base62ChecksumValid(text, start, 4, 40) || looksRandom(text, start + 4, start + 40))
      ) {
        hit("npm_token", start, 4);
      }
      return;
    case 112: // p
      if (at(PYPI, text, start)) hit("pypi_token", start, 4);
      return;
    case 101: // e
      if (c1 === 121 && at(JWT, text, start) && jwtHeader(text, start)) hit("jwt", start, 3);
      return;
  }
}

function skKey(text: string, start: number): void {
  if (at(ANTHROPIC, text, start)) {
    hit("anthropic_key", start, 4);
  } else if (at(OPENAI_PROJECT, text, start)) {
    if (!isPlaceholder(text, start, OPENAI_PROJECT.lastIndex)) hit("openai_key", start, 4);
  } else if (at(SK_KEY, text, start)) {
    const end = SK_KEY.lastIndex;
    if (text.indexOf("T3BlbkFJ", start) > 0 && text.indexOf("T3BlbkFJ", start) < end)
      hit("openai_key", start, 3);
    else if (looksRandom(text, start + 3, end)) hit("api_key", start, 3);
  }
}

/** A 40-character base64 word within a few hundred characters of an AWS key id. */
function awsSecretNear(text: string, idAt: number): void {
  AWS_SECRET.lastIndex = Math.max(0, idAt - 300);
  const limit = idAt + 320;
  for (let m = AWS_SECRET.exec(text); m !== null && m.index < limit; m = AWS_SECRET.exec(text)) {
    if (looksRandom(text, m.index, m.index + 40) && hasCase(text, m.index, m.index + 40)) {
      hit("aws_secret_key", m.index, 0);
      return;
    }
  }
}

function privateKey(text: string, start: number): void {
  if (!at(PEM, text, start)) return;
  let body = 0;
  const end = Math.min(text.length, PEM.lastIndex + 256);
  for (let i = PEM.lastIndex; i < end; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47) body++;
  }
  if (body < 64) return;
  hit(text.includes("service_account") ? "gcp_service_account" : "private_key", start, 0);
}

function jwtHeader(text: string, start: number): boolean {
  const dot = text.indexOf(".", start);
  try {
    const header = JSON.parse(Buffer.from(text.slice(start, dot), "base64url").toString("utf8")) as unknown;
    const alg = (header as { alg?: unknown } | null)?.alg;
    return typeof alg === "string" && alg.toLowerCase() !== "none";
  } catch {
    return false;
  }
}

/** `=` or `:` at `i`: a URL with credentials, or a secret-named identifier given a value. */
function assignment(text: string, i: number): void {
  const n = text.length;
  if (text.charCodeAt(i) === 58 && text.charCodeAt(i + 1) === 47 && text.charCodeAt(i + 2) === 47) {
    urlCredentials(text, i);
    return;
  }
  // The value: after `:=` / `=>`, spaces and an opening quote, up to the closing quote or a delimiter.
  let v = i + 1;
  const next = text.charCodeAt(v);
  if (next === 61 || next === 62) v++;
  while (v < n && v - i < 6 && (text.charCodeAt(v) === 32 || text.charCodeAt(v) === 9)) v++;
  const quote = text.charCodeAt(v);
  const quoted = quote === 34 || quote === 39 || quote === 96;
  if (quoted) v++;
  let e = v;
  while (e < n && e - v < 256) {
    const c = text.charCodeAt(e);
    if (
      quoted
        ? c === quote || c === 10
        : c <= 32 ||
          c === 34 ||
          c === 39 ||
          c === 44 ||
          c === 59 ||
          c === 125 ||
          c === 41 ||
          c === 93 ||
          c === 38
    )
      break;
    e++;
  }
  // A short value may be the scheme of `Authorization: token <credential>`, or a weak password.
  const short = e - v < 8;
  if (short && text.charCodeAt(e) !== 32 && e - v < MIN_WEAK) return;
  if (text.charCodeAt(v) === 47 /* a path */ || containsWord(text, v, e, "://")) return;
  // The identifier before the operator (skipping a closing quote and spaces).
  let k = i - 1;
  while (
    k >= 0 &&
    i - k < 5 &&
    (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 34 || text.charCodeAt(k) === 39)
  )
    k--;
  const identEnd = k + 1;
  while (k >= 0 && identEnd - k <= 64) {
    const c = text.charCodeAt(k);
    if (!(c < 128 && (TOKEN[c] === 1 || c === 36))) break;
    k--;
  }
  const identStart = k + 1;
  if (identEnd - identStart < 3) return;
  if (endsWithWord(text, identEnd, "authorization")) authorization(text, v);
  else if (identEnd - identStart === 4 && endsWithWord(text, identEnd, "auth")) basicCredentials(text, v);
  else if (!short || e - v >= MIN_WEAK) namedValue(text, identStart, identEnd, text, v, e);
}

/**
 * A value named by an identifier (`name[start, end)`, in `text` itself or in the argument path):
 * reported when the name says secret and the value looks random.
 */
function namedValue(name: string, start: number, end: number, text: string, v: number, e: number): void {
  if (endsWithWord(name, end, "accountkey")) {
    if (at(AZURE_ACCOUNT_KEY, text, v)) hit("azure_key", v, 0);
    return;
  }
  if (endsWithWord(name, end, "sharedaccesskey") || (endsWithWord(name, end, "sig") && end - start === 3)) {
    if (at(BASE64_40, text, v) && looksRandom(text, v, e) && (end - start > 3 || text.includes("sv=20"))) {
      hit("azure_key", v, 0);
    }
    return;
  }
  const kind = keywordKind(name, start, end);
  if (kind === undefined || isPlaceholder(text, v, e) || isCall(text, v, e)) return;
  if (!looksRandom(text, v, e) && !(kind === "password" && weakPasswords && weakPassword(text, v, e))) return;
  for (let j = 0; j < specificCount; j++) {
    if (specificAt[j]! >= v && specificAt[j]! < e) return;
  }
  if (e - v === 40 && containsWord(name, start, end, "aws")) hit("aws_secret_key", v, 0);
  else hit(kind, v, 0);
}

/**
 * The string at `path` (`env.AWS_SECRET_ACCESS_KEY`, `request.headers.Authorization`,
 * `api_keys.0`): the last named segment plays the identifier of a `name=value` assignment, and
 * the whole string (one word, no spaces) the value.
 */
function namedByPath(text: string, path: string): void {
  let end = path.length;
  let start = path.lastIndexOf(".", end - 1) + 1;
  if (isDigits(path, start, end) && start > 1) {
    end = start - 1;
    start = path.lastIndexOf(".", end - 1) + 1;
  }
  if (end - start < 3) return;
  let v = 0;
  let e = text.length;
  while (v < e && text.charCodeAt(v) <= 32) v++;
  while (e > v && text.charCodeAt(e - 1) <= 32) e--;
  if (e - v < MIN_WEAK || e - v > 512) return;
  if (endsWithWord(path, end, "authorization")) {
    authorization(text, v);
    return;
  }
  // ~/.docker/config.json and .npmrc keep base64 `user:password` under `auth`.
  if ((end - start === 4 || end - start === 5) && endsWithWord(path, end, "auth")) {
    basicCredentials(text, v);
    return;
  }
  // One printable ASCII word: prose (and text in other scripts) under a key is not a credential.
  for (let i = v; i < e; i++) if (text.charCodeAt(i) <= 32 || text.charCodeAt(i) >= 127) return;
  if (e - v <= 256 && text.charCodeAt(v) !== 47 && !containsWord(text, v, e, "://"))
    namedValue(path, start, end, text, v, e);
}

function isDigits(text: string, start: number, end: number): boolean {
  if (start >= end) return false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * An Authorization header value at `v`: `<scheme> <credential>` or a bare credential. Basic and
 * Bearer are found wherever they appear (prefix scan); Digest and AWS SigV4 carry one-time
 * signatures, not reusable secrets.
 */
function authorization(text: string, v: number): void {
  let s = v;
  while (s < text.length && s - v <= 32 && isSchemeChar(text.charCodeAt(s))) s++;
  let c = v;
  if (text.charCodeAt(s) === 32) {
    const scheme = s - v;
    if (
      (scheme === 5 && containsWord(text, v, s, "basic")) ||
      (scheme === 6 && (containsWord(text, v, s, "bearer") || containsWord(text, v, s, "digest"))) ||
      (scheme > 4 && containsWord(text, v, v + 4, "aws4"))
    )
      return;
    c = s;
    while (c < text.length && text.charCodeAt(c) === 32) c++;
  }
  // The credential is a token68 (RFC 9110): anything else (a call, an expression) is code.
  let e = c;
  while (e < text.length && e - c < 4096 && isToken68(text.charCodeAt(e))) e++;
  const stop = text.charCodeAt(e);
  if (e < text.length && !(stop <= 32 || stop === 34 || stop === 39 || stop === 44 || stop === 59)) return;
  if (e - c < 16 || isPlaceholder(text, c, e)) return;
  for (let j = 0; j < specificCount; j++) {
    if (specificAt[j]! >= c && specificAt[j]! < e) return;
  }
  if (looksRandom(text, c, e)) hit("auth_header", c, 0);
}

function isToken68(c: number): boolean {
  return isToken(c) || c === 126 || c === 43 || c === 47 || c === 61;
}

const BASE64_RUN = /[A-Za-z0-9+/]{8,1024}={0,2}/y;
const PRINTABLE = /^[\x20-\x7e]+$/;
const STANDIN_PASSWORD = /^(?:pass(?:word)?|pwd|secret|x|\d{1,5})$/i;

/** base64 of `user:password` at `v` (after `Basic `, or under an `auth` key). */
function basicCredentials(text: string, v: number): void {
  while (text.charCodeAt(v) === 32) v++;
  if (!at(BASE64_RUN, text, v) || isToken(text.charCodeAt(BASE64_RUN.lastIndex))) return;
  const end = BASE64_RUN.lastIndex;
  if (isPlaceholder(text, v, end)) return;
  const decoded = Buffer.from(text.slice(v, end), "base64").toString("latin1");
  const colon = decoded.indexOf(":");
  if (colon < 0 || !PRINTABLE.test(decoded) || PLACEHOLDER.test(decoded)) return;
  const password = decoded.slice(colon + 1);
  // An API key as the user name with an empty password (Stripe, Mailgun) is a credential too.
  if (
    (password.length > 0 && !STANDIN_PASSWORD.test(password)) ||
    (password.length === 0 && looksRandom(decoded, 0, colon))
  )
    hit("basic_auth", v, 0);
}

const TELEGRAM_SECRET = /AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])/y;

/**
 * `<bot id>:AA<33 characters>` at the `:`. Reported without a keyword: the shape (8 to 10 digits,
 * a colon, then 35 base64url characters starting `AA`) is specific to Telegram bot tokens, and
 * the secret half must look random. The id may follow `bot` as in `api.telegram.org/bot<token>`.
 */
function telegramBot(text: string, colon: number): void {
  let d = colon - 1;
  while (d >= 0 && colon - d <= 11 && text.charCodeAt(d) >= 48 && text.charCodeAt(d) <= 57) d--;
  const digits = colon - 1 - d;
  if (digits < 8 || digits > 10) return;
  if (isToken(text.charCodeAt(d)) && !(d >= 2 && containsWord(text, d - 2, d + 1, "bot"))) return;
  if (at(TELEGRAM_SECRET, text, colon + 1) && looksRandom(text, colon + 3, colon + 36)) {
    hit("telegram_bot_token", d + 1, 0);
  }
}

const AZURE_CLIENT_SECRET = /[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/y;

/** An Entra ID (Azure AD) client secret: three characters, a digit, `Q~`, 31 to 34 more. */
function azureClientSecret(text: string, q: number): void {
  const start = q - 4;
  if (start < 0 || isAzureSecretChar(text.charCodeAt(start - 1))) return;
  if (at(AZURE_CLIENT_SECRET, text, start) && looksRandom(text, q + 2, AZURE_CLIENT_SECRET.lastIndex)) {
    hit("azure_key", start, 0);
  }
}

function isAzureSecretChar(c: number): boolean {
  return isToken(c) || c === 126;
}

const MAILCHIMP = /[0-9a-f]{32}-us\d{1,2}(?![A-Za-z0-9])/y;

/** A Mailchimp API key: 32 hex digits, `-us` and the data-centre number. */
function mailchimp(text: string, dash: number): void {
  const start = dash - 32;
  if (start < 0 || isToken(text.charCodeAt(start - 1))) return;
  if (at(MAILCHIMP, text, start) && looksRandom(text, start, dash)) hit("mailchimp_key", start, 0);
}

function urlCredentials(text: string, colon: number): void {
  let s = colon - 1;
  while (s >= 0 && colon - s <= 20 && isSchemeChar(text.charCodeAt(s))) s--;
  if (colon - s < 3) return;
  if (at(SLACK_HOOK, text, colon + 3)) {
    if (!isPlaceholder(text, colon + 3, SLACK_HOOK.lastIndex)) hit("slack_webhook", colon + 3, 0);
    return;
  }
  if (at(DISCORD_HOOK, text, colon + 3)) {
    if (looksRandom(text, DISCORD_HOOK.lastIndex - 60, DISCORD_HOOK.lastIndex))
      hit("discord_webhook", colon + 3, 0);
    return;
  }
  URL_CREDENTIALS.lastIndex = colon + 3;
  const m = URL_CREDENTIALS.exec(text);
  let start: number;
  let end: number;
  if (m !== null && m[1]!.length >= 3) {
    start = colon + 3 + m[0].indexOf(":") + 1;
    end = start + m[1]!.length;
  } else {
    // libpq and most drivers split user info at the last `@` before the host, so a password may
    // hold unencoded `#`, `?`, `/`, `@` and `:`. The user name before the first `:` may not.
    const from = colon + 3;
    let stop = from;
    while (stop < text.length && stop - from < 512 && !isUrlStop(text.charCodeAt(stop))) stop++;
    const userColon = text.indexOf(":", from);
    const lastAt = text.lastIndexOf("@", stop - 1);
    if (userColon < 0 || lastAt <= userColon || !isHostStart(text.charCodeAt(lastAt + 1))) return;
    for (let i = from; i < userColon; i++) {
      const c = text.charCodeAt(i);
      if (c === 47 || c === 63 || c === 35 || c === 64) return;
    }
    start = userColon + 1;
    end = lastAt;
    // `host:8080/path@x` is a port and a path, not a password.
    if (/^\d{1,5}(?:[/?#]|$)/.test(text.slice(start, Math.min(end, start + 6)))) return;
  }
  const password = text.slice(start, end);
  if (password.length < 3 || isPlaceholder(text, start, end)) return;
  if (/^(?:pass(?:word)?|pwd|secret|\d{1,5})$/i.test(password)) return;
  hit("connection_string", s + 1, 0);
}

function isUrlStop(c: number): boolean {
  return c <= 32 || c === 34 || c === 39 || c === 60 || c === 62 || c === 96;
}

function isHostStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 91;
}

function isSchemeChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 43 || c === 46 || c === 45
  );
}

// Identifiers that name a secret, and words that make them name something else (secret_name,
// page_token, max_tokens, tokenizer). Short words count only at the end of the identifier.
const PASSWORD_WORDS = ["password", "passwd", "passphrase", "pwd"];
const SECRET_WORDS = [
  "secret",
  "token",
  "apikey",
  "api_key",
  "api-key",
  "accesskey",
  "access_key",
  "access-key",
  "credential",
  "auth_key",
  "authkey",
];
const NOT_SECRET_ANYWHERE = [
  "hash",
  "page",
  "cursor",
  "csrf",
  "xsrf",
  "count",
  "limit",
  "length",
  "expir",
  "usage",
  "policy",
  "prompt",
  "budget",
  "pattern",
  "format",
  "column",
  "regex",
  "label",
  "endpoint",
  "tokeniz",
  "author",
  "max_",
  "min_",
  "num_",
  "_len",
  "file",
  "path",
  "name",
  "type",
  "url",
  "hint",
  "strength",
];
const NOT_SECRET_SUFFIX = ["id", "max", "ref", "field", "ttl"];

function keywordKind(text: string, start: number, end: number): "password" | "generic" | undefined {
  let kind: "password" | "generic" | undefined;
  // One pass over the identifier, trying only the words that start with the current letter.
  for (let i = start; i < end && kind !== "password"; i++) {
    const c = text.charCodeAt(i) | 32;
    if (c === 112 /* p */) {
      if (PASSWORD_WORDS.some((word) => startsWithWord(text, i, end, word))) kind = "password";
    } else if (c === 115 || c === 116 || c === 97 || c === 99 /* s t a c */) {
      if (kind === undefined && SECRET_WORDS.some((word) => startsWithWord(text, i, end, word)))
        kind = "generic";
    }
  }
  if (kind === undefined && endsWithWord(text, end, "pass")) kind = "password";
  if (kind === undefined) return undefined;
  if (NOT_SECRET_ANYWHERE.some((word) => containsWord(text, start, end, word))) return undefined;
  if (NOT_SECRET_SUFFIX.some((word) => endsWithWord(text, end, word))) return undefined;
  return kind;
}

function startsWithWord(text: string, at: number, end: number, word: string): boolean {
  return at + word.length <= end && containsWord(text, at, at + word.length, word);
}

/** Case-insensitive search for an ASCII lower-case `word` in text[start, end), without allocating. */
function containsWord(text: string, start: number, end: number, word: string): boolean {
  const last = end - word.length;
  outer: for (let i = start; i <= last; i++) {
    for (let j = 0; j < word.length; j++) {
      const c = text.charCodeAt(i + j);
      if ((c >= 65 && c <= 90 ? c | 32 : c) !== word.charCodeAt(j)) continue outer;
    }
    return true;
  }
  return false;
}

function endsWithWord(text: string, end: number, word: string): boolean {
  const start = end - word.length;
  return start >= 0 && containsWord(text, start, end, word);
}

/** `config.get(` (a call whose quoted argument cut the value short): code, not a value. */
const CALL = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\($/;

function isCall(text: string, v: number, e: number): boolean {
  return text.charCodeAt(e - 1) === 40 /* ( */ && CALL.test(text.slice(v, e));
}

/** Shortest value under a password-named key reported without looking random. */
const MIN_WEAK = 6;
const NOT_A_PASSWORD =
  /^(?:true|false|null|none|nil|undefined|required|optional|string|hidden|masked|empty|unset|unknown|default|secret|password|passwd|changeme|letmein|prompt|ask|env|file|vault|keychain)$/i;
/** An attribute or call chain (`self.password`, `cfg.db.pass`, `getpass()`): code, not a value. */
const CODE_LIKE = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$|[()[\]{}]/;

/**
 * A value under a password-named key that is a password even though it does not look random
 * (`DB_PASSWORD=hunter2`, as gitleaks reports): 6+ characters with a digit or a symbol, or 10+
 * letters; not a stand-in word, a reference or code.
 */
function weakPassword(text: string, v: number, e: number): boolean {
  if (e - v < MIN_WEAK || e - v > 128) return false;
  const value = text.slice(v, e);
  if (NOT_A_PASSWORD.test(value) || CODE_LIKE.test(value) || STANDIN_PASSWORD.test(value)) return false;
  let letters = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i) | 32;
    if (c >= 97 && c <= 122) letters++;
    else if (value.charCodeAt(i) <= 32) return false;
  }
  return letters < value.length || value.length >= 10;
}

/**
 * `.netrc`: `machine <host> login <user> password <password>` (or `default login ...`). Returns
 * whether the context was examined (the caller caps how often, so the 512-character look-back
 * stays linear).
 */
function netrcPassword(text: string, at: number): boolean {
  if (at > 0 && text.charCodeAt(at - 1) > 32) return false;
  let v = at + 8;
  if (text.charCodeAt(v) !== 32 && text.charCodeAt(v) !== 9) return false;
  const from = Math.max(0, at - 512);
  if (
    !containsWord(text, from, at, "login") ||
    !(containsWord(text, from, at, "machine") || containsWord(text, from, at, "default"))
  )
    return true;
  while (text.charCodeAt(v) === 32 || text.charCodeAt(v) === 9) v++;
  let e = v;
  while (e < text.length && e - v < 256 && text.charCodeAt(e) > 32) e++;
  if (e - v < 4 || isPlaceholder(text, v, e) || STANDIN_PASSWORD.test(text.slice(v, e))) return true;
  hit("password", v, 0);
  return true;
}

const PUTTY_PRIVATE = /Private-Lines: *\d{1,3}\r?\n[A-Za-z0-9+/=]{32}/;

/** A PuTTY private key file (`.ppk`, versions 2 and 3): the private lines follow the public ones. */
function puttyKey(text: string, at: number): void {
  if (at > 0 && text.charCodeAt(at - 1) > 32) return;
  const window = text.slice(at, at + 16_384);
  if (window.indexOf("Encryption:") > 0 && PUTTY_PRIVATE.test(window)) hit("private_key", at, 0);
}

function isPlaceholder(text: string, start: number, end: number): boolean {
  PLACEHOLDER.lastIndex = 0;
  return PLACEHOLDER.test(text.slice(start, end)) || text.charCodeAt(start) === 36 /* $VAR */;
}

const counts = new Uint16Array(128);

/**
 * Random-looking: 8+ characters, a digit or a symbol besides `-_.` (so `my-secret-name` is not),
 * and Shannon entropy of at least 2.75 bits per character (3 from 12 characters, 3.5 from 20).
 * A run of letters alone passes from 20 characters when, as in random mixed-case text (Hugging
 * Face tokens), upper and lower case are about as frequent and the case flips often; camelCase
 * words (`BetaAPIKeyScopeMissingError`) have too few capitals or too few flips.
 */
function looksRandom(text: string, start: number, end: number): boolean {
  const length = end - start;
  if (length < 8) return false;
  let digitOrSymbol = false;
  let other = 0;
  let upper = 0;
  let lower = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128) {
      other++;
      continue;
    }
    counts[c]!++;
    if (c >= 65 && c <= 90) upper++;
    else if (c >= 97 && c <= 122) lower++;
    else if ((c >= 48 && c <= 57) || !(TOKEN[c] === 1 || c <= 32)) digitOrSymbol = true;
  }
  let entropy = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || counts[c] === 0) continue;
    const p = counts[c]! / length;
    entropy -= p * Math.log2(p);
    counts[c] = 0;
  }
  if (other > 0) entropy += (other / length) * 4;
  if (digitOrSymbol) return entropy >= (length >= 20 ? 3.5 : length >= 12 ? 3.0 : 2.75);
  if (length < 20 || upper + lower !== length || entropy < 4) return false;
  let flips = 0;
  for (let i = start + 1; i < end; i++) {
    if ((text.charCodeAt(i) & 32) !== (text.charCodeAt(i - 1) & 32)) flips++;
  }
  return flips >= (length - 1) * 0.4 && upper >= length * 0.3 && lower >= length * 0.3;
}

/** Shannon entropy, bits per character, of text[start, end) (ASCII). */
function entropy(text: string, start: number, end: number): number {
  const length = end - start;
  let bits = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 128) counts[c]!++;
  }
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || counts[c] === 0) continue;
    const p = counts[c]! / length;
    bits -= p * Math.log2(p);
    counts[c] = 0;
  }
  return bits;
}

function hasCase(text: string, start: number, end: number): boolean {
  let upper = false;
  let lower = false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 65 && c <= 90) upper = true;
    else if (c >= 97 && c <= 122) lower = true;
  }
  return upper && lower;
}

/** Longest array element joined with its neighbours, and how many are joined at most. */
const JOIN_ELEMENT = 64;
const JOIN_COUNT = 8;

/**
 * Scans a structured value: every string leaf (named by its dotted path), every object key long
 * enough to be a credential (a token used as a key, `{"tokens": {"ghp_...": true}}`), and runs of
 * adjacent short string elements of an array joined without separator (a token split into
 * pieces), in windows of up to 8 elements that overlap by half, so each element is scanned at
 * most three times. Pieces split across lines of one string, or across non-adjacent elements,
 * are not joined.
 */
export function scanSecretsIn(value: unknown, path: string, out: Finding[]): void {
  if (typeof value === "string") {
    scanSecrets(value, path, out);
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) scanSecretsIn(value[i], path ? `${path}.${i}` : String(i), out);
    joinedElements(value, path, out);
  } else if (value !== null && typeof value === "object") {
    for (const key of Object.keys(value as Record<string, unknown>)) {
      if (key.length >= 16) scanSecrets(key, path, out);
      scanSecretsIn((value as Record<string, unknown>)[key], path ? `${path}.${key}` : key, out);
    }
  }
}

function joinedElements(items: readonly unknown[], path: string, out: Finding[]): void {
  let runStart = 0;
  for (let i = 0; i <= items.length; i++) {
    const item = items[i];
    if (i < items.length && typeof item === "string" && item.length > 0 && item.length <= JOIN_ELEMENT)
      continue;
    // items[runStart, i) are short strings.
    for (let from = runStart; i - from >= 2; from += JOIN_COUNT / 2) {
      const to = Math.min(i, from + JOIN_COUNT);
      const found: Finding[] = [];
      scanSecrets((items.slice(from, to) as string[]).join(""), path, found);
      for (const finding of found) {
        if (!out.some((f) => f.code === finding.code && f.arg === finding.arg)) {
          out.push({
            ...finding,
            message: `${finding.message} (joined from ${to - from} adjacent elements)`,
          });
        }
      }
      if (to === i) break;
    }
    runStart = i + 1;
  }
}

/**
 * The secrets in `text`, and the text with each replaced by `[REDACTED secret.<type>]` (a
 * secret found in a decoded layer masks the whole encoded region it came from).
 */
export function maskSecrets(text: string): { text: string; findings: Finding[] } {
  const findings: Finding[] = [];
  const spans: number[] = [];
  maskSpans = spans;
  try {
    scanSecrets(text, "", findings);
  } finally {
    maskSpans = undefined;
  }
  if (spans.length === 0) return { text, findings };
  const order = [];
  for (let i = 0; i < spans.length; i += 2) order.push([spans[i]!, spans[i + 1]!] as const);
  order.sort((a, b) => a[0] - b[0]);
  let masked = "";
  let copied = 0;
  for (const [start, end] of order) {
    if (end <= copied) continue;
    masked += `${text.slice(copied, Math.max(copied, start))}[REDACTED]`;
    copied = end;
  }
  return { text: masked + text.slice(copied), findings };
}

/** Options of the secrets detector under `detect: { secrets: { ... } }`. */
export const secretsOptions = z
  .object({
    /**
     * Values under password-named keys (`DB_PASSWORD=hunter2`): `any` reports them unless they are
     * stand-ins or references (the default, as gitleaks does); `random` only when they look random.
     */
    passwords: z.enum(["any", "random"]).optional(),
  })
  .strict();

function configured(passwords: boolean): Detector {
  const withOption = (scan: () => void) => {
    const before = weakPasswords;
    weakPasswords = passwords;
    try {
      scan();
    } finally {
      weakPasswords = before;
    }
  };
  return {
    name: "secrets",
    summary: secretsDetector.summary,
    scan: (text, arg, out) => withOption(() => scanSecrets(text, arg, out)),
    scanValue: (value, path, out) => withOption(() => scanSecretsIn(value, path, out)),
    mask: (text) => {
      let result: { text: string; findings: Finding[] } = { text, findings: [] };
      withOption(() => {
        result = maskSecrets(text);
      });
      return result;
    },
  };
}

/**
 * `detect: { secrets: deny }`: credentials in any string argument (cloud keys, provider tokens,
 * private keys, JWTs, passwords in URLs and in `password=`-style assignments, Authorization
 * headers, values under secret-named keys at any depth, `.netrc` and PuTTY files), also when
 * wrapped in base64, hex, percent-encoding, `\u` escapes or fullwidth characters (up to 3 layers,
 * 32 KiB and 32 decoded views per string), used as an object key, or split across adjacent array elements.
 * Telegram bot tokens are reported without a keyword: the shape is specific and a leaked bot
 * token is a full credential.
 * Deliberately not reported, to keep false positives down: values containing placeholder words
 * (so AWS's documented `AKIAIOSFODNN7EXAMPLE` and `xoxb-your-token`), `ghp_`/`gho_`/... strings
 * whose body neither carries a valid CRC-32 checksum nor looks random (`ghp_aaaa…`), Stripe `sk_test_`
 * keys, unsigned (`alg: none`) JWTs, PEM headers without a key body, and public keys and
 * certificates.
 */
export const secretsDetector: Detector = {
  name: "secrets",
  summary:
    "credentials (cloud keys, API tokens, private keys, JWTs, passwords) in string arguments, also encoded, as keys or split",
  scan: scanSecrets,
  scanValue: scanSecretsIn,
  mask: maskSecrets,
  options: secretsOptions,
  configure: (options: z.infer<typeof secretsOptions>) => configured(options.passwords !== "random"),
};
