import { type BenchResult, wanted } from "./harness.js";
import { FlowIndex } from "../taint/index.js";

/** What `toolwarden bench` reports for content-flow detection. */
export interface FlowScanMeasurement {
  /** Median time of one `scan` of the argument against the filled index. */
  scanMedianNs: number;
  /** Throughput of `add` (raw labelled text). */
  addMBps: number;
  /** `FlowIndex.bytes` per MB of raw labelled text. */
  bytesPerMB: number;
}

export interface FlowScanOptions {
  /** Labelled output held by the index. Default 1 MB. */
  labelledBytes?: number;
  /** Size of the scanned argument. Default 4 KB. */
  argumentBytes?: number;
  /** Timed scans. Default 300. */
  scans?: number;
  /** Untimed scans first, as every other scenario warms up (the optimised scan takes a few hundred calls to arrive). Default 300. */
  warmup?: number;
}

const WORDS =
  "the of and to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part over new sound take only little work know place year live me back give most very after thing our just name good sentence man think say great where help through much before line right too mean old any same tell boy follow came want show also around form three small set put end does another well large must big even such because turn here why ask went men read need land different home us move try kind hand picture again change off play spell air away animal house point page letter mother answer found study still learn should america world".split(
    " ",
  );

const SYLLABLES =
  "ba be bi bo bu ca ce co cu da de di do du el en er es fa fe fi fo in la le li lo ma me mi mo on or ra re ri ro sa se si so ta te ti to un ve ka".split(
    " ",
  );

/**
 * Deterministic English-like text: frequent function words mixed with a few thousand rarer made-up
 * words, punctuation and capitals, so k-gram frequencies are realistic without shipping a corpus.
 */
export function prose(seed: number, bytes: number): string {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
  const out: string[] = [];
  let length = 0;
  while (length < bytes) {
    let word: string;
    if (next() % 2 === 0) word = WORDS[next() % WORDS.length];
    else {
      // One of about 48^3 = 110,000 rarer words, skewed towards the first syllables.
      const r = next();
      word =
        SYLLABLES[r % 48] + SYLLABLES[(r >>> 8) % 48] + SYLLABLES[Math.min((r >>> 16) % 48, (r >>> 24) % 48)];
    }
    const r = next();
    if (r % 13 === 0) word = `${word}.`;
    else if (r % 17 === 0) word = `${word},`;
    if (r % 19 === 0) word = word[0].toUpperCase() + word.slice(1);
    out.push(word);
    length += word.length + 1;
  }
  return out.join(" ").slice(0, bytes);
}

/**
 * Fills an index with `labelledBytes` of tool outputs (20 KB each, alternating labels) and
 * measures `add` throughput, memory held, and the median `scan` of an `argumentBytes` argument
 * that quotes 40 characters of one output (after `warmup` untimed scans). Synchronous; takes
 * about a second.
 */
export function measureFlowScan(options: FlowScanOptions = {}): FlowScanMeasurement {
  const labelledBytes = options.labelledBytes ?? 1024 * 1024;
  const argumentBytes = options.argumentBytes ?? 4096;
  const scans = options.scans ?? 300;
  const outputSize = 20 * 1024;
  const outputs: string[] = [];
  for (let done = 0, i = 0; done < labelledBytes; done += outputSize, i++) {
    outputs.push(prose(i + 1, Math.min(outputSize, labelledBytes - done)));
  }

  let index = new FlowIndex({ maxBytes: 2 ** 31 });
  let bestAddNs = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    index = new FlowIndex({ maxBytes: 2 ** 31 });
    const start = process.hrtime.bigint();
    outputs.forEach((output, i) => {
      index.add(output, [i % 2 === 0 ? "untrusted" : "private"], `tool#${i}`);
    });
    bestAddNs = Math.min(bestAddNs, Number(process.hrtime.bigint() - start));
  }

  const quoted = outputs[outputs.length >> 1].slice(1000, 1040);
  const filler = prose(0xbeef, argumentBytes - quoted.length);
  const argument = filler.slice(0, filler.length >> 1) + quoted + filler.slice(filler.length >> 1);
  if (index.scan(argument).length === 0) throw new Error("bench: the quoted stretch was not found");
  for (let i = 0; i < (options.warmup ?? 300); i++) index.scan(argument);
  const times: number[] = [];
  for (let i = 0; i < scans; i++) {
    const start = process.hrtime.bigint();
    index.scan(argument);
    times.push(Number(process.hrtime.bigint() - start));
  }
  times.sort((a, b) => a - b);
  const mb = labelledBytes / (1024 * 1024);
  return {
    scanMedianNs: times[times.length >> 1],
    addMBps: mb / (bestAddNs / 1e9),
    bytesPerMB: index.bytes / mb,
  };
}

/** `toolwarden bench` rows for flow detection: scan cost, add throughput, memory per MB. */
export async function flowScenarios(): Promise<BenchResult[]> {
  const name = "flow scan: 4 KB argument vs 1 MB of labelled output";
  if (!wanted(name)) return [];
  const m = measureFlowScan();
  return [
    {
      name,
      medianNs: m.scanMedianNs,
      p99Ns: m.scanMedianNs,
      opsPerSec: 1e9 / m.scanMedianNs,
      note: `add ${m.addMBps.toFixed(1)} MB/s; ${(m.bytesPerMB / 1e6).toFixed(1)} MB held per MB of labelled output`,
    },
  ];
}
