import { CharBuffer, normalizeInto, PART_SEPARATOR } from "./normalize.js";

/** A label found in scanned text, and the recorded content (by its caller-given source) it came from. */
export interface FlowHit {
  label: string;
  /** The `source` given to `add`, e.g. `web_fetch#3` or `input#1`; `overflow` when the index answers conservatively. */
  source: string;
}

export interface FlowIndexOptions {
  /** Shortest shared stretch, in normalised characters, that counts as a flow. Default 16. */
  minMatch?: number;
  /** Per-label override, from the policy's `labels: {L: {min_match}}`. */
  labelMinMatch?: Readonly<Record<string, number>>;
  /** Bound on the memory this index holds (text plus fingerprints), in bytes. Default 32 MiB. */
  maxBytes?: number;
}

/** The source reported for every label once the index can no longer answer exactly. */
export const OVERFLOW_SOURCE = "overflow";

const DEFAULT_MIN_MATCH = 16;
const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;
const MIN_MATCH_RANGE = [4, 4096] as const;
/** Approximate bookkeeping per recorded content: object, typed-array header, label and key lists. */
const DOC_OVERHEAD = 256;
/** Same-content duplicates are looked for among this many most recent entries of a hash chain. */
const DEDUPE_WALK = 8;
/** The query scratch buffer is kept between scans up to this many code units. */
const SCRATCH_KEEP = 1 << 16;
const MIN_TABLE = 256;
/** Candidate budget of one scan: WORK_PER_CHAR per normalised character plus WORK_BASE. */
const WORK_PER_CHAR = 64;
const WORK_BASE = 65_536;

interface Doc {
  /** Normalised text; one byte a character when it fits. Parts are separated by PART_SEPARATOR. */
  data: Uint8Array | Uint16Array;
  /** Position of data[0] in the index-wide numbering used by fingerprint entries. */
  start: number;
  labels: number[];
  /** Key ids (source, label) parallel to `labels`; a scan reports each key once. */
  keys: number[];
  /** The largest minimum match among the labels. */
  need: number;
}

/** MurmurHash3's 32-bit finaliser: the k-gram hash is this of the rolling hash. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Whether a stored entry's key may be the query k-gram: the same high hash bits, and the same
 * context on one side at least (a real match of t characters extends g characters to one side).
 */
function sameKgram(key: number, query: number): boolean {
  const differ = key ^ query;
  return differ >>> 16 === 0 && ((differ & 0xff00) === 0 || (differ & 0xff) === 0);
}

function checkMinMatch(value: number, what: string): number {
  if (!Number.isInteger(value) || value < MIN_MATCH_RANGE[0] || value > MIN_MATCH_RANGE[1]) {
    throw new RangeError(
      `${what} must be an integer from ${MIN_MATCH_RANGE[0]} to ${MIN_MATCH_RANGE[1]}, got ${value}`,
    );
  }
  return value;
}

/** The options checked, with the shortest and longest minimum match among them. */
function settingsOf(options: FlowIndexOptions): {
  minMatch: number;
  perLabel: Map<string, number>;
  shortest: number;
  longest: number;
  maxBytes: number;
} {
  const minMatch = checkMinMatch(options.minMatch ?? DEFAULT_MIN_MATCH, "minMatch");
  const perLabel = new Map<string, number>();
  let shortest = minMatch;
  let longest = minMatch;
  for (const [label, value] of Object.entries(options.labelMinMatch ?? {})) {
    perLabel.set(label, checkMinMatch(value, `labelMinMatch.${label}`));
    shortest = Math.min(shortest, value);
    longest = Math.max(longest, value);
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!(maxBytes > 0) || maxBytes > 2 ** 31) {
    throw new RangeError(`maxBytes must be in (0, 2^31], got ${maxBytes}`);
  }
  return { minMatch, perLabel, shortest, longest, maxBytes };
}

/**
 * Content fingerprints of one session's labelled content (tool outputs, user input), answering
 * "which labels does this argument carry?" by shared stretches of normalised text.
 *
 * Winnowing (Schleimer, Wilkerson, Aiken 2003) over k-grams with k + w - 1 = t, the smallest
 * minimum match: every stretch of >= t characters shared with recorded content contains a
 * recorded k-gram, so `scan` looks up every k-gram of the argument in a hash table (cost grows
 * with the argument, not with the history), verifies each candidate against the stored text
 * (no hash-collision hits) and extends it to measure the stretch against each label's minimum.
 * Each entry also keeps 8-bit tags of the g = ceil((w-1)/2) characters on either side: a real
 * match extends at least g characters to one side, so candidates whose tags both differ are
 * dropped without touching the text. Hand-written: no maintained npm library does incremental
 * winnowing with verification.
 *
 * Bounded memory, fail-closed: when recording more would pass `maxBytes`, the content is not
 * stored and `overflowed` becomes true; from then on every scan of a text at least a label's
 * minimum long reports every label ever added, with source `overflow`. The same happens for one
 * scan whose candidate work passes a budget proportional to its length (crafted repetitive
 * history). Content is never silently forgotten.
 */
export class FlowIndex {
  /** The default minimum match. */
  readonly minMatch: number;
  private readonly labelMinMatch: ReadonlyMap<string, number>;
  private readonly maxBytes: number;
  /** k-gram length, winnowing window and context-tag length; k + w - 1 is the smallest minimum match. */
  private readonly k: number;
  private readonly w: number;
  private readonly g: number;
  private readonly shortest: number;
  /** Context compared on each side of a k-gram when deduplicating entries. */
  private readonly radius: number;
  private readonly base: number;
  private readonly baseK: number;
  private readonly baseG: number;

  private readonly docs: Doc[] = [];
  private readonly docStarts: number[] = [];
  private nextStart = 0;
  private docBytes = 0;

  private readonly labelNames: string[] = [];
  private readonly labelIds = new Map<string, number>();
  private readonly labelNeed: number[] = [];
  private readonly keyIds = new Map<string, number>();
  private readonly keySource: string[] = [];
  private stamps = new Uint32Array(0);
  private generation = 0;

  // Fingerprint table, allocated on first stored content; one empty bucket until then.
  // Three ints an entry, side by side so a chain step touches one cache line: the key (high 16
  // bits of the k-gram hash, then the left and right context tags), the index-wide position, and
  // the next entry in the bucket (-1 ends the chain).
  private table = new Int32Array(0);
  private capacity = 0;
  private heads = Int32Array.of(-1);
  private entries = 0;

  private isOverflowed = false;
  // Scratch of scans, empty until the first: most sessions hold many indexes that never scan.
  private scratch = new CharBuffer(0);
  private scratchTags = new Uint8Array(0);
  /** Scratch: the hash of every k-gram of the text being winnowed. */
  private hashes = new Uint32Array(0);
  private selectedHash = new Uint32Array(64);
  private selectedPos = new Uint32Array(64);

  /** Throws the RangeError the constructor would for `options`, without building an index. */
  static checkOptions(options: FlowIndexOptions = {}): void {
    settingsOf(options);
  }

  constructor(options: FlowIndexOptions = {}) {
    const { minMatch, perLabel, shortest, longest, maxBytes } = settingsOf(options);
    this.minMatch = minMatch;
    this.labelMinMatch = perLabel;
    this.maxBytes = maxBytes;
    this.shortest = shortest;
    // k about t/2 balances fingerprint density (2/(w+1)) against how common each k-gram is.
    this.k = Math.ceil(shortest / 2);
    this.w = shortest - this.k + 1;
    this.g = Math.ceil((this.w - 1) / 2);
    this.radius = longest - this.k;
    // A random odd base per index, so texts cannot be crafted offline to collide.
    this.base = (crypto.getRandomValues(new Uint32Array(1))[0] | 1) >>> 0;
    let power = 1;
    for (let i = 1; i <= Math.max(this.k, this.g); i++) {
      power = Math.imul(power, this.base);
      if (i === this.g) this.baseG = power;
      if (i === this.k) this.baseK = power;
    }
    this.baseK ??= 1;
    this.baseG ??= 1;
  }

  /** True once the memory bound was hit: scans then report every label ever added (fail-closed). */
  get overflowed(): boolean {
    return this.isOverflowed;
  }

  /** Approximate memory held: stored text, fingerprint table and bookkeeping; 0 when nothing is stored. */
  get bytes(): number {
    return this.docBytes + this.capacity * 16 + this.stamps.byteLength + this.keyIds.size * 64;
  }

  /**
   * Switches to conservative answers as if the memory bound was hit: for a caller that could not
   * record some labelled content (e.g. `addValue` met a value it cannot walk).
   */
  markOverflowed(): void {
    this.isOverflowed = true;
  }

  /** The minimum match that applies to `label`. */
  minMatchFor(label: string): number {
    return this.labelMinMatch.get(label) ?? this.minMatch;
  }

  /**
   * Records labelled content. An array records several parts (e.g. the string leaves of a JSON
   * output) that are matched separately: no stretch spans two parts. Content shorter than the
   * smallest minimum match is not stored (it can never match), but its labels count as added.
   */
  add(content: string | readonly string[], labels: readonly string[], source: string): void {
    if (labels.length === 0) return;
    const labelIds: number[] = [];
    for (const label of labels) {
      const id = this.labelId(label);
      if (!labelIds.includes(id)) labelIds.push(id);
    }
    if (this.isOverflowed) return;

    const buf = new CharBuffer(typeof content === "string" ? content.length + 16 : 1024);
    if (typeof content === "string") normalizeInto(content, buf);
    else {
      for (const part of content) {
        if (buf.length > 0 && buf.data[buf.length - 1] !== PART_SEPARATOR) buf.push(PART_SEPARATOR);
        normalizeInto(part, buf);
      }
    }
    const n = buf.length;
    if (n < this.shortest) return;

    const textBytes = buf.max < 256 ? n : 2 * n;
    if (this.bytes + textBytes + DOC_OVERHEAD > this.maxBytes) {
      this.isOverflowed = true;
      return;
    }
    const selected = this.winnow(buf.data, n);
    let capacity = this.capacity;
    while (capacity < this.entries + selected) capacity = Math.max(MIN_TABLE, capacity * 2);
    const projected = this.bytes + textBytes + DOC_OVERHEAD + (capacity - this.capacity) * 16 + 128;
    if (projected > this.maxBytes) {
      this.isOverflowed = true;
      return;
    }

    const tags = new Uint8Array(n);
    this.computeTags(buf.data, n, tags);
    const data = buf.max < 256 ? new Uint8Array(n) : new Uint16Array(n);
    data.set(buf.data.subarray(0, n));
    const keys = labelIds.map((id) => this.keyId(source, id));
    let need = 0;
    for (const id of labelIds) need = Math.max(need, this.labelNeed[id]);
    const doc: Doc = { data, start: this.nextStart, labels: labelIds, keys, need };
    this.docs.push(doc);
    this.docStarts.push(doc.start);
    this.nextStart += n + 1;
    this.docBytes += textBytes + DOC_OVERHEAD;

    for (let s = 0; s < selected; s++) {
      const hash = this.selectedHash[s];
      const pos = this.selectedPos[s];
      const key = this.entryKey(hash, pos, n, tags);
      if (this.isDuplicate(hash, key, pos, doc)) continue;
      if (this.entries === this.capacity) this.growTable();
      const e = this.entries++;
      const bucket = hash & (this.heads.length - 1);
      this.table[3 * e] = key;
      this.table[3 * e + 1] = doc.start + pos;
      this.table[3 * e + 2] = this.heads[bucket];
      this.heads[bucket] = e;
    }
    this.releaseScratch();
  }

  /**
   * Every (label, source) whose recorded content shares a stretch of at least that label's
   * minimum match with `text`, each once; plus every label ever added with source `overflow`
   * when the index answers conservatively. Never throws for string input.
   */
  scan(text: string): FlowHit[] {
    const out: FlowHit[] = [];
    this.collect(text, out);
    return out;
  }

  /** Like `scan`, appending to `out`. */
  collect(text: string, out: FlowHit[]): void {
    const n = this.prepareQuery(text);
    if (n < this.shortest) return;
    const data = this.scratch.data;
    const tags = this.scratchTags;
    const generation = this.nextGeneration();
    const { k } = this;
    let budget = WORK_PER_CHAR * n + WORK_BASE;
    let exhausted = false;
    let lastDoc = -1;
    let lastDiagonal = 0;
    let lastEnd = 0;
    // Only the argument's own winnowed k-grams are looked up: a shared stretch of at least t
    // characters holds a whole window of w k-grams, identical on both sides, and both sides keep
    // that window's leftmost minimum (the same rule, the same hashes). About 2/(w+1) of the
    // positions, so a scan costs a fraction of the random table reads it would with every k-gram.
    const selected = this.winnow(data, n);
    const selectedHash = this.selectedHash;
    const selectedPos = this.selectedPos;
    scanning: for (let s = 0; s < selected; s++) {
      const hash = selectedHash[s];
      const i = selectedPos[s];
      const query = this.entryKey(hash, i, n, tags);
      const table = this.table;
      for (let e = this.heads[hash & (this.heads.length - 1)]; e !== -1; e = table[3 * e + 2]) {
        if (!sameKgram(table[3 * e], query)) continue;
        if (--budget < 0) {
          exhausted = true;
          break scanning;
        }
        const pos = table[3 * e + 1];
        const docIndex = this.docAt(pos);
        const doc = this.docs[docIndex];
        if (this.allStamped(doc, generation)) continue;
        const p = pos - doc.start;
        if (docIndex === lastDoc && p - i === lastDiagonal && i < lastEnd) continue;
        const stored = doc.data;
        let m = 0;
        while (m < k && stored[p + m] === data[i + m]) m++;
        if (m < k) continue;
        // Extend until the stretch reaches the largest minimum this content needs.
        const need = doc.need;
        let before = 0;
        while (
          before < need - k &&
          before < i &&
          before < p &&
          stored[p - before - 1] === data[i - before - 1]
        ) {
          before++;
        }
        let after = 0;
        const storedLength = stored.length;
        while (
          before + k + after < need &&
          i + k + after < n &&
          p + k + after < storedLength &&
          stored[p + k + after] === data[i + k + after]
        ) {
          after++;
        }
        const length = before + k + after;
        lastDoc = docIndex;
        lastDiagonal = p - i;
        lastEnd = i + k + after;
        for (let l = 0; l < doc.labels.length; l++) {
          const key = doc.keys[l];
          if (this.stamps[key] !== generation && length >= this.labelNeed[doc.labels[l]]) {
            this.stamps[key] = generation;
            out.push({ label: this.labelNames[doc.labels[l]], source: this.keySource[key] });
          }
        }
      }
    }
    if (this.isOverflowed || exhausted) {
      for (let id = 0; id < this.labelNames.length; id++) {
        if (this.labelNeed[id] <= n) out.push({ label: this.labelNames[id], source: OVERFLOW_SOURCE });
      }
    }
    this.releaseScratch();
  }

  /**
   * True if the whole normalised `text` occurs inside one recorded content labelled `label`
   * (endorsement, `unless: [user]`). False for text shorter than the smallest minimum match
   * (too short to carry a flow, so nothing to endorse), for an unknown label, and when the work
   * budget runs out; after an overflow only content stored before it can endorse.
   */
  containsWhole(text: string, label: string): boolean {
    const id = this.labelIds.get(label);
    if (id === undefined) return false;
    const n = this.prepareQuery(text);
    if (n < this.shortest) return false;
    const data = this.scratch.data;
    const tags = this.scratchTags;
    const { k } = this;
    let budget = WORK_PER_CHAR * n + WORK_BASE;
    let lastDoc = -1;
    let lastOffset = 0;
    let roll = 0;
    let found = false;
    for (let j = 0; j < k; j++) roll = (Math.imul(roll, this.base) + data[j]) | 0;
    scanning: for (let i = 0; ; i++) {
      const hash = fmix32(roll);
      const query = this.entryKey(hash, i, n, tags);
      const table = this.table;
      for (let e = this.heads[hash & (this.heads.length - 1)]; e !== -1; e = table[3 * e + 2]) {
        if (!sameKgram(table[3 * e], query)) continue;
        if (--budget < 0) break scanning;
        const pos = table[3 * e + 1];
        const docIndex = this.docAt(pos);
        const doc = this.docs[docIndex];
        const offset = pos - doc.start - i;
        if (offset < 0 || offset + n > doc.data.length || !doc.labels.includes(id)) continue;
        if (docIndex === lastDoc && offset === lastOffset) continue;
        lastDoc = docIndex;
        lastOffset = offset;
        const stored = doc.data;
        let m = 0;
        while (m < n && stored[offset + m] === data[m]) m++;
        if (m === n) {
          found = true;
          break scanning;
        }
      }
      if (i + k >= n) break;
      roll = (Math.imul(roll, this.base) + data[i + k] - Math.imul(data[i], this.baseK)) | 0;
    }
    this.releaseScratch();
    return found;
  }

  private labelId(label: string): number {
    let id = this.labelIds.get(label);
    if (id === undefined) {
      id = this.labelNames.length;
      this.labelNames.push(label);
      this.labelIds.set(label, id);
      this.labelNeed.push(this.minMatchFor(label));
    }
    return id;
  }

  private keyId(source: string, label: number): number {
    const name = `${label}\u0000${source}`;
    let id = this.keyIds.get(name);
    if (id === undefined) {
      id = this.keySource.length;
      this.keyIds.set(name, id);
      this.keySource.push(source);
      if (id >= this.stamps.length) {
        const next = new Uint32Array(Math.max(64, this.stamps.length * 2));
        next.set(this.stamps);
        this.stamps = next;
      }
    }
    return id;
  }

  private nextGeneration(): number {
    this.generation = (this.generation + 1) >>> 0;
    if (this.generation === 0) {
      this.stamps.fill(0);
      this.generation = 1;
    }
    return this.generation;
  }

  private allStamped(doc: Doc, generation: number): boolean {
    for (let l = 0; l < doc.keys.length; l++) if (this.stamps[doc.keys[l]] !== generation) return false;
    return true;
  }

  /** Normalises `text` into the scratch buffer and computes its context tags; returns its length. */
  private prepareQuery(text: string): number {
    this.scratch.reset();
    normalizeInto(text, this.scratch);
    const n = this.scratch.length;
    if (n < this.shortest) return n;
    if (this.scratchTags.length < n)
      this.scratchTags = new Uint8Array(Math.max(n, this.scratchTags.length * 2));
    this.computeTags(this.scratch.data, n, this.scratchTags);
    return n;
  }

  private releaseScratch(): void {
    if (this.scratch.data.length > SCRATCH_KEEP) this.scratch = new CharBuffer(0);
    if (this.selectedPos.length > SCRATCH_KEEP) {
      this.selectedHash = new Uint32Array(64);
      this.selectedPos = new Uint32Array(64);
    }
    if (this.scratchTags.length > SCRATCH_KEEP) this.scratchTags = new Uint8Array(0);
    if (this.hashes.length > SCRATCH_KEEP) this.hashes = new Uint32Array(0);
  }

  /** tags[j]: an 8-bit hash of the g characters starting at j, for every j with j + g <= n. */
  private computeTags(data: Uint16Array, n: number, tags: Uint8Array): void {
    const g = this.g;
    if (g === 0) return;
    let roll = 0;
    for (let j = 0; j < g; j++) roll = (Math.imul(roll, this.base) + data[j]) | 0;
    for (let j = 0; ; j++) {
      tags[j] = fmix32(roll ^ 0x5bd1e995) >>> 24;
      if (j + g >= n) break;
      roll = (Math.imul(roll, this.base) + data[j + g] - Math.imul(data[j], this.baseG)) | 0;
    }
  }

  /**
   * A fingerprint entry's key for the k-gram at `pos`: the high 16 bits of its hash, then 8-bit
   * tags of the g characters before and after it (0 past either end). Stored by `add`, compared
   * by `sameKgram` in scans.
   */
  private entryKey(hash: number, pos: number, n: number, tags: Uint8Array): number {
    const { k, g } = this;
    const left = pos >= g ? tags[pos - g] : 0;
    const right = pos + k + g <= n ? tags[pos + k] : 0;
    return (hash & 0xffff0000) | (left << 8) | right;
  }

  /** Index of the recorded content holding index-wide position `pos`. */
  private docAt(pos: number): number {
    const starts = this.docStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Winnowing: the minimum hash of every window of w k-grams, the leftmost on ties (so a run of
   * equal k-grams yields one fingerprint per window, not one per position). The k-gram hashes go
   * into a scratch array first (a loop without branches); the window minimum is then kept by
   * position and looked for again only when it leaves the window (about 2/(w+1) of positions),
   * which mispredicts far fewer branches than a monotonic deque. Fills selectedHash/selectedPos
   * and returns their count. Needs n >= k + w - 1.
   */
  private winnow(data: Uint16Array, n: number): number {
    const { k, w, base, baseK } = this;
    const grams = n - k + 1;
    if (this.hashes.length < grams) this.hashes = new Uint32Array(Math.max(grams, this.hashes.length * 2));
    const h = this.hashes;
    let roll = 0;
    for (let j = 0; j < k; j++) roll = (Math.imul(roll, base) + data[j]) | 0;
    for (let i = 0; ; i++) {
      h[i] = fmix32(roll);
      if (i + 1 === grams) break;
      roll = (Math.imul(roll, base) + data[i + k] - Math.imul(data[i], baseK)) | 0;
    }
    let m = 0;
    for (let j = 1; j < w; j++) if (h[j] < h[m]) m = j;
    let count = 0;
    let last = -1;
    for (let i = w - 1; i < grams; i++) {
      if (h[i] < h[m]) m = i;
      else if (m + w <= i) {
        // The minimum left the window: the leftmost minimum of the window, looked for again.
        m = i - w + 1;
        for (let j = m + 1; j <= i; j++) if (h[j] < h[m]) m = j;
      }
      if (m !== last) {
        last = m;
        if (count === this.selectedPos.length) this.growSelection();
        this.selectedHash[count] = h[m];
        this.selectedPos[count] = m;
        count++;
      }
    }
    return count;
  }

  private growSelection(): void {
    const size = this.selectedPos.length * 2;
    const hashes = new Uint32Array(size);
    const positions = new Uint32Array(size);
    hashes.set(this.selectedHash);
    positions.set(this.selectedPos);
    this.selectedHash = hashes;
    this.selectedPos = positions;
  }

  /**
   * True if a recent entry of the same content has the same k-gram with the same context within
   * `radius` on both sides: every stretch it could verify, the existing entry verifies the same.
   */
  private isDuplicate(hash: number, key: number, pos: number, doc: Doc): boolean {
    const data = doc.data;
    const k = this.k;
    const r = this.radius;
    const left = Math.min(r, pos);
    const right = Math.min(r, data.length - pos - k);
    let walked = 0;
    for (
      let e = this.heads[hash & (this.heads.length - 1)];
      e !== -1 && walked < DEDUPE_WALK;
      e = this.table[3 * e + 2]
    ) {
      walked++;
      if (this.table[3 * e] !== key || this.table[3 * e + 1] < doc.start) continue;
      const other = this.table[3 * e + 1] - doc.start;
      if (Math.min(r, other) !== left || Math.min(r, data.length - other - k) !== right) continue;
      let m = -left;
      while (m < k + right && data[pos + m] === data[other + m]) m++;
      if (m === k + right) return true;
    }
    return false;
  }

  /** Doubles the table; bucket bits beyond those kept in the key are recomputed from the text. */
  private growTable(): void {
    const size = Math.max(MIN_TABLE, this.capacity * 2);
    const table = new Int32Array(3 * size);
    table.set(this.table);
    this.table = table;
    this.capacity = size;
    this.heads = new Int32Array(size).fill(-1);
    const mask = size - 1;
    const k = this.k;
    let docIndex = 0;
    // Entries were appended in content order, so one sweep finds each entry's content.
    for (let e = 0; e < this.entries; e++) {
      const pos = table[3 * e + 1];
      while (docIndex + 1 < this.docs.length && this.docs[docIndex + 1].start <= pos) docIndex++;
      const doc = this.docs[docIndex];
      const p = pos - doc.start;
      let roll = 0;
      for (let j = 0; j < k; j++) roll = (Math.imul(roll, this.base) + doc.data[p + j]) | 0;
      const bucket = fmix32(roll) & mask;
      table[3 * e + 2] = this.heads[bucket];
      this.heads[bucket] = e;
    }
  }
}
