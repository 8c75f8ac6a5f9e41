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
  let storage: ServerStorage
  if (isStorage(opts)) {
    storage = opts
  } else if (opts.kind === 'memory') {
    storage = new MemoryStorage()
  } else if (opts.kind === 'sqlite') {
    const { SqliteStorage } = await import('./sqlite')
    storage = new SqliteStorage({ file: opts.file, lock })
  } else if (opts.kind === 'postgres') {
    const { PostgresStorage } = await import('./postgres')
    storage = new PostgresStorage({ connectionString: opts.url, ...(opts.schema !== undefined ? { schema: opts.schema } : {}) })
  } else {
    throw new Error(`[zync] unknown storage kind ${JSON.stringify((opts as { kind?: unknown }).kind)}`)
  }
  await storage.init()
  return storage
}
