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
// Two variants a reasonable Node user would reach for (bench/README.md):
//   --cluster N  N processes (node:cluster) share the port, each with its own
//                connection to the one database: reads scale across cores;
//                writes still take SQLite's one write lock in turn.
//   --batch      micro-batched commits: the writes that arrive in one turn of
//                the event loop run in one SQLite transaction (each in its own
//                savepoint, so one failing rolls back only itself) and one
//                fsync covers them all; every answer waits for that commit.
//
// usage: node server.js --data DIR [--port 0] [--cluster N] [--batch]
//        (prints NODE_PORT=<n>)
'use strict';
const cluster = require('cluster');
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
const nproc = Number(opt('--cluster', '1'));
const batchMode = argv.includes('--batch');
fs.mkdirSync(dataDir, { recursive: true });

if (nproc > 1 && cluster.isPrimary) {
  // The primary only forks and relays the port; the workers serve. Each
  // worker's pid is printed so the harness can count their CPU. The port is
  // announced once every worker listens: the primary hands connections
  // only to workers that have, and a client's keep-alive connections would
  // otherwise all land on the first.
  let listening = 0;
  for (let i = 0; i < nproc; i++) {
    const w = cluster.fork();
    w.on('message', (m) => {
      if (m && m.port && ++listening === nproc) process.stdout.write(`NODE_PORT=${m.port}\n`);
    });
    w.on('exit', (code) => {
      if (listening < nproc) {
        process.stdout.write(`NODE_FAILED=a worker exited (${code}) before listening\n`);
        process.exit(1);
      }
    });
  }
  process.stdout.write(`NODE_WORKERS=${Object.values(cluster.workers).map((w) => w.process.pid).join(',')}\n`);
  process.on('SIGTERM', () => {
    // exit after the workers have closed the database (not before: the
    // harness deletes the data directory once this process is gone)
    const workers = Object.values(cluster.workers);
    let left = workers.length;
    const done = () => --left <= 0 && process.exit(0);
    for (const w of workers) (w.once('exit', done), w.process.kill('SIGTERM'));
    if (!left) process.exit(0);
    setTimeout(() => process.exit(0), 10000).unref();
  });
  return;
}

const db = new Database(path.join(dataDir, 'bench.sqlite3'));
db.pragma('busy_timeout = 10000'); // --cluster: the other process may hold the lock
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
  accountFull: db.prepare('SELECT id, ct, n, balance FROM accounts WHERE n = ? ORDER BY n, ct, id LIMIT 1'),
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
  'bench:account': ({ n }) => {
    const r = st.accountFull.get(n);
    return r ? { _id: r.id, _creationTime: r.ct, n: r.n, balance: r.balance } : null;
  },
  'bench:range100': ({ start }) => st.range.all(start).map(userDoc),
  'bench:insert': ({ n }) => {
    const id = newId();
    st.insertEvent.run(id, creationTime(), 'bench', n, '0123456789abcdef0123456789abcdef');
    return id;
  },
  // BEGIN IMMEDIATE: with --cluster, a deferred transaction that read and
  // then wants to write fails with "database is locked" instead of waiting
  'bench:incr': ({ name }) => incr.immediate(name),
  'bench:counter': ({ name }) => {
    const row = st.counterByName.get(name);
    return row ? row.count : 0;
  },
  // (e) "an action calling a mutation": here just a function call.
  'bench:act_insert': ({ n }) => fns['bench:insert']({ n }),
  'bench:transfer': ({ from, to, amount }) => transfer.immediate(from, to, amount),
};

// Subscribers hear of a new counter value once it is committed.
function notify(path, args, value) {
  if (path !== 'bench:incr') return;
  const subs = subscribers.get(args.name);
  if (subs) {
    const msg = JSON.stringify({ name: args.name, value });
    for (const ws of subs) ws.send(msg);
  }
}

const WRITES = new Set(['bench:insert', 'bench:incr', 'bench:transfer', 'bench:act_insert']);
let batch = [];
function runBatch() {
  const jobs = batch;
  batch = [];
  try {
    db.transaction(() => {
      for (const j of jobs) {
        try {
          // incr and transfer are db.transaction functions: nested here,
          // better-sqlite3 runs them in a savepoint of this transaction.
          j.value = fns[j.path](j.args);
          j.ok = true;
        } catch (e) {
          j.err = e;
          // some errors (I/O, disk full) make SQLite roll the whole
          // transaction back: the rest must not run in autocommit
          if (!db.inTransaction) throw e;
        }
      }
    }).immediate();
  } catch (e) {
    // nothing committed: every job fails, with this error unless it had its own
    for (const j of jobs) if (j.ok || !j.err) (j.ok = false), (j.err = e);
  }
  for (const j of jobs) {
    if (j.ok) notify(j.path, j.args, j.value);
    j.done(j.ok ? { status: 'success', value: j.value } : { status: 'error', errorMessage: String(j.err && j.err.message) }, j.ok ? 200 : 500);
  }
}

function reply(res, out, status) {
  const s = JSON.stringify(out);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s) });
  res.end(s);
}

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
      const args = (body.args && body.args[0]) || {};
      if (!fn) {
        out = { status: 'error', errorMessage: `Could not find public function for '${body.path}'` };
      } else if (batchMode && WRITES.has(body.path)) {
        if (batch.length === 0) setImmediate(runBatch);
        batch.push({ path: body.path, args, done: (o, st) => reply(res, o, st) });
        return;
      } else {
        const value = fn(args);
        notify(body.path, args, value);
        out = { status: 'success', value };
      }
    } catch (e) {
      status = 500;
      out = { status: 'error', errorMessage: String(e && e.message) };
    }
    reply(res, out, status);
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
  if (cluster.isWorker) process.send({ port: server.address().port });
  else process.stdout.write(`NODE_PORT=${server.address().port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  db.close();
  process.exit(0);
});
