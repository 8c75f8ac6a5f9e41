import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createStorage, MemoryStorage, PostgresStorage, SqliteStorage, type ServerStorage } from '../../src/server/storage'
import { decodeEntry, encodeEntry } from '../../src/server/storage/types'
import type { FieldMeta } from '../../src/core/protocol'
import { countTurns } from './helpers'
import { makeEntries, makeEntry, runStorageConformance } from './storage-conformance'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

// ---- memory -------------------------------------------------------------------------------------

const memory = new MemoryStorage()
runStorageConformance('memory', async () => createStorage(memory))

// ---- sqlite -------------------------------------------------------------------------------------

// Created on first use, so a run filtered to other suites leaves no temp dir behind.
let sqliteDir: string | undefined
runStorageConformance(
  'sqlite',
  () => {
    sqliteDir ??= mkdtempSync(path.join(os.tmpdir(), 'zync-sqlite-test-'))
    return createStorage({ kind: 'sqlite', file: path.join(sqliteDir, 'zync.db') })
  },
  async () => {
    if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true })
  },
)

// ---- postgres -----------------------------------------------------------------------------------

const pgUrl = inject('pgUrl')
const pgSchema = `zync_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`

async function dropSchemas(...schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: pgUrl })
  await client.connect()
  try {
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
  } finally {
    await client.end()
  }
}

runStorageConformance(
  'postgres',
  () => createStorage({ kind: 'postgres', url: pgUrl, schema: pgSchema }),
  () => dropSchemas(pgSchema),
)

// ---- beyond the shared contract -------------------------------------------------------------------

describe('createStorage', () => {
  it('builds each kind and initializes it', async () => {
    const mem = await createStorage({ kind: 'memory' })
    expect(mem).toBeInstanceOf(MemoryStorage)

    const dir = mkdtempSync(path.join(os.tmpdir(), 'zync-create-'))
    try {
      const lite = await createStorage({ kind: 'sqlite', file: path.join(dir, 'x.db') })
      expect(lite).toBeInstanceOf(SqliteStorage)
      expect(lite.kind).toBe('sqlite')
      expect(await lite.head('d')).toBe(0)
      await lite.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }

    const schema = `${pgSchema}_create`
    const pgs = await createStorage({ kind: 'postgres', url: pgUrl, schema })
    try {
      expect(pgs).toBeInstanceOf(PostgresStorage)
      expect(pgs.kind).toBe('postgres')
      expect(await pgs.head('d')).toBe(0)
    } finally {
      await pgs.close()
      await dropSchemas(schema)
    }
  })

  it('initializes and returns a storage instance it is given', async () => {
    const mem = new MemoryStorage()
    expect(await createStorage(mem)).toBe(mem)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zync-create-'))
    try {
      const lite = new SqliteStorage({ file: path.join(dir, 'y.db') })
      await expect(lite.head('d')).rejects.toThrow(/init/)
      expect(await createStorage(lite)).toBe(lite)
      expect(await lite.head('d')).toBe(0)
      await lite.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('rejects an unknown kind', async () => {
    await expect(createStorage({ kind: 'nope' } as never)).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/kind must be 'memory', 'sqlite' or 'postgres' \(got "nope"\)/) })
  })
})

describe('SqliteStorage specifics', () => {
  let dir = ''
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'zync-sqlite-spec-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('uses WAL with synchronous=FULL and a busy timeout', async () => {
    const file = path.join(dir, 'pragmas.db')
    const s = new SqliteStorage({ file })
    await s.init()
    const db = (s as unknown as { db: Database.Database }).db
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(db.pragma('synchronous', { simple: true })).toBe(2) // FULL
    expect(db.pragma('busy_timeout', { simple: true })).toBeGreaterThan(0)
    await s.close()
    // WAL is a property of the file: another connection sees it too.
    const other = new Database(file, { readonly: true })
    expect(other.pragma('journal_mode', { simple: true })).toBe('wal')
    other.close()
  })

  it('another process holding the write lock: a write waits busyTimeoutMs once, then writes fail at once for a while instead of blocking the event loop each time', async () => {
    // An operator trial: a sqlite3 shell with a transaction open made every write wait 5 s on the event
    // loop; /healthz and /readyz went unanswered and clients were cut off.
    const file = path.join(dir, 'busy.db')
    const s = new SqliteStorage({ file, busyTimeoutMs: 300 })
    await s.init()
    await s.append('d', makeEntries(1, 1))
    const shell = new Database(file)
    shell.exec('BEGIN IMMEDIATE')
    const took = async (p: Promise<unknown>) => {
      const t0 = performance.now()
      const err = await p.then(() => undefined, (e: unknown) => e)
      return { ms: performance.now() - t0, err: String((err as Error | undefined)?.message) }
    }
    const snapshot = { seq: 1, state: {}, vv: {} } as never
    const first = await took(s.saveSnapshot('d', snapshot))
    expect(first.err).toMatch(/database is locked/)
    expect(first.ms).toBeGreaterThanOrEqual(250)
    const second = await took(s.probeWrite!())
    expect(second.err).toMatch(/another process holds its write lock/)
    expect(second.ms).toBeLessThan(150)
    await expect(s.append('d', makeEntries(2, 2))).rejects.toThrow(/another process holds its write lock/)
    await expect(s.saveSnapshot('d', snapshot)).rejects.toThrow(/another process holds its write lock/)
    // Reads go on.
    expect(await s.head('d')).toBe(1)
    shell.exec('COMMIT')
    shell.close()
    await new Promise((r) => setTimeout(r, 2100))
    await s.append('d', makeEntries(2, 2))
    expect(await s.head('d')).toBe(2)
    await s.close()
  })

  it('the database file deleted or replaced under a running server: writes are refused (they would be lost with it), reads go on', async () => {
    // An operator trial deleted the files of a running server: it went on acknowledging writes into the
    // unlinked file, all gone at the restart.
    for (const how of ['deleted', 'replaced'] as const) {
      const file = path.join(dir, `gone-${how}.db`)
      const s = new SqliteStorage({ file })
      await s.init()
      await s.append('d', makeEntries(1, 1))
      if (how === 'deleted') for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true })
      else {
        rmSync(file)
        writeFileSync(file, '') // a restore copied over it, say
      }
      const refused = new RegExp(`the SQLite file "${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" was ${how} while the server runs: writes are refused`)
      await expect(s.append('d', makeEntries(2, 2))).rejects.toThrow(refused)
      await expect(s.probeWrite!()).rejects.toThrow(refused)
      await expect(s.saveSnapshot('d', { seq: 1, state: {}, vv: {} } as never)).rejects.toThrow(refused)
      expect(await s.head('d')).toBe(1)
      await s.close()
    }
  })

  it('probeWrite() fails on a nearly full database, where a write of a few bytes still fits but a client batch does not', async () => {
    // An operator trial on a 2 MB tmpfs: the probe's one small row fit, /readyz said "up" and the
    // outage was logged over and over, while every append was refused.
    const file = path.join(dir, 'full.db')
    const s = new SqliteStorage({ file })
    await s.init()
    const db = (s as unknown as { db: Database.Database }).db
    await s.append('d', makeEntries(1, 20))
    // SQLite's own "database or disk is full": no room for more than a few pages.
    db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true })) + 8}`)
    const big = makeEntries(21, 21, () => ({ value: 'v'.repeat(200_000) }))
    await expect(s.append('d', big)).rejects.toThrow(/full/)
    await expect(s.probeWrite!()).rejects.toThrow(/full/)
    expect(await s.head('d')).toBe(20)
    // Room again: the probe passes, and the space it freed takes the batch.
    db.pragma('max_page_count = 1073741823')
    await s.probeWrite!()
    await s.append('d', big)
    expect(await s.head('d')).toBe(21)
    await s.close()
  })

  // Child processes share the file for real (separate connections, separate locks), unlike two
  // instances in this process whose synchronous calls never overlap.
  const child = (file: string, script: string, args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', script, file, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      p.stdout.on('data', (d) => (stdout += d))
      p.stderr.on('data', (d) => (stderr += d))
      p.on('error', reject)
      p.on('close', (code) => resolve({ code, stdout, stderr }))
    })

  const storageModule = path.join(root, 'src/server/storage/sqlite.ts')
  const typesModule = path.join(root, 'src/server/storage/types.ts')

  it('keeps the log gapless when several processes append to one file', async () => {
    const file = path.join(dir, 'multi.db')
    const script = path.join(dir, 'racer.mts')
    writeFileSync(
      script,
      `import { SqliteStorage } from ${JSON.stringify(storageModule)}
import { AppendConflictError } from ${JSON.stringify(typesModule)}
const [file, name, target] = process.argv.slice(2)
const s = new SqliteStorage({ file, busyTimeoutMs: 20000 })
await s.init()
const won = []
let lost = 0
for (;;) {
  const head = await s.head('doc')
  if (head >= Number(target)) break
  const opId = name + '-' + (head + 1)
  const e = { seq: head + 1, opId, client: name, n: head + 1, hlc: 'h', entity: 'e/1', path: ['e', '1', 'f'], kind: 'set', value: opId, status: 'applied', policy: 'lww', at: 0, op: { id: opId, client: name, n: head + 1, hlc: 'h', op: 'replace', path: ['e', '1', 'f'], value: opId, base: {} } }
  try { await s.append('doc', [e]); won.push(opId) } catch (err) { if (!(err instanceof AppendConflictError)) throw err; lost++ }
}
await s.close()
console.log(JSON.stringify({ won, lost }))
`,
    )
    // Create the schema first so the racers do not all create it at once.
    const setup = new SqliteStorage({ file })
    await setup.init()
    await setup.close()

    const target = 150
    const results = await Promise.all(['p1', 'p2', 'p3'].map((name) => child(file, script, [name, String(target)])))
    for (const r of results) expect(r.stderr, r.stderr).not.toMatch(/Error/)
    for (const r of results) expect(r.code).toBe(0)
    const won = results.flatMap((r) => (JSON.parse(r.stdout.trim().split('\n').pop()!) as { won: string[] }).won)

    const s = await createStorage({ kind: 'sqlite', file })
    const log = await s.readLog('doc', 0)
    expect(log.map((e) => e.seq)).toEqual(Array.from({ length: target }, (_, i) => i + 1))
    expect(log.map((e) => e.opId).sort()).toEqual([...won].sort())
    await s.close()
  }, 60_000)

  it('has an acknowledged append on disk even when the process is killed right after', async () => {
    const file = path.join(dir, 'kill.db')
    const script = path.join(dir, 'killed.mts')
    writeFileSync(
      script,
      `import { SqliteStorage } from ${JSON.stringify(storageModule)}
const [file] = process.argv.slice(2)
const s = new SqliteStorage({ file })
await s.init()
for (let seq = 1; seq <= 50; seq++) {
  const opId = 'k-' + seq
  await s.append('doc', [{ seq, opId, client: 'k', n: seq, hlc: 'h', entity: 'e/1', path: ['e'], kind: 'set', value: { seq }, status: 'applied', policy: 'lww', at: 0, op: { id: opId, client: 'k', n: seq, hlc: 'h', op: 'replace', path: ['e'], value: { seq }, base: {} } }])
}
console.log('acked')
process.kill(process.pid, 'SIGKILL')
`,
    )
    const r = await child(file, script, [])
    expect(r.stdout).toContain('acked')
    expect(r.code).toBeNull() // killed, no close(), no checkpoint
    const s = await createStorage({ kind: 'sqlite', file })
    expect(await s.head('doc')).toBe(50)
    expect((await s.readLog('doc', 49))[0]?.value).toEqual({ seq: 50 })
    await s.close()
  }, 60_000)

  it('keeps a plain write\'s value once in its log row, and reads rows that repeat it in their op (as stored before)', async () => {
    const file = path.join(dir, 'rows.db')
    const s = new SqliteStorage({ file })
    await s.init()
    const value = { text: 'unique-marker '.repeat(20) }
    const [fresh, older] = makeEntries(1, 2, () => ({ value }))
    await s.append('d', [fresh!])
    await s.close()
    const db = new Database(file)
    const row = db.prepare('SELECT entry FROM log WHERE doc = ? AND seq = 1').get('d') as { entry: string }
    expect(row.entry.split('unique-marker').length - 1).toBe(20)
    expect(row.entry.length).toBeLessThan(JSON.stringify(fresh).length - JSON.stringify(value).length)
    // A row as an earlier version stored it: the whole op, the value twice.
    db.prepare('INSERT INTO log (doc, seq, op_id, path_key, entry) VALUES (?, ?, ?, ?, ?)').run('d', 2, older!.opId, '"todos"', JSON.stringify(older))
    db.prepare('INSERT INTO ops (doc, op_id, seq, status) VALUES (?, ?, ?, ?)').run('d', older!.opId, 2, 'applied')
    db.close()
    await s.init()
    expect(await s.readLog('d', 0)).toStrictEqual(structuredClone([fresh, older]))
    await s.close()
  })

  it('stores a snapshot as JSON lines read back in slices, with field metas as a Map; a snapshot stored as one JSON object (before) still reads', async () => {
    const file = path.join(dir, 'snap-lines.db')
    const s = new SqliteStorage({ file })
    await s.init()
    const fields = new Map<string, FieldMeta>()
    for (let i = 0; i < 40_000; i++) fields.set(`rows/r${i % 8000}\u0000f${Math.floor(i / 8000)}`, { client: 'c1', n: i + 1, hlc: `${i}.0.c1`, seq: i + 1, at: 0 })
    const rows = Object.fromEntries(Array.from({ length: 8000 }, (_, i) => [`r${i}`, { f0: i, f1: 'x', f2: [i], f3: null, f4: { deep: i } }]))
    await s.saveSnapshot('big', { seq: 40_000, state: { rows, title: 'big' }, vv: { 'rows/r1': { c1: 9 } }, fields, clientMax: { c1: 40_000 }, clientUser: { c1: 'ann' } })
    const turns = countTurns()
    const loaded = (await s.loadSnapshot('big'))!
    turns.stop()
    // Read a slice at a time: the node's other clients were served between slices (one JSON.parse before:
    // no turn at all).
    expect(turns.count).toBeGreaterThanOrEqual(2)
    expect(loaded.fields).toBeInstanceOf(Map)
    expect([...(loaded.fields as Map<string, FieldMeta>)]).toEqual([...fields])
    expect(JSON.stringify(loaded.state)).toBe(JSON.stringify({ rows, title: 'big' }))
    expect(loaded).toMatchObject({ seq: 40_000, vv: { 'rows/r1': { c1: 9 } }, clientMax: { c1: 40_000 }, clientUser: { c1: 'ann' } })
    await s.close()
    // As an earlier version stored it: one JSON object, field metas as an object.
    const old = { seq: 3, state: { rows: { a: { t: 1 } } }, vv: {}, fields: { 'rows/a\u0000t': { client: 'c1', n: 1, hlc: '1.0.c1', seq: 3, at: 0 } } }
    const db = new Database(file)
    db.prepare('INSERT INTO snapshots (doc, seq, snapshot) VALUES (?, ?, ?)').run('old', 3, JSON.stringify(old))
    db.close()
    await s.init()
    expect(await s.loadSnapshot('old')).toEqual(old)
    await s.close()
  })

  it('maps a constraint violation to AppendConflictError and rejects use after close', async () => {
    const s = new SqliteStorage({ file: path.join(dir, 'closed.db') })
    await s.init()
    await s.append('d', makeEntries(1, 2))
    await s.close()
    await expect(s.append('d', [makeEntry(3)])).rejects.toThrow(/init/)
    // Reopening the same instance works.
    await s.init()
    expect(await s.head('d')).toBe(2)
    await s.close()
  })
})

describe('PostgresStorage specifics', () => {
  const schemas: string[] = []
  const fresh = () => {
    const s = `${pgSchema}_spec${schemas.length}`
    schemas.push(s)
    return s
  }
  afterAll(() => dropSchemas(...schemas))

  it('initializes safely when several processes create the tables at once', async () => {
    const schema = fresh()
    const stores = Array.from({ length: 6 }, () => new PostgresStorage({ connectionString: pgUrl, schema }))
    await Promise.all(stores.map((s) => s.init()))
    await stores[0]!.append('d', makeEntries(1, 2))
    for (const s of stores) expect(await s.head('d')).toBe(2)
    await Promise.all(stores.map((s) => s.close()))
  })

  it("a connection dropped while checked out (PostgreSQL stopped, a failover) is an error of that call, never an unhandled 'error' event that kills the process", async () => {
    // A multi-node trial: stopping PostgreSQL for 10 s killed 5 of 12 nodes ("Unhandled 'error' event:
    // Connection terminated unexpectedly"): pg-pool listens for errors only on idle clients.
    const schema = fresh()
    // Named, so that only its connections are terminated (other test files share the database).
    const name = `zync_terminated_${process.pid}`
    const s = new PostgresStorage({ connectionString: `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}application_name=${name}`, schema, poolSize: 4 })
    await s.init()
    const admin = new pg.Client({ connectionString: pgUrl })
    await admin.connect()
    const uncaught: unknown[] = []
    const onUncaught = (err: unknown) => void uncaught.push(err)
    process.prependListener('uncaughtException', onUncaught)
    try {
      let stop = false
      let calls = 0
      const work = (async () => {
        while (!stop) {
          calls++
          const head = await s.head('d').catch(() => undefined)
          if (head !== undefined) await s.append('d', makeEntries(head + 1, head + 3)).catch(() => {})
          await s.probeWrite().catch(() => {})
        }
      })()
      // Terminate the storage's backends again and again, whatever they are doing.
      for (let i = 0; i < 40; i++) {
        await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [name])
        await new Promise((r) => setTimeout(r, 15))
      }
      stop = true
      await work
      await new Promise((r) => setTimeout(r, 200))
      expect(calls).toBeGreaterThan(10)
      expect(uncaught).toEqual([])
      // And it recovers: the next append lands.
      const head = await s.head('d')
      await s.append('d', makeEntries(head + 1, head + 1))
      expect(await s.head('d')).toBe(head + 1)
    } finally {
      process.off('uncaughtException', onUncaught)
      await admin.end()
      await s.close()
    }
  })

  it('uses a pool it is given and does not end it', async () => {
    const pool = new pg.Pool({ connectionString: pgUrl, max: 2 })
    try {
      const s: ServerStorage = new PostgresStorage({ connectionString: pgUrl, schema: fresh(), pool })
      await s.init()
      await s.append('d', makeEntries(1, 1))
      await s.close()
      const r = await pool.query<{ one: number }>('SELECT 1 AS one')
      expect(r.rows[0]!.one).toBe(1)
    } finally {
      await pool.end()
    }
  })

  it('refuses to start on a database that only reads (a hot standby), saying so', async () => {
    // A standby answers writes with SQLSTATE 25006 (read_only_sql_transaction), as a session with
    // default_transaction_read_only does: a server started on it would report ready and refuse every op.
    const schema = fresh()
    const writable = new PostgresStorage({ connectionString: pgUrl, schema })
    await writable.init()
    await writable.close()
    const pool = new pg.Pool({ connectionString: pgUrl, max: 1, options: '-c default_transaction_read_only=on' })
    try {
      const standby = new PostgresStorage({ connectionString: pgUrl, schema, pool })
      await expect(standby.init()).rejects.toThrow(/\[zync\] PostgreSQL refuses writes .*read-only standby or replica.*point it at the primary/)
    } finally {
      await pool.end()
    }
  })

  it('probeWrite() rejects once the database refuses writes (a primary demoted to a standby), reads still work, and the probe leaves nothing behind', async () => {
    // What /readyz tries while appends fail: after a failover, the server must say "unwritable", not "up".
    const schema = fresh()
    const pool = new pg.Pool({ connectionString: pgUrl, max: 1 })
    try {
      const s = new PostgresStorage({ connectionString: pgUrl, schema, pool })
      await s.init()
      await s.append('d', makeEntries(1, 2))
      await s.probeWrite!()
      // The pool's one connection turns read-only, as a demoted primary's sessions do.
      await pool.query('SET SESSION default_transaction_read_only = on')
      expect(await s.head('d')).toBe(2)
      expect((await s.readLog('d', 0)).map((e) => e.seq)).toEqual([1, 2])
      await expect(s.probeWrite!()).rejects.toThrow(/read-only transaction/)
      await expect(s.append('d', makeEntries(3, 3))).rejects.toThrow(/read-only transaction/)
      await pool.query('SET SESSION default_transaction_read_only = off')
      expect(await s.head('d')).toBe(2)
      expect(await s.listDocs()).toEqual(['d'])
      await s.close()
    } finally {
      await pool.end()
    }
  })

  it('stores JSON as text, so U+0000 and key order survive', async () => {
    const schema = fresh()
    const s = new PostgresStorage({ connectionString: pgUrl, schema })
    await s.init()
    const entry = makeEntry(1, { value: { z: 1, a: '\u0000', m: [{ y: 2, b: 3 }] } })
    await s.append('d', [entry])
    const client = new pg.Client({ connectionString: pgUrl })
    await client.connect()
    try {
      const r = await client.query<{ entry: string }>(`SELECT entry FROM "${schema}".zync_log WHERE doc = 'd'`)
      // The text as encoded, byte for byte (jsonb would reorder keys and refuse U+0000), and the entry back from it.
      expect(r.rows[0]!.entry).toBe(encodeEntry(entry))
      expect(JSON.stringify(decodeEntry(r.rows[0]!.entry))).toBe(JSON.stringify(entry))
    } finally {
      await client.end()
    }
    await s.close()
  })
})
