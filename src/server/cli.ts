#!/usr/bin/env node
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { corsProblem } from './cors'
import { maskedCredentials } from './redact'
import type { SyncServerOptions } from './server'
import { createLogger, type LogLevel } from './logger'
import type { StorageOptions } from './storage/index'
import { DEFAULT_LIMITS, type ServerLimits } from './limits'

const HELP = `zync-server: the reference zync sync server

Usage: zync-server [options]

  --port <n>            TCP port; 0 picks a free one (default 4000)      env ZYNC_PORT
  --host <addr>         interface to listen on (default 127.0.0.1)       env ZYNC_HOST
  --data <file>         SQLite database file (default ./zync.db)         env ZYNC_DATA
  --postgres <url>      use PostgreSQL instead of SQLite                 env ZYNC_POSTGRES_URL
  --schema <name>       PostgreSQL schema for the tables (default public) env ZYNC_POSTGRES_SCHEMA
  --redis <url>         fan out across processes through Redis           env ZYNC_REDIS_URL
  --redis-key <prefix>  Redis channel prefix, one per cluster (default zync) env ZYNC_REDIS_KEY
  --cors <origins>      comma-separated allowed origins, or *            env ZYNC_CORS
                        (default: http(s)://localhost, 127.0.0.1, [::1] on any port)
  --snapshot-every <n>  snapshot each document every n ops (default 2000+) env ZYNC_SNAPSHOT_EVERY
  --keep-log <n>        compact the log to n entries behind the newest snapshot
                        (default: keep everything)                       env ZYNC_KEEP_LOG
  --memory              keep everything in memory (nothing survives)     env ZYNC_MEMORY=1 (or true, yes)
  --ops-per-second <n>  ops one connection may send per second, bursts of twice that
                        (default 5000; clients pace themselves to it)    env ZYNC_OPS_PER_SECOND
  --limits <json>       per-connection limits, e.g. '{"docsPerSocket":1000}'   env ZYNC_LIMITS
                        (see docs/SERVER.md; --ops-per-second wins over its key)
  --auth <module>       JS module exporting authenticate and/or authorize  env ZYNC_AUTH
                        (named exports or on its default export; see docs/SERVER.md)
  --reauthorize-ms <n>  check open connections' access every n ms       env ZYNC_REAUTHORIZE_MS
                        (default 60000; 0: only on connect and join)
  --log-level <lvl>     debug | info | warn | error | silent (default info)  env ZYNC_LOG_LEVEL
  -h, --help            show this help

Options win over environment variables; a storage option (--data, --postgres, --memory) wins over
every storage variable, and only one storage may be given. Prints "zync-server listening on <url> (<storage>)" on
stdout when ready; logs are JSON lines on stderr.

SIGTERM / SIGINT / SIGHUP: stop accepting, finish in-flight writes, close (a second signal exits at once).
Metrics: GET /metrics (Prometheus). Health: GET /healthz. Readiness: GET /readyz.`

const LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent']

class UsageError extends Error {}

/** An integer flag, else its environment variable (named in the error when the value came from it). */
function int(name: string, flag: string | undefined, env: string, envValue: string | undefined, min: number, max: number): number | undefined {
  const raw = flag ?? envValue
  if (raw === undefined) return undefined
  // Decimal digits only: Number() took "0x10" and "1e3" (a port of 16, or 1000).
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag === undefined ? env : name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`)
  return n
}

/**
 * An empty value, of a flag or a variable, is refused: `--data ""` ran on a SQLite database private to
 * the process (every acknowledged write lost at the restart), `--auth ""` without authentication,
 * `--host ""` on every interface. A variable is unset to get its default.
 */
function noEmpty(values: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [k, v] of Object.entries(values)) if (typeof v === 'string' && v.trim() === '') throw new UsageError(`--${k} needs a value, got ${JSON.stringify(v)}`)
  for (const k of ENV_VARS) {
    const v = env[k]
    if (v !== undefined && v.trim() === '' && k !== 'ZYNC_MEMORY') throw new UsageError(`${k} is set but empty; unset it for the default`)
  }
}

const ENV_VARS = ['ZYNC_PORT', 'ZYNC_HOST', 'ZYNC_DATA', 'ZYNC_POSTGRES_URL', 'ZYNC_POSTGRES_SCHEMA', 'ZYNC_MEMORY', 'ZYNC_REDIS_URL', 'ZYNC_REDIS_KEY', 'ZYNC_CORS', 'ZYNC_SNAPSHOT_EVERY', 'ZYNC_KEEP_LOG', 'ZYNC_OPS_PER_SECOND', 'ZYNC_LIMITS', 'ZYNC_AUTH', 'ZYNC_REAUTHORIZE_MS', 'ZYNC_LOG_LEVEL']

/** `--limits` / ZYNC_LIMITS: a JSON object of limits (names of DEFAULT_LIMITS, positive numbers). */
function limitsOf(name: string, raw: string | undefined): Partial<ServerLimits> | undefined {
  if (raw === undefined || raw.trim() === '') return undefined
  let v: unknown
  try {
    v = JSON.parse(raw)
  } catch {
    throw new UsageError(`${name} must be a JSON object such as '{"docsPerSocket":1000}', got ${JSON.stringify(raw)}`)
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${name} must be a JSON object such as '{"docsPerSocket":1000}', got ${JSON.stringify(raw)}`)
  for (const [k, n] of Object.entries(v)) {
    if (!(k in DEFAULT_LIMITS)) throw new UsageError(`${name}: ${k} is not a limit (${Object.keys(DEFAULT_LIMITS).join(', ')})`)
    if (typeof n !== 'number' || !(n > 0)) throw new UsageError(`${name}: ${k} must be a positive number, got ${JSON.stringify(n)}`)
  }
  return v as Partial<ServerLimits>
}

/** Turns argv and the environment into server options; options win over variables. */
function parseCli(argv: string[], env: NodeJS.ProcessEnv): { help: true } | { help: false; options: SyncServerOptions; auth?: string; authFrom?: string } {
  let values
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        data: { type: 'string' },
        postgres: { type: 'string' },
        schema: { type: 'string' },
        redis: { type: 'string' },
        'redis-key': { type: 'string' },
        cors: { type: 'string' },
        'snapshot-every': { type: 'string' },
        'keep-log': { type: 'string' },
        'ops-per-second': { type: 'string' },
        limits: { type: 'string' },
        memory: { type: 'boolean' },
        auth: { type: 'string' },
        'reauthorize-ms': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }))
  } catch (err) {
    const message = (err as Error).message
    // node's parser takes a value starting with a dash (a negative number) for another option.
    const dashed = /Option '(--[\w-]+)' argument is ambiguous/.exec(message)
    throw new UsageError(dashed ? `${dashed[1]} needs a value that does not start with "-" (negative numbers are not accepted)` : message)
  }
  if (values.help) return { help: true }
  noEmpty(values, env)
  const port = int('--port', values.port, 'ZYNC_PORT', env.ZYNC_PORT, 0, 65535) ?? 4000
  // Storage: flags win over the environment as a whole (a --data flag is never overridden by a
  // ZYNC_POSTGRES_URL or ZYNC_MEMORY left in the environment), and two storages at once are refused.
  const given = [values.postgres !== undefined && '--postgres', values.memory && '--memory', values.data !== undefined && '--data'].filter(Boolean)
  if (given.length > 1) throw new UsageError(`${given.join(' and ')} name different storages; give one`)
  const flagged = given.length === 1
  const pg = flagged ? values.postgres : env.ZYNC_POSTGRES_URL
  const memoryEnv = (env.ZYNC_MEMORY ?? '').trim()
  if (!flagged && !/^(1|true|yes|0|false|no|)$/i.test(memoryEnv)) throw new UsageError(`ZYNC_MEMORY must be 1, true or yes (or 0, false, no), got ${JSON.stringify(env.ZYNC_MEMORY)}`)
  const memory = flagged ? !!values.memory : /^(1|true|yes)$/i.test(memoryEnv)
  if (!flagged && pg && memory) throw new UsageError('ZYNC_POSTGRES_URL and ZYNC_MEMORY name different storages; set one')
  // A variable is named as such in its refusal; variables that need another one refuse to go without it
  // (a misspelt ZYNC_REDIS_URL left a ZYNC_REDIS_KEY node on its own, silently), except where a storage
  // flag set the storage: it wins over the storage variables as a whole.
  const schema = values.schema ?? (flagged ? undefined : env.ZYNC_POSTGRES_SCHEMA)
  if (values.schema !== undefined && !pg) throw new UsageError('--schema applies to PostgreSQL storage only (give --postgres)')
  if (schema !== undefined && !pg) throw new UsageError('ZYNC_POSTGRES_SCHEMA applies to PostgreSQL storage only (set ZYNC_POSTGRES_URL or give --postgres)')
  if (pg && !/^postgres(ql)?:\/\//i.test(pg)) throw new UsageError(`${flagged ? '--postgres' : 'ZYNC_POSTGRES_URL'} must be a postgres:// URL, got ${JSON.stringify(maskedCredentials(pg))}`)
  const storage: StorageOptions = pg
    ? { kind: 'postgres', url: pg, ...(schema ? { schema } : {}) }
    : memory
      ? { kind: 'memory' }
      : { kind: 'sqlite', file: values.data ?? env.ZYNC_DATA ?? './zync.db' }
  const redis = values.redis ?? env.ZYNC_REDIS_URL
  const redisKey = values['redis-key'] ?? env.ZYNC_REDIS_KEY
  if (values['redis-key'] !== undefined && !redis) throw new UsageError('--redis-key applies only with --redis')
  if (redisKey !== undefined && !redis) throw new UsageError('ZYNC_REDIS_KEY applies only with ZYNC_REDIS_URL or --redis')
  if (redis && !/^rediss?:\/\//i.test(redis)) throw new UsageError(`${values.redis !== undefined ? '--redis' : 'ZYNC_REDIS_URL'} must be a redis:// or rediss:// URL, got ${JSON.stringify(maskedCredentials(redis))}`)
  // Nodes fanning out through Redis must share one storage: a node left on a SQLite file of its own (a
  // unit file missing ZYNC_POSTGRES_URL) acknowledged writes no other node had, and its clients and
  // theirs showed each other's at the same seqs, different documents for good (an operator trial).
  if (redis && storage.kind !== 'postgres') {
    const what = storage.kind === 'memory' ? 'in memory' : `on the SQLite file ${storage.file}`
    throw new UsageError(`${values.redis !== undefined ? '--redis' : 'ZYNC_REDIS_URL'} fans out between nodes that share one PostgreSQL database: give --postgres (or ZYNC_POSTGRES_URL). This node would keep its documents ${what}, apart from the others`)
  }
  const cors = values.cors ?? env.ZYNC_CORS
  const corsList = cors === undefined ? undefined : cors.trim() === '*' ? '*' : cors.split(',').map((c) => c.trim()).filter(Boolean)
  // "," named no origin: every browser would be refused, localhost included.
  if (Array.isArray(corsList) && corsList.length === 0) throw new UsageError(`${values.cors !== undefined ? '--cors' : 'ZYNC_CORS'} names no origin, got ${JSON.stringify(cors)}`)
  const badCors = corsProblem(corsList)
  if (badCors) throw new UsageError(badCors.replace(/^cors/, values.cors !== undefined ? '--cors' : 'ZYNC_CORS (--cors)'))
  const level = (values['log-level'] ?? env.ZYNC_LOG_LEVEL ?? 'info') as LogLevel
  if (!LEVELS.includes(level)) throw new UsageError(`${values['log-level'] !== undefined ? '--log-level' : 'ZYNC_LOG_LEVEL (--log-level)'} must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(level)}`)
  const snapshotEvery = int('--snapshot-every', values['snapshot-every'], 'ZYNC_SNAPSHOT_EVERY', env.ZYNC_SNAPSHOT_EVERY, 1, 1e9)
  const keepLog = int('--keep-log', values['keep-log'], 'ZYNC_KEEP_LOG', env.ZYNC_KEEP_LOG, 0, 1e9)
  const opsPerSecond = int('--ops-per-second', values['ops-per-second'], 'ZYNC_OPS_PER_SECOND', env.ZYNC_OPS_PER_SECOND, 1, 1e9)
  const limits = limitsOf(values.limits === undefined ? 'ZYNC_LIMITS' : '--limits', values.limits ?? env.ZYNC_LIMITS)
  const reauthorizeMs = int('--reauthorize-ms', values['reauthorize-ms'], 'ZYNC_REAUTHORIZE_MS', env.ZYNC_REAUTHORIZE_MS, 0, 1e9)
  const auth = values.auth ?? env.ZYNC_AUTH
  return {
    help: false,
    ...(auth ? { auth, authFrom: values.auth !== undefined ? '--auth' : 'ZYNC_AUTH' } : {}),
    options: {
      port,
      host: values.host ?? env.ZYNC_HOST ?? '127.0.0.1',
      storage,
      ...(redis ? { redis: { url: redis, ...(redisKey ? { key: redisKey } : {}) } } : {}),
      ...(corsList ? { cors: corsList } : {}),
      ...(snapshotEvery !== undefined ? { snapshotEvery } : {}),
      ...(keepLog !== undefined ? { keepLog } : {}),
      ...(opsPerSecond !== undefined || limits ? { limits: { ...limits, ...(opsPerSecond !== undefined ? { opsPerSecond } : {}) } } : {}),
      ...(reauthorizeMs !== undefined ? { reauthorizeMs } : {}),
      logLevel: level,
    },
  }
}

/**
 * Loads `--auth`: a module (path relative to the working directory) exporting `authenticate` and/or
 * `authorize`, as named exports or on its default export, with the signatures of the server options.
 */
async function loadAuth(file: string, source = '--auth'): Promise<Pick<SyncServerOptions, 'authenticate' | 'authorize'>> {
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(resolve(file)).href)) as Record<string, unknown>
  } catch (err) {
    throw new UsageError(`${source} ${file}: cannot load the module: ${(err as Error).message}`)
  }
  const from = (name: string): unknown => mod[name] ?? (mod.default as Record<string, unknown> | undefined)?.[name]
  const authenticate = from('authenticate')
  const authorize = from('authorize')
  for (const [name, fn] of [['authenticate', authenticate], ['authorize', authorize]] as const) {
    if (fn !== undefined && typeof fn !== 'function') throw new UsageError(`${source} ${file}: ${name} must be a function`)
  }
  if (authenticate === undefined && authorize === undefined) throw new UsageError(`${source} ${file}: the module exports neither authenticate nor authorize`)
  return {
    ...(authenticate ? { authenticate: authenticate as SyncServerOptions['authenticate'] } : {}),
    ...(authorize ? { authorize: authorize as SyncServerOptions['authorize'] } : {}),
  }
}

export async function main(argv = process.argv.slice(2), env = process.env): Promise<void> {
  const parsed = parseCli(argv, env)
  if (parsed.help) {
    process.stdout.write(HELP + '\n')
    return
  }
  // The server's own imports need these peers: without them Node stopped at its module loader with a
  // stack trace (even for --help, in a new-user trial); the others are asked for when used.
  const missing = ['socket.io', 'zod'].filter((p) => !resolvable(p))
  if (missing.length > 0) throw new Error(`needs ${missing.join(' and ')}, which ${missing.length > 1 ? 'are' : 'is'} not installed: npm install ${missing.join(' ')}`)
  const { createSyncServer } = await import('./server')
  const log = createLogger(parsed.options.logLevel ?? 'info')
  const server = await createSyncServer({ ...parsed.options, logger: log, ...(parsed.auth ? await loadAuth(parsed.auth, parsed.authFrom) : {}) })
  const st = parsed.options.storage as StorageOptions
  // The schema is named: one that did not exist is created empty, so a misspelt name starts a node on its own.
  const kind = st.kind === 'postgres' && st.schema ? `postgres, schema ${st.schema}` : st.kind
  let stopping = false
  const stop = (sig: string) => {
    if (stopping) {
      log.warn('signal again: exiting without waiting', { signal: sig })
      process.exit(1)
    }
    stopping = true
    // warn: an operator running at --log-level warn still sees the node leave.
    log.warn('shutting down gracefully', { signal: sig })
    server.close().then(
      () => {
        // Exit once the sockets have flushed their last acknowledgements (process.exit() would drop
        // writes still queued in userland); force it if something keeps the loop alive.
        process.exitCode = 0
        setTimeout(() => process.exit(0), 3000).unref()
      },
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${String(err)}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // A closed terminal or SSH session: the same graceful stop (by default Node died at once, cutting
  // the clients off mid-batch).
  process.on('SIGHUP', () => stop('SIGHUP'))
  // Ready only once a signal would be handled: a supervisor that stops the server right after this
  // line gets a graceful shutdown, not a killed process.
  process.stdout.write(`zync-server listening on ${server.url} (${kind})\n`)
}

/** Whether a package can be imported from here. */
function resolvable(pkg: string): boolean {
  try {
    import.meta.resolve(pkg)
    return true
  } catch {
    return false
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`zync-server: ${(err as Error).message}\n`)
  if (err instanceof UsageError) process.stderr.write('Run zync-server --help for the options.\n')
  process.exit(err instanceof UsageError ? 2 : 1)
})
