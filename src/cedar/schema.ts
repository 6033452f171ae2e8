import { z } from "zod";

/**
 * `engine: { cedar }` in a policy: Cedar policies whose decisions join toolwarden's.
 * `policies` (and the optional `schema`) are paths relative to the policy file.
 */
export const cedarSchema = z
  .object({
    policies: z.string().min(1),
    schema: z.string().min(1).optional(),
  })
  .strict();

export type RawCedar = z.infer<typeof cedarSchema>;
