import { useState, type FormEvent } from "react";
import { useConvex, useQuery, useMutation } from "convex/react";
import { ConvexError } from "convex/values";
import { api } from "../convex/_generated/api";

// A development shortcut for signing in (README.md, "Signing in"): a URL that
// answers ?sub=NAME with a token for the user NAME, as the raw token or as
// JSON {"token": ...}. A real app uses its provider's SDK instead.
const tokenUrl: string | undefined = import.meta.env.VITE_AUTH_TOKEN_URL;

function App() {
  // api.users.list and api.users.create are the functions in convex/ (see
  // README.md for which language each is in); the list updates live.
  const users = useQuery(api.users.list);
  const createUser = useMutation(api.users.create);
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");

  async function submit(e: FormEvent) {
    e.preventDefault();
    await createUser({ name, email });
    setName("");
    setEmail("");
  }

  return (
    <main style={{ fontFamily: "system-ui", maxWidth: 480, margin: "2rem auto" }}>
      <h1>Users</h1>
      <form onSubmit={submit}>
        <input aria-label="name" placeholder="Name" value={name} onChange={(e) => setName(e.target.value)} />
        <input aria-label="email" placeholder="Email" value={email} onChange={(e) => setEmail(e.target.value)} />
        <button type="submit">Add user</button>
      </form>
      {users === undefined ? (
        <p>Loading…</p>
      ) : (
        <ul id="users">
          {users.map((u) => (
            <li key={u._id}>
              {u.name} &lt;{u.email}&gt;
            </li>
          ))}
        </ul>
      )}
      <SignIn />
      <Notes />
    </main>
  );
}

/** Who is signed in (api.users.me), and signing in and out. */
function SignIn() {
  const convex = useConvex();
  const me = useQuery(api.users.me);
  const [user, setUser] = useState("");
  const [refused, setRefused] = useState(false);

  function signIn(e: FormEvent) {
    e.preventDefault();
    if (!tokenUrl || !user.trim()) return;
    const sub = user.trim();
    setRefused(false);
    // The client calls this for a token when it connects and again before
    // the token expires; every call here fetches a fresh one.
    convex.setAuth(
      async () => {
        const q = new URLSearchParams({ sub, name: sub });
        const r = await fetch(`${tokenUrl}?${q}`);
        if (!r.ok) return null;
        const body = (await r.text()).trim();
        return body.startsWith("{") ? (JSON.parse(body).token ?? null) : body;
      },
      (ok) => setRefused(!ok),
    );
  }

  function signOut() {
    convex.clearAuth();
    setRefused(false);
  }

  return (
    <section>
      <h2>Sign in</h2>
      <p id="me">
        {me === undefined ? "…" : me === null ? "Not signed in" : `Signed in as ${me.name ?? me.email ?? me.tokenIdentifier}`}
      </p>
      {tokenUrl ? (
        <form onSubmit={signIn}>
          <input aria-label="user name" placeholder="User name" value={user} onChange={(e) => setUser(e.target.value)} />
          <button type="submit">Sign in</button>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </form>
      ) : (
        <p>Sign-in is not set up: see "Signing in" in README.md.</p>
      )}
      {refused && <p role="alert">The server refused the token.</p>}
    </section>
  );
}

/** The signed-in user's own notes (api.notes.mine), live. */
function Notes() {
  const notes = useQuery(api.notes.mine);
  const addNote = useMutation(api.notes.add);
  const [text, setText] = useState("");
  const [error, setError] = useState("");

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError("");
    try {
      await addNote({ text });
      setText("");
    } catch (err) {
      // ConvexError data from the function ("sign in to add notes").
      setError(err instanceof ConvexError ? String(err.data) : "could not add the note");
    }
  }

  return (
    <section>
      <h2>My notes</h2>
      <form onSubmit={submit}>
        <input aria-label="note" placeholder="Note" value={text} onChange={(e) => setText(e.target.value)} />
        <button type="submit">Add note</button>
      </form>
      {error && <p role="alert">{error}</p>}
      {notes === undefined ? (
        <p>Loading…</p>
      ) : (
        <ul id="notes">
          {notes.map((n) => (
            <li key={n._id}>{n.text}</li>
          ))}
        </ul>
      )}
    </section>
  );
}

export default App;
