/**
 * A seeded random source and string mutations for the fuzzer. Every iteration draws from its own
 * generator seeded by (run seed, iteration), so any input can be rebuilt from those two numbers:
 * that is how a hang is reported, since a stuck worker cannot say what it was working on.
 */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  int(below: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

/** mulberry32 over a 32-bit state. */
export function rng(seed: number): Rng {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (below) => Math.floor(next() * below),
    pick: (items) => items[Math.floor(next() * items.length)],
    chance: (p) => next() < p,
  };
}

/** The generator of iteration `i` of a run with `seed`. */
export function iterationRng(seed: number, i: number): Rng {
  return rng(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i + 1, 0xc2b2ae35));
}

/** Characters that matter to parsers of URLs, paths, SQL, shell, YAML and to Unicode handling. */
const SPECIAL = [
  ..."/\\.:@%?#&=;|$`'\"()[]{}<>*!~^,+- \t\n\r\0",
  "\u00a0", // no-break space
  "\u200b", // zero-width space
  "\u202e", // right-to-left override
  "\u0301", // combining acute
  "\uff0f", // fullwidth solidus
  "\uff0e", // fullwidth full stop
  "\u2215", // division slash
  "\u0430", // Cyrillic a
  "\ud800", // lone high surrogate
  "\udc00", // lone low surrogate
  "😀",
  "İ",
  "ß",
  "\u2028",
];
const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

export function randomChar(r: Rng): string {
  const roll = r.next();
  if (roll < 0.55) return ALNUM[r.int(ALNUM.length)];
  if (roll < 0.9) return r.pick(SPECIAL);
  return String.fromCodePoint(r.int(0x10ffff + 1 - 0x800) + (r.chance(0.5) ? 0 : 0x800));
}

export function randomString(r: Rng, max = 40): string {
  const length = r.chance(0.02) ? r.int(64 * 1024) : r.int(max);
  let out = "";
  for (let i = 0; i < length; i++) out += randomChar(r);
  return out;
}

/** One to `rounds` random edits of `text`, drawing inserted pieces from `tokens`. */
export function mutate(r: Rng, text: string, tokens: readonly string[], rounds = 6): string {
  const edits = 1 + r.int(rounds);
  for (let e = 0; e < edits; e++) {
    const at = r.int(text.length + 1);
    const span = r.int(Math.min(16, text.length - at) + 1);
    switch (r.int(10)) {
      case 0:
        text = text.slice(0, at) + text.slice(at + span);
        break;
      case 1:
        text = text.slice(0, at) + r.pick(tokens) + text.slice(at);
        break;
      case 2:
        text = text.slice(0, at) + randomChar(r) + text.slice(at + 1);
        break;
      case 3:
        text =
          text.slice(0, at) +
          text.slice(at, at + span).repeat(1 + r.int(r.chance(0.1) ? 5000 : 4)) +
          text.slice(at + span);
        break;
      case 4:
        try {
          text =
            text.slice(0, at) + encodeURIComponent(text.slice(at, at + 1 + r.int(3))) + text.slice(at + 1);
        } catch {
          // a lone surrogate has no UTF-8 encoding
        }
        break;
      case 5:
        text = r.chance(0.5) ? text.toUpperCase() : text.toLowerCase();
        break;
      case 6: {
        const lines = text.split("\n");
        const i = r.int(lines.length);
        const j = r.int(lines.length);
        [lines[i], lines[j]] = [lines[j], lines[i]];
        text = lines.join("\n");
        break;
      }
      case 7:
        text = text.slice(0, at);
        break;
      case 8:
        text = text.slice(0, at) + r.pick(tokens) + r.pick(tokens) + text.slice(at + span);
        break;
      default:
        text = text.slice(0, at) + randomString(r, 8) + text.slice(at);
    }
  }
  return text;
}

/** A non-string value: what a check must also survive (numbers, nesting, arrays, odd keys). */
export function randomValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 3 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return r.pick([
        0,
        -0,
        1,
        -1,
        1e308,
        -1e308,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        2 ** 53 + 1,
        0.1,
      ]);
    case 2:
      return r.chance(0.5);
    case 3:
      return undefined;
    case 4:
    case 5:
      return randomString(r, 12);
    case 6:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = r.int(4); i > 0; i--) {
        const key = r.pick([
          "a",
          "url",
          "path",
          "__proto__",
          "constructor",
          "toString",
          "0",
          randomString(r, 6),
        ]);
        Object.defineProperty(out, key, {
          value: randomValue(r, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
  }
}
