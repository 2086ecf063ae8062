// Fails when src/api/schema.d.ts is not exactly what openapi-typescript generates from the
// committed openapi.json. Fix with `npm run gen:api`.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(join(tmpdir(), "pss-api-types-"));
const fresh = join(dir, "schema.d.ts");
try {
  execFileSync(
    join(root, "node_modules", ".bin", "openapi-typescript"),
    [join(root, "..", "openapi.json"), "-o", fresh],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const committed = readFileSync(join(root, "src", "api", "schema.d.ts"), "utf8");
  if (readFileSync(fresh, "utf8") !== committed) {
    console.error(
      "src/api/schema.d.ts is out of date with openapi.json: run `npm run gen:api` in frontend/",
    );
    process.exit(1);
  }
  console.log("api types: src/api/schema.d.ts matches openapi.json");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
