import { existsSync, readFileSync, realpathSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import { importPeer } from '../peer'
import { ZyncError } from '../../core/errors'
import type { Path } from '../../core/path'
import { AppendConflictError, decodeEntry, encodeEntry, type ServerSnapshot, historyKeys, pathKey, type LogEntry, type OpRecord, type ServerStorage } from './types'
import { parseSnapshotText, snapshotText } from './snapshot-text'

export interface SqliteStorageOptions {
  /** Database file. Created when missing. */
  file: string
  /**
   * How long a write waits for another connection's lock, in ms (on the event loop: nothing else runs
   * meanwhile). After such a wait fails, writes fail at once for 2 s. Default 250.
   */
  busyTimeoutMs?: number
  /**
   * Hold `<file>.lock` (this process's pid in it) from `init()` to `close()`, and refuse to start while
   * a live process holds it: a server broadcasts only its own writes, so two servers on one file leave
   * their clients missing each other's changes. A lock whose process is gone (a crash, `kill -9`), or
   * whose pid now belongs to a process started at another time (Linux), is taken over. Default false:
   * several instances and processes may share the file (`append` is safe for that); `createSyncServer`
   * turns it on.
   */
  lock?: boolean
}

type Db = BetterSqlite3.Database

/** A collection with at least this many log entries below it has its history read from the newest entry on. */
const SCAN_ABOVE = 5000

function isConstraintError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')
}

/** Lock files held by this process (absolute paths): a second instance in this process is refused too. */
const heldLocks = new Set<string>()

/** Whether a process with this pid exists (EPERM: it does, under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Takes `<file>.lock` for this process (see SqliteStorageOptions.lock); returns its path. */
/** The database file's own path: a symlink to it (or to its directory) locks the same file (a second server started through one). */
function realPath(file: string): string {
  const abs = resolve(file)
  try {
    return realpathSync(abs)
  } catch {
    try {
      return join(realpathSync(dirname(abs)), basename(abs))
    } catch {
      return abs
    }
  }
}

/** How long writes fail at once after one waited out another process's lock in vain. */
const BUSY_BACKOFF_MS = 2000
/** What probeWrite writes: about a large client batch. */
const PROBE_BYTES = 256 * 1024

function takeLock(file: string): string {
  const lockFile = realPath(file) + '.lock'
  for (let attempt = 0; ; attempt++) {
    try {
      // The pid, then (on Linux) when that process started: a pid the system has since given to another
      // process (a reboot, a crash long ago) does not keep the lock.
      writeFileSync(lockFile, `${process.pid}\n${startedAt(process.pid) ?? ''}\n`, { flag: 'wx' })
      heldLocks.add(lockFile)
      return lockFile
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // Created, then its pid not written (a full disk): not left behind to refuse every later start.
      if (code !== 'EEXIST') dropIfEmpty(lockFile)
      if (code !== 'EEXIST' || attempt > 0) {
        const why = code === 'ENOENT' ? 'its directory does not exist' : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'its directory is not writable by this process (the database, its -wal file and its lock live there)' : (err as Error).message
        throw new ZyncError('STORAGE_UNAVAILABLE', `[zync] cannot open the SQLite database ${JSON.stringify(file)}: cannot create its lock file ${JSON.stringify(lockFile)}: ${why}`, { cause: err })
      }
    }
    let text = ''
    try {
      text = readFileSync(lockFile, 'utf8')
    } catch {
      continue // removed meanwhile: try again
    }
    const [, pidText, started] = /^(\d+)\n?(?:(\d+)\n?)?$/.exec(text.trim()) ?? []
    const pid = pidText === undefined ? undefined : Number(pidText)
    // Empty for more than a moment (a server starting writes its pid right after creating it): left by a
    // start that failed between the two, or by a crash then. Taken over.
    if (text === '' && dropIfEmpty(lockFile, 2000)) continue
    if (pid === undefined) {
      throw new ZyncError('STORAGE_UNAVAILABLE', `[zync] the lock file ${JSON.stringify(lockFile)} of the SQLite database ${JSON.stringify(file)} holds no pid (${text === '' ? 'empty, written moments ago: a zync-server may be starting; if none is, start again in 2 s or delete it' : `${JSON.stringify(text.slice(0, 40))}; if no zync-server uses this database, delete it and start again`})`)
    }
    // Our own pid, not held here: a lock left by an earlier process that had this pid (PID 1 in a restarted container).
    // A pid now another process's (its start time differs from the one the lock recorded): stale too.
    const now = started === undefined ? undefined : startedAt(pid)
    const reused = now !== undefined && now !== started
    if (alive(pid) && !reused && (pid !== process.pid || heldLocks.has(lockFile))) {
      throw new ZyncError(
        'STORAGE_UNAVAILABLE',
        `[zync] another zync-server (pid ${pid}${pid === process.pid ? ', this process' : ''}) uses the SQLite database ${JSON.stringify(file)} (lock file ${JSON.stringify(lockFile)}): ` +
          "each server broadcasts only its own writes, so the clients of two servers on one file would miss each other's changes. " +
          'Stop that server first (on SQLite, a restart stops the old process before starting the new one); to run several processes, use PostgreSQL and Redis (--postgres, --redis)',
      )
    }
    // Its process is gone (a crash, kill -9): take the lock over.
    rmSync(lockFile, { force: true })
  }
}

/** `dev:ino` of a file, undefined when it does not exist. */
function fileId(path: string): string | undefined {
  const st = statSync(path, { throwIfNoEntry: false })
  return st && `${st.dev}:${st.ino}`
}

/** When process `pid` started (clock ticks since boot, from /proc on Linux); undefined elsewhere or when gone. */
function startedAt(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces, in parentheses): state is field 3, starttime 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** Removes `lockFile` if it is empty and was last written at least `olderThanMs` ago; true when it did. */
function dropIfEmpty(lockFile: string, olderThanMs = 0): boolean {
  try {
    const st = statSync(lockFile)
    if (st.size !== 0 || Date.now() - st.mtimeMs < olderThanMs) return false
    rmSync(lockFile, { force: true })
    return true
  } catch {
    return false
  }
}

/**
 * Removes the WAL files a refused open of `file` created (`made`: they did not exist before it), when
 * the -wal holds nothing: a WAL with frames, or one another process made meanwhile, is never touched.
 */
function dropEmptyWal(file: string, made: { wal: boolean; shm: boolean }): void {
  const wal = `${file}-wal`
  try {
    if (made.wal && existsSync(wal)) {
      if (statSync(wal).size > 0) return
      rmSync(wal, { force: true })
    }
    if (made.shm) rmSync(`${file}-shm`, { force: true })
  } catch {
    // Best effort: the start is refused either way, with its own error.
  }
}

function dropLock(lockFile: string): void {
  heldLocks.delete(lockFile)
  try {
    if (readFileSync(lockFile, 'utf8').split('\n')[0] === String(process.pid)) rmSync(lockFile, { force: true })
  } catch {
    // already gone
  }
}

/** What an SQLite error at open means for the operator, and what to do. */
function openProblem(err: unknown, file: string): string {
  const code = String((err as { code?: unknown } | null)?.code ?? '')
  const message = (err as Error)?.message ?? String(err)
  // With a few KB left SQLite says "disk I/O error" (its WAL index cannot grow): the free space says why.
  if (code.startsWith('SQLITE_IOERR')) {
    const free = freeBytes(dirname(resolve(file)))
    if (free !== undefined && free < 1024 * 1024) return `${message}: the disk is full (${Math.floor(free / 1024)} KB free); free some space`
  }
  if (code.startsWith('SQLITE_READONLY')) return `${message}: the file (or its directory, or the mount) is read-only for this process; zync-server writes to it, so make it writable or point the storage (--data) at a writable file`
  if (code === 'SQLITE_NOTADB') return `${message}: it is not a SQLite database (another kind of file, or encrypted); point the storage (--data) at a zync database or a new file`
  if (code.startsWith('SQLITE_CORRUPT')) return `${message}: the database is damaged; restore it from a backup`
  if (code.startsWith('SQLITE_CANTOPEN')) return `${message}: check that the path names a file in an existing directory this process can write to`
  if (code === 'SQLITE_FULL') return `${message}: the disk is full; free some space`
  if (code.startsWith('SQLITE_BUSY')) return `${message}: another connection holds the write lock; stop what else writes to the file`
  // npm 11 can skip a dependency's install script (allowScripts): better-sqlite3 is then there, unbuilt.
  if (/Could not locate the bindings file/.test(message)) return `better-sqlite3 is installed but its native module was not built (npm 11 skips install scripts not in allowScripts): npm install-scripts approve better-sqlite3 && npm rebuild better-sqlite3`
  if (/no such column|has no column/.test(message)) return `${message}: the file holds tables of another application (a "log", "ops" or "snapshots" table zync did not create); point the storage (--data) at a zync database or a new file`
  return message
}

/** Bytes free for this process on the file system of `dir`, if it can tell. */
function freeBytes(dir: string): number | undefined {
  try {
    const st = statfsSync(dir)
    return st.bavail * st.bsize
  } catch {
    return undefined
  }
}

/**
 * SQLite storage (better-sqlite3, synchronous API). WAL mode with synchronous=FULL: `append` resolves
 * only after the transaction is on disk. Several processes (or several instances) may open the same
 * file unless `lock` is on (as in createSyncServer); `append` runs in an IMMEDIATE transaction, so the
 * head check and the inserts are atomic. `init()` checks that the database takes writes (a read-only
 * file fails it) and names the file in its errors.
 *
 * The driver is loaded in `init()`, so importing this module does not load better-sqlite3.
 */
export class SqliteStorage implements ServerStorage {
  readonly kind = 'sqlite' as const
  private db: Db | undefined
  private stmts: ReturnType<SqliteStorage['prepare']> | undefined
  private appendTx: ((doc: string, entries: LogEntry[]) => void) | undefined
  private initializing: Promise<void> | undefined
  private lockFile: string | undefined
  /** The database file and its -wal as opened (`dev:ino`): see `writing`. */
  private files: { path: string; id: string }[] = []
  /** Set once either was deleted or replaced: every write is refused from then on. */
  private filesGone: string | undefined

  constructor(private readonly options: SqliteStorageOptions) {}

  init(): Promise<void> {
    this.initializing ??= this.open().catch((err: unknown) => {
      this.initializing = undefined
      throw err
    })
    return this.initializing
  }

  private async open(): Promise<void> {
    const mod = (await importPeer(() => import('better-sqlite3'), 'better-sqlite3', 'SQLite storage')) as unknown as { default?: typeof BetterSqlite3 } & typeof BetterSqlite3
    const Database = mod.default ?? mod
    const file = this.options.file
    const inMemory = file === ':memory:' || file === ''
    const lockFile = this.options.lock && !inMemory ? takeLock(file) : undefined
    const cannotOpen = (err: unknown) => new ZyncError('STORAGE_UNAVAILABLE', `[zync] cannot open the SQLite database ${JSON.stringify(file)}: ${openProblem(err, file)}`, { cause: err })
    // The WAL files this open makes, if it is refused: removed with it (a read-only database, say).
    const made = { wal: !existsSync(`${file}-wal`), shm: !existsSync(`${file}-shm`) }
    let db: BetterSqlite3.Database
    try {
      db = new Database(file)
    } catch (err) {
      if (lockFile) dropLock(lockFile)
      throw cannotOpen(err)
    }
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(this.options.busyTimeoutMs ?? 250))}`)
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = FULL')
      db.pragma('foreign_keys = OFF')
      db.exec(`
        CREATE TABLE IF NOT EXISTS log (
          doc TEXT NOT NULL,
          seq INTEGER NOT NULL,
          op_id TEXT NOT NULL,
          path_key TEXT NOT NULL,
          entry TEXT NOT NULL,
          PRIMARY KEY (doc, seq)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS ops (
          doc TEXT NOT NULL,
          op_id TEXT NOT NULL,
          seq INTEGER NOT NULL,
          status TEXT NOT NULL,
          PRIMARY KEY (doc, op_id)
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX IF NOT EXISTS ops_doc_seq ON ops (doc, seq);
        -- history({ path }) of a record or field: its entries, its ancestors' and its descendants' by key.
        CREATE INDEX IF NOT EXISTS log_doc_path ON log (doc, path_key, seq);
        CREATE TABLE IF NOT EXISTS snapshots (
          doc TEXT PRIMARY KEY,
          seq INTEGER NOT NULL,
          snapshot TEXT NOT NULL
        );
        -- probeWrite's row: a write that proves the database takes writes.
        CREATE TABLE IF NOT EXISTS zync_meta (
          key TEXT PRIMARY KEY,
          value TEXT NOT NULL
        );
      `)
      this.stmts = this.prepare(db)
      this.appendTx = this.makeAppend(db, this.stmts)
      // A database that has the tables already can be opened read-only (the file, its directory or the
      // mount): without this write, the server would start, report ready, and refuse every write.
      this.stmts.probe.run(new Date().toISOString())
      this.db = db
      this.lockFile = lockFile
      this.filesGone = undefined
      this.files = inMemory ? [] : [file, `${file}-wal`].flatMap((path) => (fileId(path) === undefined ? [] : [{ path, id: fileId(path)! }]))
    } catch (err) {
      db.close()
      this.stmts = undefined
      this.appendTx = undefined
      if (!inMemory) dropEmptyWal(file, made)
      if (lockFile) dropLock(lockFile)
      throw cannotOpen(err)
    }
  }

  private prepare(db: Db) {
    return {
      // The ops table is never compacted, so its highest seq is the head even after compaction.
      head: db.prepare<[string], { head: number | null }>('SELECT MAX(seq) AS head FROM ops WHERE doc = ?'),
      hasOp: db.prepare<[string, string], { seq: number }>('SELECT seq FROM ops WHERE doc = ? AND op_id = ?'),
      insertLog: db.prepare<[string, number, string, string, string]>(
        'INSERT INTO log (doc, seq, op_id, path_key, entry) VALUES (?, ?, ?, ?, ?)',
      ),
      insertOp: db.prepare<[string, string, number, string]>('INSERT INTO ops (doc, op_id, seq, status) VALUES (?, ?, ?, ?)'),
      readLog: db.prepare<[string, number, number], { entry: string }>(
        'SELECT entry FROM log WHERE doc = ? AND seq > ? ORDER BY seq ASC LIMIT ?',
      ),
      findOp: db.prepare<[string, string], { seq: number; status: string }>('SELECT seq, status FROM ops WHERE doc = ? AND op_id = ?'),
      saveSnapshot: db.prepare<[string, number, string]>(
        `INSERT INTO snapshots (doc, seq, snapshot) VALUES (?, ?, ?)
         ON CONFLICT (doc) DO UPDATE SET seq = excluded.seq, snapshot = excluded.snapshot WHERE excluded.seq >= snapshots.seq`,
      ),
      loadSnapshot: db.prepare<[string], { snapshot: string }>('SELECT snapshot FROM snapshots WHERE doc = ?'),
      compact: db.prepare<[string, number]>('DELETE FROM log WHERE doc = ? AND seq <= ?'),
      history: db.prepare<[string, number], { entry: string }>('SELECT entry FROM log WHERE doc = ? ORDER BY seq DESC LIMIT ?'),
      historyPath: db.prepare<[string, string, string, number], { entry: string }>(
        `SELECT entry FROM log WHERE doc = ? AND substr(path_key, 1, length(?)) = ? ORDER BY seq DESC LIMIT ?`,
      ),
      historyAt: db.prepare<[string, string, number], { seq: number; entry: string }>(
        // INDEXED BY: without statistics the planner walks the primary key to skip the sort, i.e. the whole log.
        'SELECT seq, entry FROM log INDEXED BY log_doc_path WHERE doc = ? AND path_key = ? ORDER BY seq DESC LIMIT ?',
      ),
      countBelow: db.prepare<[string, string, string, number], { n: number }>(
        'SELECT count(*) AS n FROM (SELECT 1 FROM log INDEXED BY log_doc_path WHERE doc = ? AND path_key >= ? AND path_key < ? LIMIT ?)',
      ),
      historyBelow: db.prepare<[string, string, string, number], { seq: number; entry: string }>(
        'SELECT seq, entry FROM log INDEXED BY log_doc_path WHERE doc = ? AND path_key >= ? AND path_key < ? ORDER BY seq DESC LIMIT ?',
      ),
      listDocs: db.prepare<[], { doc: string }>('SELECT doc FROM ops UNION SELECT doc FROM snapshots'),
      probe: db.prepare<[string]>("INSERT INTO zync_meta (key, value) VALUES ('write_probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    }
  }

  private makeAppend(db: Db, s: ReturnType<SqliteStorage['prepare']>) {
    const tx = db.transaction((doc: string, entries: LogEntry[]) => {
      const head = s.head.get(doc)?.head ?? 0
      const ids = new Set<string>()
      let expect = head + 1
      for (const e of entries) {
        if (e.seq !== expect++) throw new AppendConflictError(`seq ${e.seq} does not follow head ${head}`)
        if (ids.has(e.opId) || s.hasOp.get(doc, e.opId)) throw new AppendConflictError(`op ${e.opId} already stored`)
        ids.add(e.opId)
      }
      for (const e of entries) {
        s.insertLog.run(doc, e.seq, e.opId, pathKey(e.path), encodeEntry(e))
        s.insertOp.run(doc, e.opId, e.seq, e.status)
      }
    })
    // IMMEDIATE takes the write lock before the head is read: no other connection can append in between.
    return (doc: string, entries: LogEntry[]) => tx.immediate(doc, entries)
  }

  private ready(): { db: Db; s: ReturnType<SqliteStorage['prepare']> } {
    if (!this.db || !this.stmts) throw new Error('[zync] SqliteStorage: call init() first (or it was closed)')
    return { db: this.db, s: this.stmts }
  }

  async head(doc: string): Promise<number> {
    return this.ready().s.head.get(doc)?.head ?? 0
  }

  async append(doc: string, entries: LogEntry[]): Promise<void> {
    this.ready()
    if (entries.length === 0) return
    try {
      this.writing(() => this.appendTx!(doc, entries))
    } catch (err) {
      if (err instanceof AppendConflictError) throw err
      if (isConstraintError(err)) throw new AppendConflictError(`append conflict: ${(err as Error).message}`)
      throw err
    }
  }

  async readLog(doc: string, after: number, limit?: number): Promise<LogEntry[]> {
    const { s } = this.ready()
    const n = limit === undefined || limit === Infinity ? -1 : Math.max(0, Math.floor(limit))
    return s.readLog.all(doc, after, n).map((r) => decodeEntry(r.entry))
  }

  async findOps(doc: string, ids: readonly string[]): Promise<Map<string, OpRecord>> {
    const { s } = this.ready()
    const out = new Map<string, OpRecord>()
    for (const id of ids) {
      const r = s.findOp.get(doc, id)
      if (r) out.set(id, { seq: r.seq, status: r.status as OpRecord['status'] })
    }
    return out
  }

  async saveSnapshot(doc: string, snapshot: ServerSnapshot): Promise<void> {
    const json = await snapshotText(snapshot)
    const { s } = this.ready()
    this.writing(() => s.saveSnapshot.run(doc, snapshot.seq, json))
  }

  async loadSnapshot(doc: string): Promise<ServerSnapshot | undefined> {
    const r = this.ready().s.loadSnapshot.get(doc)
    return r ? parseSnapshotText(r.snapshot) : undefined
  }

  async compact(doc: string, upto: number): Promise<number> {
    const { s } = this.ready()
    return this.writing(() => s.compact.run(doc, upto).changes)
  }

  async history(doc: string, query: { path?: Path; limit?: number }): Promise<LogEntry[]> {
    const { s } = this.ready()
    const limit = Math.max(0, Math.floor(query.limit ?? 100))
    if (!query.path || query.path.length === 0) return s.history.all(doc, limit).map((r) => decodeEntry(r.entry))
    // Looked up in the (doc, path_key, seq) index: the path's entries, its ancestors' and the key range
    // below it, sorted by seq. Only a collection (or top-level key) with many entries below it (most of
    // a busy log) is read newest first until `limit` match instead, which stops early there.
    const { exact, below } = historyKeys(query.path)
    if (query.path.length === 1 && s.countBelow.get(doc, below[0], below[1], SCAN_ABOVE)!.n >= SCAN_ABOVE) {
      const key = exact[0]!
      return s.historyPath.all(doc, key, key, limit).map((r) => decodeEntry(r.entry))
    }
    const rows = exact.flatMap((k) => s.historyAt.all(doc, k, limit))
    rows.push(...s.historyBelow.all(doc, below[0], below[1], limit))
    return rows
      .sort((a, b) => b.seq - a.seq)
      .slice(0, limit)
      .map((r) => decodeEntry(r.entry))
  }

  async listDocs(): Promise<string[]> {
    return this.ready().s.listDocs.all().map((r) => r.doc)
  }

  /**
   * Called while appends fail: writes a row of its own (zync_meta), committed, and rejects on a read-only
   * database or a full disk. Writes (and frees again) PROBE_BYTES: on a nearly full disk a write of a
   * few bytes fits in a page the database has, and /readyz said "up" while every client's batch was
   * refused (an operator trial on a 2 MB tmpfs). The freed pages stay in the file for the next appends.
   */
  async probeWrite(): Promise<void> {
    const { s } = this.ready()
    this.writing(() => s.probe.run('x'.repeat(PROBE_BYTES)))
    s.probe.run(new Date().toISOString())
  }

  /** Until when writes fail at once (see `writing`). */
  private busyUntil = 0

  /**
   * Runs a write. better-sqlite3 waits out another process's write lock (busy_timeout) on the event
   * loop: with a sqlite3 shell holding a transaction open, /healthz went unanswered for minutes. After a
   * wait that ended in SQLITE_BUSY, writes fail at once (retryable, as any storage failure) for
   * BUSY_BACKOFF_MS, then one waits again.
   */
  private writing<T>(fn: () => T): T {
    // Deleted or replaced under a running server (an operator cleaning up, a restore over it): SQLite
    // goes on writing to the open, unlinked files, and every write acknowledged from then on is gone at
    // the next start. Two stat calls against a synchronous commit per write.
    if (this.filesGone === undefined) {
      const changed = this.files.find((f) => fileId(f.path) !== f.id)
      if (changed) {
        this.filesGone = `the SQLite file ${JSON.stringify(changed.path)} was ${fileId(changed.path) === undefined ? 'deleted' : 'replaced'} while the server runs: writes are refused, since they would be lost with it; restart the server (clients keep their edits and send them then)`
      }
    }
    if (this.filesGone !== undefined) throw new Error(this.filesGone)
    if (Date.now() < this.busyUntil) throw new Error('database is locked (another process holds its write lock; trying again shortly)')
    try {
      return fn()
    } catch (err) {
      if (String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY')) this.busyUntil = Date.now() + BUSY_BACKOFF_MS
      throw err
    }
  }

  async close(): Promise<void> {
    const db = this.db
    const lockFile = this.lockFile
    this.db = undefined
    this.stmts = undefined
    this.appendTx = undefined
    this.initializing = undefined
    this.lockFile = undefined
    if (db?.open) db.close()
    if (lockFile) dropLock(lockFile)
  }
}
