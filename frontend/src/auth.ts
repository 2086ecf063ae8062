// The portal's bearer JWT. The portal hosting these pages stores it under TOKEN_KEY; locally the
// dev sign-in does. The claims are decoded only to adapt the UI (the API verifies the token).

export const TOKEN_KEY = "pss.token";

export type Role = "Owner" | "Admin" | "Member";

export interface Session {
  token: string;
  org: string;
  user: string;
  role: Role;
}

function decodeClaims(token: string): Record<string, unknown> | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const claims: unknown = JSON.parse(json);
    return claims && typeof claims === "object" ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function sessionFromToken(token: string): Session | null {
  const claims = decodeClaims(token);
  if (!claims) return null;
  const role = String(claims.role ?? "");
  const normalized: Role =
    role.toLowerCase() === "owner" ? "Owner" : role.toLowerCase() === "admin" ? "Admin" : "Member";
  return {
    token,
    org: String(claims.org_id ?? ""),
    user: String(claims.sub ?? ""),
    role: normalized,
  };
}

export function loadSession(): Session | null {
  const token = window.sessionStorage.getItem(TOKEN_KEY);
  return token ? sessionFromToken(token) : null;
}

export function saveToken(token: string | null): void {
  if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
  else window.sessionStorage.removeItem(TOKEN_KEY);
}

export function canManageBilling(session: Session | null): boolean {
  return session?.role === "Owner" || session?.role === "Admin";
}
