// Starts the whole local stack (moto, localstripe, the fixture Stripe with the local Checkout and
// portal pages, the API gateway, and the built frontend) on free ports, and stops it afterwards.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const frontend = join(dirname(fileURLToPath(import.meta.url)), "..");
const workspace = join(frontend, "..");

export default async function globalSetup(): Promise<() => Promise<void>> {
  if (!existsSync(join(frontend, "dist", "index.html"))) {
    throw new Error("frontend/dist is missing: run `npm run build` first");
  }
  const binary = process.env.PSS_LOCAL_STACK_BIN ?? join(workspace, "target", "debug", "local-stack");
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: build it with \`cargo build -p pss-local\``);
  }
  const child = spawn(binary, [], {
    cwd: workspace,
    env: { ...process.env, PSS_PORT: "0", PSS_FRONTEND_PORT: "0", RUST_LOG: process.env.RUST_LOG ?? "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`local stack did not start:\n${output}`)), 120_000);
    const scan = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Frontend\s+(http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on("data", scan);
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`local stack exited with ${code}:\n${output}`));
    });
  });
  process.env.PSS_FRONTEND_URL = url;
  console.log(`local stack: frontend at ${url}`);
  return async () => {
    child.kill("SIGINT");
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (child.exitCode === null) child.kill("SIGKILL");
  };
}
