/**
 * Glob match on lower-cased strings (`*` any run, `?` one character) in O(name × pattern) worst case,
 * with no regular expression, so a long attacker-chosen name cannot make it backtrack.
 */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let mark = 0;
  while (n < name.length) {
    const pc = pattern.charCodeAt(p);
    if (p < pattern.length && (pc === 63 /* ? */ || pc === name.charCodeAt(n))) {
      p++;
      n++;
    } else if (p < pattern.length && pc === 42 /* * */) {
      star = p++;
      mark = n;
    } else if (star >= 0) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern.charCodeAt(p) === 42) p++;
  return p === pattern.length;
}
