/**
 * Runs a tool and hands what it gave to `record` (which labels it on the session): its output,
 * the message of what it threw (rethrown), or a stream's chunks once the stream ends (joined when
 * they are all text). The one path by which `wrap` and every adapter label outputs. With `guard`,
 * a (non-stream) output goes to it instead, and what it returns is handed on: the output
 * detectors (`Warden.guardOutput`) label, mask or withhold it. Streams are not scanned.
 */
export async function runLabelled(
  run: () => unknown,
  record: (output: unknown) => void,
  guard?: (output: unknown) => unknown,
): Promise<unknown> {
  let output: unknown;
  try {
    output = await run();
  } catch (error) {
    record(error instanceof Error ? error.message : error);
    throw error;
  }
  if (isAsyncIterable(output)) return labelStream(output, record);
  if (guard) return guard(output);
  record(output);
  return output;
}

async function* labelStream<T>(
  stream: AsyncIterable<T>,
  record: (output: unknown) => void,
): AsyncGenerator<T> {
  const chunks: T[] = [];
  try {
    for await (const chunk of stream) {
      chunks.push(chunk);
      yield chunk;
    }
  } finally {
    record(chunks.every((c) => typeof c === "string") ? chunks.join("") : chunks);
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === "object" && Symbol.asyncIterator in value;
}
