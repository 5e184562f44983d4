import { useState, type FormEvent } from "react";
import { useQuery, useMutation } from "convex/react";
import { api } from "../convex/_generated/api";

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
    </main>
  );
}

export default App;
