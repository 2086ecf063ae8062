// Starts the whole local stack (moto, localstripe, the fixture Stripe with the local Checkout and
// portal pages, the API gateway, and the built frontend) on free ports, twice (without and with
// trials), and stops them afterwards.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const frontend = join(dirname(fileURLToPath(import.meta.url)), "..");
const workspace = join(frontend, "..");

/** Starts one local stack (all its emulators on free ports) and resolves with its frontend URL
 * and its fixture Stripe's (whose `/_test/...` controls a spec may call). */
async function startStack(
  binary: string,
  env: Record<string, string>,
): Promise<{ url: string; stripeUrl: string; stop: () => Promise<void> }> {
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
  const [url, stripeUrl] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`local stack did not start:\n${output}`)), 120_000);
    const scan = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Frontend\s+(http:\/\/\S+)/.exec(output);
      // The banner's line for the emulated Stripe: "Stripe API for the functions http://...  (checkout, ...".
      const stripe = /Stripe API for the functions\s+(http:\/\/\S+)/.exec(output);
      if (match?.[1] && stripe?.[1]) {
        clearTimeout(timer);
        resolve([match[1], stripe[1]]);
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
  return { url, stripeUrl, stop };
}

// Three stacks: the paid path (no trials, so a first purchase is paid with a card) for most
// specs, one offering the default 14-day trial for trial.spec.ts (PSS_TRIAL_FRONTEND_URL), and a
// paid-path one whose fixture clock manage.spec.ts moves a month ahead to make a renewal fail
// (PSS_CLOCK_FRONTEND_URL, PSS_CLOCK_STRIPE_URL): moving the clock of a shared stack would put
// its Stripe time ahead of the API's for every later spec (proration dates, renewal dates).
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
  const clock = await startStack(binary, { TRIAL_DAYS: "0" });
  process.env.PSS_FRONTEND_URL = paid.url;
  process.env.PSS_STRIPE_URL = paid.stripeUrl;
  process.env.PSS_TRIAL_FRONTEND_URL = trial.url;
  process.env.PSS_TRIAL_STRIPE_URL = trial.stripeUrl;
  process.env.PSS_CLOCK_FRONTEND_URL = clock.url;
  process.env.PSS_CLOCK_STRIPE_URL = clock.stripeUrl;
  console.log(`local stacks: frontend at ${paid.url} (no trials), ${trial.url} (14-day trials), ${clock.url} (its clock is moved)`);
  return async () => {
    await Promise.all([paid.stop(), trial.stop(), clock.stop()]);
  };
}
