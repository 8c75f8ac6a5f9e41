import { ZyncError } from '../../core/errors'
import { MemoryStorage } from './memory'
import type { ServerStorage } from './types'

export { AppendConflictError, pathStartsWith } from './types'
export type { LogEntry, OpRecord, ServerStorage } from './types'
export { MemoryStorage } from './memory'
// These modules load their driver (better-sqlite3, pg) only in init(), so re-exporting the classes
// does not load either driver.
export { SqliteStorage, type SqliteStorageOptions } from './sqlite'
export { PostgresStorage, type PostgresStorageOptions, type PgPoolLike } from './postgres'

/**
 * Which storage `createSyncServer` creates: in memory (nothing survives the process: tests and demos),
 * a SQLite file (created when missing), or PostgreSQL at a connection URL, in `schema` (default
 * 'public'; created when missing). Or pass a ServerStorage instance instead.
 */
export type StorageOptions =
  | { kind: 'memory' }
  | { kind: 'sqlite'; file: string }
  | { kind: 'postgres'; url: string; schema?: string }

function isStorage(x: StorageOptions | ServerStorage): x is ServerStorage {
  return typeof (x as Partial<ServerStorage>).append === 'function' && typeof (x as Partial<ServerStorage>).init === 'function'
}

/**
 * Creates the storage the options describe (or takes a ready-made one), runs `init()` and returns it.
 * `lock`: a SQLite storage holds its file's lock (SqliteStorageOptions.lock), as createSyncServer asks.
 * Default false.
 */
export async function createStorage(opts: StorageOptions | ServerStorage, { lock = false }: { lock?: boolean } = {}): Promise<ServerStorage> {
  const bad = storageProblem(opts)
  if (bad) throw new ZyncError('BAD_REQUEST', `[zync] storage ${bad}`)
  let storage: ServerStorage
  if (isStorage(opts)) {
    storage = opts
  } else if (opts.kind === 'memory') {
    storage = new MemoryStorage()
  } else if (opts.kind === 'sqlite') {
    const { SqliteStorage } = await import('./sqlite')
    storage = new SqliteStorage({ file: opts.file, lock })
  } else {
    const { PostgresStorage } = await import('./postgres')
    storage = new PostgresStorage({ connectionString: opts.url, ...(opts.schema !== undefined ? { schema: opts.schema } : {}) })
  }
  await storage.init()
  return storage
}

const FORMS = "{ kind: 'memory' }, { kind: 'sqlite', file }, { kind: 'postgres', url, schema? } or a ServerStorage"

/** What is wrong with a storage option from JavaScript or a config file (the types catch it in TypeScript), or undefined. */
function storageProblem(opts: unknown): string | undefined {
  if (typeof opts === 'string') return `must be an object, ${FORMS} (got ${JSON.stringify(opts)}; the client's storage: 'memory' is { kind: 'memory' } here)`
  if (typeof opts !== 'object' || opts === null) return `must be ${FORMS} (got ${opts === null ? 'null' : typeof opts})`
  if (isStorage(opts as ServerStorage)) return undefined
  const o = opts as { kind?: unknown; file?: unknown; url?: unknown; schema?: unknown }
  if (o.kind === 'memory') return undefined
  if (o.kind === 'sqlite') return typeof o.file === 'string' && o.file.trim() !== '' ? undefined : `{ kind: 'sqlite' } needs file, a path (got ${JSON.stringify(o.file) ?? 'undefined'}; ':memory:' for a database in memory)`
  if (o.kind === 'postgres') {
    if (typeof o.url !== 'string' || o.url === '') return `{ kind: 'postgres' } needs url, a connection URL such as postgres://user:pass@127.0.0.1:5432/db (got ${JSON.stringify(o.url) ?? 'undefined'})`
    return o.schema === undefined || typeof o.schema === 'string' ? undefined : `{ kind: 'postgres' }: schema must be a string (got ${JSON.stringify(o.schema)})`
  }
  return `kind must be 'memory', 'sqlite' or 'postgres' (got ${JSON.stringify(o.kind) ?? 'undefined'}); or pass a ServerStorage (an object with init() and append())`
}
