import { useState } from "react";
import { useApp } from "../context";
import { navigate } from "../router";

/** Local development only: pick a user whose token the local stack minted. */
export function SignInPage() {
  const { config, session, signIn } = useApp();
  const [pasted, setPasted] = useState("");
  return (
    <section aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in</h1>
      {session && (
        <p>
          Signed in as <strong>{session.role}</strong> of <strong>{session.org}</strong>.
        </p>
      )}
      {config.devUsers.length > 0 ? (
        <>
          <p>Local development: choose who you are. The local stack minted these tokens.</p>
          <ul className="dev-users">
            {config.devUsers.map((user) => (
              <li key={user.label}>
                <button
                  type="button"
                  onClick={() => {
                    signIn(user.token);
                    navigate("/");
                  }}
                >
                  {user.label}
                </button>
              </li>
            ))}
          </ul>
        </>
      ) : (
        <p>In the CRM the portal signs you in. To try the API by hand, paste a bearer token.</p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (pasted.trim()) {
            signIn(pasted.trim());
            navigate("/");
          }
        }}
      >
        <label htmlFor="token">Bearer token</label>
        <input id="token" value={pasted} onChange={(e) => setPasted(e.target.value)} autoComplete="off" />
        <button type="submit">Use this token</button>
      </form>
      {session && (
        <button type="button" onClick={() => signIn(null)}>
          Sign out
        </button>
      )}
    </section>
  );
}
