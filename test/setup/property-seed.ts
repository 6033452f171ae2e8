import fc from "fast-check";

/**
 * The seed of every property test in this run (set in vitest.config.ts, printed at the start), so
 * a failure replays with TW_PROPERTY_SEED=<seed>. fast-check names it in a failing property's
 * report; checks made after a property (coverage of outcomes) name it through this export.
 */
export const propertySeed = Number(process.env.TW_PROPERTY_SEED ?? 0);

fc.configureGlobal({ seed: propertySeed });
