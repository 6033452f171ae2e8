import { ToolwardenError } from "./errors.js";

/**
 * Drivers and engines a deployment chooses (pg, ioredis, @cedar-policy/cedar-wasm, libpg-query)
 * are optional peer dependencies, so `npm install toolwarden` stays light for someone who only
 * wraps functions. When a policy or a flag needs one that is not installed, the error names it.
 */
export function missingPackageError(error: unknown, pkg: string, purpose: string): unknown {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  const missing =
    (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") &&
    typeof message === "string" &&
    (message.includes(`'${pkg}'`) || message.includes(`'${pkg}/`));
  if (!missing) return error;
  return new ToolwardenError(
    "missing_package",
    `${purpose} needs the package \`${pkg}\`, which is not installed\nhelp: npm install ${pkg}`,
    { cause: error },
  );
}

/** `await import(...)` of a module that needs the optional `pkg`, with the error above when it is absent. */
export async function importOptional<T>(pkg: string, purpose: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    throw missingPackageError(error, pkg, purpose);
  }
}
