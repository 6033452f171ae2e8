import type { Finding } from "../core/index.js";

/**
 * The findings of one argument, each distinct (code, message) once: a walker that meets the same
 * problem in ten places of a tree reports it once.
 */
export class FindingList {
  private seen: Set<string> | undefined;

  constructor(
    protected readonly arg: string,
    private readonly out: Finding[],
  ) {}

  protected report(code: string, message: string) {
    const key = `${code}\u0000${message}`;
    this.seen ??= new Set();
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.out.push({ code, message, arg: this.arg });
  }
}
