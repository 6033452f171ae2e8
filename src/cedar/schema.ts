import { z } from "zod";

/**
 * `engine:` in a policy: external authorization engines whose decisions join toolwarden's.
 * `cedar.policies` (and the optional `cedar.schema`) are paths relative to the policy file.
 */
export const engineSchema = z
  .object({
    cedar: z
      .object({
        policies: z.string().min(1),
        schema: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type RawEngine = z.infer<typeof engineSchema>;
