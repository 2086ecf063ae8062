// Prints the production bundle's JavaScript size, raw and gzipped (target: <= 150 KB gzipped).
import { readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const assets = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "assets");
let raw = 0;
let gzipped = 0;
for (const name of readdirSync(assets)) {
  if (!name.endsWith(".js")) continue;
  const bytes = readFileSync(join(assets, name));
  raw += bytes.length;
  gzipped += gzipSync(bytes, { level: 9 }).length;
}
const kb = (n) => (n / 1024).toFixed(1);
const verdict = gzipped <= 150 * 1024 ? "within" : "OVER";
console.log(`bundle: ${kb(raw)} KB JS, ${kb(gzipped)} KB gzipped (${verdict} the 150 KB target)`);
