// Starts the whole local stack (moto, localstripe, the fixture Stripe with the local Checkout and
// portal pages, the API gateway, and the built frontend) on free ports, twice (without and with
// trials), and stops them afterwards.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const frontend = join(dirname(fileURLToPath(import.meta.url)), "..");
const workspace = join(frontend, "..");

/** Starts one local stack (all its emulators on free ports) and resolves with its frontend URL. */
async function startStack(binary: string, env: Record<string, string>): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(binary, [], {
    cwd: workspace,
    env: {
      ...process.env,
      PSS_PORT: "0",
      PSS_FRONTEND_PORT: "0",
      PSS_MOTO_PORT: "0",
      PSS_STRIPE_PORT: "0",
      PSS_LOCALSTRIPE_PORT: "0",
      RUST_LOG: process.env.RUST_LOG ?? "warn",
      ...env,
    },
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
  const stop = async () => {
    child.kill("SIGINT");
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (child.exitCode === null) child.kill("SIGKILL");
  };
  return { url, stop };
}

// Two stacks: the paid path (no trials, so a first purchase is paid with a card) for most
// specs, and one offering the default 14-day trial for trial.spec.ts (PSS_TRIAL_FRONTEND_URL).
export default async function globalSetup(): Promise<() => Promise<void>> {
  if (!existsSync(join(frontend, "dist", "index.html"))) {
    throw new Error("frontend/dist is missing: run `npm run build` first");
  }
  const binary = process.env.PSS_LOCAL_STACK_BIN ?? join(workspace, "target", "debug", "local-stack");
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: build it with \`cargo build -p pss-local\``);
  }
  const paid = await startStack(binary, { TRIAL_DAYS: "0" });
  const trial = await startStack(binary, { TRIAL_DAYS: "14" });
  process.env.PSS_FRONTEND_URL = paid.url;
  process.env.PSS_TRIAL_FRONTEND_URL = trial.url;
  console.log(`local stacks: frontend at ${paid.url} (no trials), ${trial.url} (14-day trials)`);
  return async () => {
    await Promise.all([paid.stop(), trial.stop()]);
  };
}
