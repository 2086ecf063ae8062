// Runtime configuration, read once from `/env.json` next to index.html, so one build serves any
// API (the local stack writes it; a deployment ships its own). `devUsers` exists only locally.

export interface DevUser {
  label: string;
  org: string;
  role: string;
  token: string;
}

export interface AppConfig {
  apiBaseUrl: string;
  devUsers: DevUser[];
}

let loaded: AppConfig | undefined;

export async function loadConfig(): Promise<AppConfig> {
  if (loaded) return loaded;
  const fallback: AppConfig = {
    apiBaseUrl: import.meta.env.VITE_API_BASE_URL ?? "http://127.0.0.1:3000",
    devUsers: [],
  };
  try {
    const reply = await fetch("/env.json", { cache: "no-store" });
    if (reply.ok) {
      const body = (await reply.json()) as Partial<AppConfig>;
      loaded = {
        apiBaseUrl: body.apiBaseUrl ?? fallback.apiBaseUrl,
        devUsers: body.devUsers ?? [],
      };
      return loaded;
    }
  } catch {
    // No env.json (vite dev server): the build-time default applies.
  }
  loaded = fallback;
  return loaded;
}
