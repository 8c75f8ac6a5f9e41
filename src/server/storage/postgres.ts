import type pg from 'pg'
import { importPeer } from '../peer'
import { redactedUrl } from '../redact'
import { newId } from '../../core/ids'
import type { Path } from '../../core/path'
import { AppendConflictError, decodeEntry, encodeEntry, type ServerSnapshot, historyKeys, pathKey, type LogEntry, type OpRecord, type ServerStorage } from './types'
import { parseSnapshotText, snapshotText } from './snapshot-text'

/** The snapshots table's row holding the storage's cluster id (see clusterId). */
const CLUSTER_ROW = '#cluster'

export interface PostgresStorageOptions {
  /** e.g. 'postgres://user@127.0.0.1:5432/zync'. Used to create the pool; pass any string (say '') with `pool`. Required. */
  connectionString: string
  /** Schema holding the tables; created when missing. Default 'public'. */
  schema?: string
  /** Use this pg.Pool instead of creating one (it is not ended by `close()`). Default: a pool of `poolSize`. */
  pool?: PgPoolLike
  /** Size of the pool created when `pool` is not given. Default 5. */
  poolSize?: number
  /**
   * Ms to wait for a connection from the pool created here, and for any query on it: a PostgreSQL
   * that accepts connections but never answers fails start-up, or the request (STORAGE_UNAVAILABLE,
   * retried by clients), instead of hanging. Default `{ connect: 10000, query: 20000 }`.
   */
  timeoutsMs?: { connect?: number; query?: number }
}

/**
 * What zync uses of a pg.Pool (a pg.Pool is one), spelled out so that zync/server's types do not need
 * pg's: apps on SQLite need neither pg nor @types/pg.
 */
export interface PgPoolLike {
  connect(): Promise<unknown>
  query(...args: unknown[]): Promise<unknown>
  end(): Promise<void>
  on(event: 'error', listener: (err: Error) => void): unknown
}

function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"'
}

/** SQLSTATEs that mean "another writer got there first"; the transaction is rolled back, nothing written. */
const CONFLICT_CODES = new Set([
  '23505', // unique_violation: the (doc, seq) or (doc, op_id) is taken
  '40001', // serialization_failure
  '40P01', // deadlock_detected
])

/**
 * An error that leaves the connection unusable: no SQLSTATE (the socket closed, a timeout), a
 * connection exception (08xxx) or the server shutting the session down (57P01-57P03). An error of the
 * statement (a read-only transaction, a unique violation) leaves it usable.
 */
function lostConnection(err: unknown): boolean {
  const code = pgCode(err)
  return code === undefined || code.startsWith('08') || code.startsWith('57P')
}

function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/**
 * PostgreSQL storage (node-postgres). Several server processes may share one database: the primary key
 * (doc, seq) of the log and the unique (doc, seq) / primary key (doc, op_id) of the ops table (which
 * compaction never touches) make seq allocation atomic. The loser of a race gets a unique violation,
 * its transaction is rolled back and `append` rejects with AppendConflictError. `append` resolves only
 * after COMMIT.
 *
 * JSON is stored as TEXT (not JSONB): values round-trip exactly, key order included, and strings may
 * contain U+0000 (JSONB rejects it; snapshots use it in field keys).
 *
 * The driver is loaded in `init()` when no pool is given, so importing this module does not load pg.
 */
export class PostgresStorage implements ServerStorage {
  readonly kind = 'postgres' as const
  private pool: pg.Pool | undefined
  private readonly ownsPool: boolean
  private readonly schema: string
  private readonly t: { log: string; ops: string; snapshots: string }
  private initializing: Promise<void> | undefined

  constructor(private readonly options: PostgresStorageOptions) {
    this.pool = options.pool as pg.Pool | undefined
    this.ownsPool = !options.pool
    this.schema = options.schema ?? 'public'
    const s = quoteIdent(this.schema)
    this.t = { log: `${s}.zync_log`, ops: `${s}.zync_ops`, snapshots: `${s}.zync_snapshots` }
  }

  init(): Promise<void> {
    this.initializing ??= this.setup().catch((err: unknown) => {
      this.initializing = undefined
      throw err
    })
    return this.initializing
  }

  private async setup(): Promise<void> {
    if (!this.pool) {
      const mod = (await importPeer(() => import('pg'), 'pg', 'PostgreSQL storage')) as unknown as { default?: typeof pg } & typeof pg
      const driver = mod.default ?? mod
      this.pool = new driver.Pool({
        connectionString: this.options.connectionString,
        max: this.options.poolSize ?? 5,
        connectionTimeoutMillis: this.options.timeoutsMs?.connect ?? 10_000,
        query_timeout: this.options.timeoutsMs?.query ?? 20_000,
      })
      // A client losing its connection (PostgreSQL stopped or restarted, a failover) must not crash the
      // process: pg-pool listens only while a client is idle, and one checked out emitted 'error' with no
      // listener (a multi-node trial: stopping PostgreSQL for 10 s killed 5 of 12 nodes). The call using
      // it fails with the error instead, and the broken client is destroyed on release.
      this.pool.on('error', () => {})
    }
    this.pool.on('connect', (c) => c.on('error', () => {}))
    const { log, ops, snapshots } = this.t
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      // The driver's words alone ("connect ECONNREFUSED ...", "role ... does not exist") named neither
      // PostgreSQL nor which one.
      throw new Error(`[zync] cannot connect to PostgreSQL at ${redactedUrl(this.options.connectionString)}: ${(err as Error).message}`, { cause: err })
    }
    try {
      await client.query('BEGIN')
      // CREATE ... IF NOT EXISTS is not safe against concurrent creators (duplicate key on pg_type):
      // serialize the DDL of every process initializing this schema.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`zync:ddl:${this.schema}`])
      if (this.schema !== 'public') await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`)
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${log} (
          doc TEXT NOT NULL,
          seq BIGINT NOT NULL,
          op_id TEXT NOT NULL,
          path_key TEXT NOT NULL,
          entry TEXT NOT NULL,
          PRIMARY KEY (doc, seq)
        )`)
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${ops} (
          doc TEXT NOT NULL,
          op_id TEXT NOT NULL,
          seq BIGINT NOT NULL,
          status TEXT NOT NULL,
          PRIMARY KEY (doc, op_id),
          UNIQUE (doc, seq)
        )`)
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${snapshots} (
          doc TEXT PRIMARY KEY,
          seq BIGINT NOT NULL,
          snapshot TEXT NOT NULL
        )`)
      // history({ path }) of a record or field: its entries, its ancestors' and its descendants' by key,
      // compared byte by byte (the key ranges are byte ranges).
      await client.query(`CREATE INDEX IF NOT EXISTS zync_log_path ON ${log} (doc, (path_key COLLATE "C"), seq)`)
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      // 25006 read_only_sql_transaction: a hot standby (a replica, or a primary demoted by a failover), or
      // default_transaction_read_only. The server writes every op here: it must not start on it.
      if ((err as { code?: unknown }).code === '25006') {
        throw new Error(`[zync] PostgreSQL refuses writes on this connection (${(err as Error).message}): it is a read-only standby or replica, or default_transaction_read_only is on; zync-server writes to its database, so point it at the primary`, { cause: err })
      }
      throw err
    } finally {
      client.release()
    }
  }

  private db(): pg.Pool {
    if (!this.pool || !this.initializing) throw new Error('[zync] PostgresStorage: call init() first (or it was closed)')
    return this.pool
  }

  async head(doc: string): Promise<number> {
    const r = await this.db().query<{ head: string | null }>(`SELECT MAX(seq) AS head FROM ${this.t.ops} WHERE doc = $1`, [doc])
    return Number(r.rows[0]?.head ?? 0)
  }

  async append(doc: string, entries: LogEntry[]): Promise<void> {
    const pool = this.db()
    if (entries.length === 0) return
    // Checks that need no database: consecutive seqs and op ids unique inside the batch.
    const ids = new Set<string>()
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      if (i > 0 && e.seq !== entries[i - 1]!.seq + 1) throw new AppendConflictError(`seq ${e.seq} is not consecutive`)
      if (ids.has(e.opId)) throw new AppendConflictError(`op ${e.opId} appears twice in the batch`)
      ids.add(e.opId)
    }
    const client = await pool.connect()
    let inTx = false
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      inTx = true
      const h = await client.query<{ head: string | null }>(`SELECT MAX(seq) AS head FROM ${this.t.ops} WHERE doc = $1`, [doc])
      const head = Number(h.rows[0]?.head ?? 0)
      if (entries[0]!.seq !== head + 1) throw new AppendConflictError(`seq ${entries[0]!.seq} does not follow head ${head}`)
      // The head read above may already be stale (another node committing right now): the unique keys
      // decide. A writer that lost the race blocks on the other's uncommitted row, then gets 23505.
      const seqs = entries.map((e) => e.seq)
      const opIds = entries.map((e) => e.opId)
      await client.query(
        `INSERT INTO ${this.t.ops} (doc, op_id, seq, status)
         SELECT $1, u.op_id, u.seq, u.status FROM unnest($2::text[], $3::bigint[], $4::text[]) AS u(op_id, seq, status)`,
        [doc, opIds, seqs, entries.map((e) => e.status)],
      )
      await client.query(
        `INSERT INTO ${this.t.log} (doc, seq, op_id, path_key, entry)
         SELECT $1, u.seq, u.op_id, u.path_key, u.entry FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS u(seq, op_id, path_key, entry)`,
        [doc, seqs, opIds, entries.map((e) => pathKey(e.path)), entries.map(encodeEntry)],
      )
      await client.query('COMMIT')
      inTx = false
    } catch (err) {
      if (inTx) await client.query('ROLLBACK').catch(() => {})
      if (err instanceof AppendConflictError) throw err
      const code = pgCode(err)
      if (code && CONFLICT_CODES.has(code)) throw new AppendConflictError(`append conflict: ${(err as Error).message}`)
      // A lost connection is not handed to the next caller.
      if (lostConnection(err)) broken = err as Error
      throw err
    } finally {
      client.release(broken)
    }
  }

  async readLog(doc: string, after: number, limit?: number): Promise<LogEntry[]> {
    const n = limit === undefined || limit === Infinity ? null : Math.max(0, Math.floor(limit))
    const r = await this.db().query<{ entry: string }>(
      `SELECT entry FROM ${this.t.log} WHERE doc = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3`,
      [doc, after, n],
    )
    return r.rows.map((row) => decodeEntry(row.entry))
  }

  async findOps(doc: string, ids: readonly string[]): Promise<Map<string, OpRecord>> {
    const out = new Map<string, OpRecord>()
    if (ids.length === 0) return out
    const r = await this.db().query<{ op_id: string; seq: string; status: string }>(
      `SELECT op_id, seq, status FROM ${this.t.ops} WHERE doc = $1 AND op_id = ANY($2::text[])`,
      [doc, [...ids]],
    )
    for (const row of r.rows) out.set(row.op_id, { seq: Number(row.seq), status: row.status as OpRecord['status'] })
    return out
  }

  async saveSnapshot(doc: string, snapshot: ServerSnapshot): Promise<void> {
    const json = await snapshotText(snapshot)
    // Only a snapshot at the same or a later seq replaces the stored one.
    await this.db().query(
      `INSERT INTO ${this.t.snapshots} AS s (doc, seq, snapshot) VALUES ($1, $2, $3)
       ON CONFLICT (doc) DO UPDATE SET seq = excluded.seq, snapshot = excluded.snapshot WHERE excluded.seq >= s.seq`,
      [doc, snapshot.seq, json],
    )
  }

  async loadSnapshot(doc: string): Promise<ServerSnapshot | undefined> {
    const r = await this.db().query<{ snapshot: string }>(`SELECT snapshot FROM ${this.t.snapshots} WHERE doc = $1`, [doc])
    const row = r.rows[0]
    return row ? parseSnapshotText(row.snapshot) : undefined
  }

  async compact(doc: string, upto: number): Promise<number> {
    const r = await this.db().query(`DELETE FROM ${this.t.log} WHERE doc = $1 AND seq <= $2`, [doc, upto])
    return r.rowCount ?? 0
  }

  async history(doc: string, query: { path?: Path; limit?: number }): Promise<LogEntry[]> {
    const limit = Math.max(0, Math.floor(query.limit ?? 100))
    const log = this.t.log
    let r
    if (!query.path || query.path.length === 0) {
      r = await this.db().query<{ entry: string }>(`SELECT entry FROM ${log} WHERE doc = $1 ORDER BY seq DESC LIMIT $2`, [doc, limit])
    } else if (query.path.length === 1) {
      // A collection (or top-level key): most of a busy log is below it, read newest first until `limit` match.
      r = await this.db().query<{ entry: string }>(`SELECT entry FROM ${log} WHERE doc = $1 AND starts_with(path_key, $2) ORDER BY seq DESC LIMIT $3`, [
        doc,
        pathKey(query.path),
        limit,
      ])
    } else {
      // A record or a field, with its ancestors' writes: looked up in the path index, not scanned.
      const { exact, below } = historyKeys(query.path)
      r = await this.db().query<{ entry: string }>(
        `SELECT entry FROM (
           (SELECT seq, entry FROM ${log} WHERE doc = $1 AND path_key COLLATE "C" = ANY($2::text[]) ORDER BY seq DESC LIMIT $5)
           UNION ALL
           (SELECT seq, entry FROM ${log} WHERE doc = $1 AND path_key COLLATE "C" >= $3 AND path_key COLLATE "C" < $4 ORDER BY seq DESC LIMIT $5)
         ) h ORDER BY seq DESC LIMIT $5`,
        [doc, exact, below[0], below[1], limit],
      )
    }
    return r.rows.map((row) => decodeEntry(row.entry))
  }

  async listDocs(): Promise<string[]> {
    const r = await this.db().query<{ doc: string }>(`SELECT doc FROM ${this.t.ops} UNION SELECT doc FROM ${this.t.snapshots} WHERE doc <> '${CLUSTER_ROW}'`)
    return r.rows.map((row) => row.doc)
  }

  /** Kept in the snapshots table under a name no document can have ('#' is not allowed in ids). */
  async clusterId(): Promise<string> {
    await this.db().query(`INSERT INTO ${this.t.snapshots} (doc, seq, snapshot) VALUES ($1, 0, $2) ON CONFLICT (doc) DO NOTHING`, [CLUSTER_ROW, newId()])
    const r = await this.db().query<{ snapshot: string }>(`SELECT snapshot FROM ${this.t.snapshots} WHERE doc = $1`, [CLUSTER_ROW])
    return r.rows[0]!.snapshot
  }

  /**
   * Inserts a row in a transaction that is rolled back: rejects when this database refuses writes (a
   * read-only standby after a failover, `default_transaction_read_only`, revoked privileges, a lost
   * connection), without leaving anything behind.
   */
  async probeWrite(): Promise<void> {
    const client = await this.db().connect()
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      // '' is never a document id (ids have 1 to 256 characters).
      await client.query(`INSERT INTO ${this.t.snapshots} (doc, seq, snapshot) VALUES ('', 0, '') ON CONFLICT (doc) DO NOTHING`)
    } catch (err) {
      if (lostConnection(err)) broken = err as Error
      throw err
    } finally {
      await client.query('ROLLBACK').catch(() => {})
      client.release(broken)
    }
  }

  async close(): Promise<void> {
    const pool = this.pool
    this.initializing = undefined
    if (this.ownsPool) {
      this.pool = undefined
      if (pool) await pool.end()
    }
  }
}
