import { readFileSync } from "node:fs";

/** Static dashboard files by URL path. */
export type DashboardAssets = Record<string, { body: string; type: string }>;

const FILES: Array<[path: string, file: string, type: string]> = [
  ["/", "index.html", "text/html; charset=utf-8"],
  ["/dashboard/app.js", "app.js", "text/javascript; charset=utf-8"],
  ["/dashboard/style.css", "style.css", "text/css; charset=utf-8"],
];

/**
 * Reads the dashboard (plain HTML, one JS module, CSS; no build step) from `dashboard/` beside
 * this module: `src/server/dashboard` when run from source, `dist/src/server/dashboard` once built
 * (the build script copies it).
 */
export function loadDashboard(dir = new URL("./dashboard/", import.meta.url)): DashboardAssets {
  const assets: DashboardAssets = {};
  for (const [path, file, type] of FILES)
    assets[path] = { body: readFileSync(new URL(file, dir), "utf8"), type };
  return assets;
}
