/** Money is kept as integer micro-units (1e-6) so sums are exact: 0.1 + 0.2 spends exactly 0.3. */
export const MICROS_PER_UNIT = 1_000_000;

/** Amount in micro-units, or NaN when it cannot be spent (not finite or negative). */
export function toMicros(amount: number): number {
  if (!Number.isFinite(amount) || amount < 0) return Number.NaN;
  return Math.round(amount * MICROS_PER_UNIT);
}

/** A budget maximum in micro-units; an infinite maximum becomes the largest exact integer. */
export function maxToMicros(max: number): number {
  if (max === Number.POSITIVE_INFINITY) return Number.MAX_SAFE_INTEGER;
  if (Number.isNaN(max) || max < 0) return 0;
  return Math.min(Math.round(max * MICROS_PER_UNIT), Number.MAX_SAFE_INTEGER);
}

export function fromMicros(micros: number): number {
  return micros / MICROS_PER_UNIT;
}
