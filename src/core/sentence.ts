/** A reason as a clause: without the full stop a policy message may end with, so text can follow it. */
export function clause(text: string): string {
  return text.trimEnd().replace(/\.+$/, "");
}

/** A reason as one sentence: ends with exactly one stop (`...sink.` stays, `...sink` gets one). */
export function sentence(text: string): string {
  const trimmed = text.trimEnd();
  return /[.!?…]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}
