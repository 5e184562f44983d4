// The "no sandbox" baseline: a hand-written Node.js server doing the bench
// workloads directly on SQLite (better-sqlite3), in WAL mode with
// synchronous=FULL (every acknowledged write is on disk, as in cvx).
//
// It speaks the same HTTP shape as cvx (POST /api/query|mutation|action with
// {"path": "bench:get", "args": [{...}]} -> {"status": "success", "value": ...})
// so the load generator sends byte-identical requests to both. Documents come
// back with _id and _creationTime like Convex documents.
//
// Fan-out (f): a WebSocket endpoint /ws; a client sends {"sub": "<counter>"}
// and gets {"value": n} now and after every bench:incr of that counter.
//
// usage: node server.js --data DIR [--port 0]   (prints NODE_PORT=<n>)
'use strict';
const http = require('http');
const crypto = require('crypto');
const path = require('path');
const fs = require('fs');
const Database = require('better-sqlite3');
const { WebSocketServer } = require('ws');

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const dataDir = opt('--data', './node-data');
const port = Number(opt('--port', '0'));
fs.mkdirSync(dataDir, { recursive: true });

const db = new Database(path.join(dataDir, 'bench.sqlite3'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(`
  CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, ct REAL NOT NULL, name TEXT, email TEXT, n REAL);
  CREATE INDEX IF NOT EXISTS users_by_n ON users (n, ct, id);
  CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, ct REAL NOT NULL, kind TEXT, n REAL, payload TEXT);
  CREATE TABLE IF NOT EXISTS counters (id TEXT PRIMARY KEY, ct REAL NOT NULL, name TEXT, count REAL);
  CREATE INDEX IF NOT EXISTS counters_by_name ON counters (name, ct, id);
  CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, ct REAL NOT NULL, n REAL, balance REAL);
  CREATE INDEX IF NOT EXISTS accounts_by_n ON accounts (n, ct, id);
`);

let lastCt = 0;
const newId = () => crypto.randomBytes(16).toString('hex');
const creationTime = () => {
  let t = Date.now();
  if (t <= lastCt) t = lastCt + 0.001;
  lastCt = t;
  return t;
};
const userDoc = (r) => r && { _id: r.id, _creationTime: r.ct, name: r.name, email: r.email, n: r.n };

const st = {
  getUser: db.prepare('SELECT id, ct, name, email, n FROM users WHERE id = ?'),
  range: db.prepare('SELECT id, ct, name, email, n FROM users WHERE n >= ? ORDER BY n, ct, id LIMIT 100'),
  insertUser: db.prepare('INSERT INTO users (id, ct, name, email, n) VALUES (?, ?, ?, ?, ?)'),
  insertEvent: db.prepare('INSERT INTO events (id, ct, kind, n, payload) VALUES (?, ?, ?, ?, ?)'),
  counterByName: db.prepare('SELECT id, count FROM counters WHERE name = ? ORDER BY name, ct, id LIMIT 1'),
  counterSet: db.prepare('UPDATE counters SET count = ? WHERE id = ?'),
  counterInsert: db.prepare('INSERT INTO counters (id, ct, name, count) VALUES (?, ?, ?, ?)'),
  insertAccount: db.prepare('INSERT INTO accounts (id, ct, n, balance) VALUES (?, ?, ?, ?)'),
  accountByN: db.prepare('SELECT id, balance FROM accounts WHERE n = ? ORDER BY n, ct, id LIMIT 1'),
  accountSet: db.prepare('UPDATE accounts SET balance = ? WHERE id = ?'),
  balanceSum: db.prepare('SELECT COALESCE(SUM(balance), 0) AS s FROM accounts WHERE n >= ? AND n < ?'),
  balanceWsum: db.prepare('SELECT COALESCE(SUM(n * (balance - ?)), 0) AS s FROM accounts WHERE n >= ? AND n < ?'),
};

const subscribers = new Map(); // counter name -> Set of sockets

const incr = db.transaction((name) => {
  const row = st.counterByName.get(name);
  if (row) {
    st.counterSet.run(row.count + 1, row.id);
    return row.count + 1;
  }
  st.counterInsert.run(newId(), creationTime(), name, 1);
  return 1;
});

const transfer = db.transaction((from, to, amount) => {
  if (from === to || amount <= 0) return false;
  const a = st.accountByN.get(from);
  const b = st.accountByN.get(to);
  if (!a || !b || a.balance < amount) return false;
  st.accountSet.run(a.balance - amount, a.id);
  st.accountSet.run(b.balance + amount, b.id);
  return true;
});

const fns = {
  'bench:seed_users': db.transaction(({ start, count }) => {
    const ids = [];
    for (let i = 0; i < count; i++) {
      const n = start + i;
      const id = newId();
      st.insertUser.run(id, creationTime(), `user ${n}`, `user${n}@example.com`, n);
      ids.push(id);
    }
    return ids;
  }),
  'bench:seed_accounts': db.transaction(({ start, count, balance }) => {
    for (let i = 0; i < count; i++) st.insertAccount.run(newId(), creationTime(), start + i, balance);
    return count;
  }),
  'bench:balance_sum': ({ start, count }) => st.balanceSum.get(start, start + count).s,
  // the transfer invariant (bench/README.md): sum of n * (balance - base)
  'bench:balance_wsum': ({ start, count, base }) => st.balanceWsum.get(base, start, start + count).s,
  'bench:get': ({ id }) => userDoc(st.getUser.get(id)) || null,
  'bench:range100': ({ start }) => st.range.all(start).map(userDoc),
  'bench:insert': ({ n }) => {
    const id = newId();
    st.insertEvent.run(id, creationTime(), 'bench', n, '0123456789abcdef0123456789abcdef');
    return id;
  },
  'bench:incr': ({ name }) => {
    const v = incr(name);
    const subs = subscribers.get(name);
    if (subs) {
      const msg = JSON.stringify({ name, value: v });
      for (const ws of subs) ws.send(msg);
    }
    return v;
  },
  'bench:counter': ({ name }) => {
    const row = st.counterByName.get(name);
    return row ? row.count : 0;
  },
  // (e) "an action calling a mutation": here just a function call.
  'bench:act_insert': ({ n }) => fns['bench:insert']({ n }),
  'bench:transfer': ({ from, to, amount }) => transfer(from, to, amount),
};

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || !req.url.startsWith('/api/')) {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"code":"NotFound"}');
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let out;
    let status = 200;
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const fn = fns[body.path];
      if (!fn) {
        out = { status: 'error', errorMessage: `Could not find public function for '${body.path}'` };
      } else {
        out = { status: 'success', value: fn((body.args && body.args[0]) || {}) };
      }
    } catch (e) {
      status = 500;
      out = { status: 'error', errorMessage: String(e && e.message) };
    }
    const s = JSON.stringify(out);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s) });
    res.end(s);
  });
});
server.keepAliveTimeout = 60000;

const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
wss.on('connection', (ws) => {
  let subscribed = null;
  ws.on('message', (data) => {
    let m;
    try {
      m = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (m.sub) {
      subscribed = m.sub;
      if (!subscribers.has(m.sub)) subscribers.set(m.sub, new Set());
      subscribers.get(m.sub).add(ws);
      const row = st.counterByName.get(m.sub);
      ws.send(JSON.stringify({ name: m.sub, value: row ? row.count : 0 }));
    }
  });
  ws.on('close', () => {
    if (subscribed && subscribers.has(subscribed)) subscribers.get(subscribed).delete(ws);
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`NODE_PORT=${server.address().port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  db.close();
  process.exit(0);
});
