import { parseArgs } from 'node:util'
import { createSyncServer } from './server'
import type { LogLevel } from './logger'
import type { StorageOptions } from './storage/index'

const HELP = `zync-server: the reference zync sync server

Usage: zync-server [options]

  --port <n>          TCP port (default 4000)                         env ZYNC_PORT
  --host <addr>       interface to listen on (default 127.0.0.1)       env ZYNC_HOST
  --data <file>       SQLite database file (default ./zync.db)         env ZYNC_DATA
  --postgres <url>    use PostgreSQL instead of SQLite                 env ZYNC_POSTGRES_URL
  --redis <url>       fan out across processes through Redis           env ZYNC_REDIS_URL
  --cors <origins>    comma-separated allowed origins, or *            env ZYNC_CORS
                      (default: localhost origins only)
  --memory            keep everything in memory (nothing survives)     env ZYNC_MEMORY=1
  --log-level <lvl>   debug | info | warn | error | silent (default info)  env ZYNC_LOG_LEVEL
  -h, --help          show this help

SIGTERM / SIGINT: stop accepting, finish in-flight writes, close.
Metrics: GET /metrics (Prometheus). Health: GET /healthz.`

export async function main(argv = process.argv.slice(2), env = process.env): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      postgres: { type: 'string' },
      redis: { type: 'string' },
      cors: { type: 'string' },
      memory: { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  if (values.help) {
    process.stdout.write(HELP + '\n')
    return
  }
  const port = Number(values.port ?? env.ZYNC_PORT ?? 4000)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${values.port ?? env.ZYNC_PORT}`)
  const pg = values.postgres ?? env.ZYNC_POSTGRES_URL
  const memory = values.memory ?? env.ZYNC_MEMORY === '1'
  const storage: StorageOptions = pg ? { kind: 'postgres', url: pg } : memory ? { kind: 'memory' } : { kind: 'sqlite', file: values.data ?? env.ZYNC_DATA ?? './zync.db' }
  const redis = values.redis ?? env.ZYNC_REDIS_URL
  const cors = values.cors ?? env.ZYNC_CORS
  const level = (values['log-level'] ?? env.ZYNC_LOG_LEVEL ?? 'info') as LogLevel
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(level)) throw new Error(`--log-level must be debug, info, warn, error or silent`)
  const server = await createSyncServer({
    port,
    host: values.host ?? env.ZYNC_HOST ?? '127.0.0.1',
    storage,
    ...(redis ? { redis: { url: redis } } : {}),
    ...(cors ? { cors: cors === '*' ? '*' : cors.split(',').map((s) => s.trim()) } : {}),
    logLevel: level,
  })
  process.stdout.write(`zync-server listening on ${server.url} (${storage.kind})\n`)
  let stopping = false
  const stop = (sig: string) => {
    if (stopping) return
    stopping = true
    process.stderr.write(`${sig}: shutting down gracefully\n`)
    server.close().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`shutdown failed: ${String(err)}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main().catch((err) => {
  process.stderr.write(`zync-server: ${(err as Error).message}\n`)
  process.exit(1)
})
