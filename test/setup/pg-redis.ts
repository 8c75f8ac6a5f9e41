// Throwaway PostgreSQL and Redis servers on 127.0.0.1 for tests, multi-node tests and the bench.
// Each start function picks a free port, keeps its data in a fresh temp dir and returns { url, stop() };
// stop() shuts the server down and deletes the dir.
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, chownSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface Service {
  url: string
  stop(): Promise<void>
}

/** A Redis that can go down and come back on the same port (an outage, then recovery). */
export interface RestartableService extends Service {
  /** Shuts Redis down (clients see the connection drop); `start()` brings it back on the same port. */
  down(): Promise<void>
  start(): Promise<void>
}

const INSTALL_HINT = '.ci/run installs them (apt-get install -y postgresql redis-server)'

/** A TCP port that is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port'))))
    })
  })
}

function pgBinDir(): string {
  const fromEnv = process.env.ZYNC_PG_BIN
  if (fromEnv) {
    if (existsSync(path.join(fromEnv, 'initdb'))) return fromEnv
    throw new Error(`[zync test] ZYNC_PG_BIN=${fromEnv} has no initdb`)
  }
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')) && existsSync(path.join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : []
  if (versions.length === 0) {
    throw new Error(
      `[zync test] PostgreSQL server binaries (initdb, pg_ctl) not found in ${root}/*/bin. ${INSTALL_HINT}; ` +
        'or set ZYNC_TEST_PG_URL to an existing database.',
    )
  }
  return path.join(root, versions[0]!, 'bin')
}

function redisBin(): string {
  const candidates = [process.env.ZYNC_REDIS_BIN, '/usr/bin/redis-server', '/usr/local/bin/redis-server'].filter(Boolean) as string[]
  const found = candidates.find((c) => existsSync(c))
  if (!found) {
    throw new Error(`[zync test] redis-server not found (looked at ${candidates.join(', ')}). ${INSTALL_HINT}; or set ZYNC_TEST_REDIS_URL.`)
  }
  return found
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** Runs a PostgreSQL binary; as root, as the postgres user (initdb and postgres refuse to run as root). */
async function runPg(bin: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args]
  try {
    return await run(cmd, argv, { maxBuffer: 16 * 1024 * 1024 })
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string }
    throw new Error(`[zync test] ${path.basename(bin)} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

function chownTree(dir: string): void {
  if (!isRoot) return
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
  chownSync(dir, uid, gid)
}

function readTail(file: string, n = 4000): string {
  try {
    const s = readFileSync(file, 'utf8')
    return s.slice(-n)
  } catch {
    return ''
  }
}

/** Starts a PostgreSQL cluster (trust auth, fsync on) on 127.0.0.1. The URL points at database `postgres`. */
export async function startPostgres(): Promise<Service> {
  const bin = pgBinDir()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zync-pg-'))
  const data = path.join(dir, 'data')
  const logFile = path.join(dir, 'postgres.log')
  try {
    chownTree(dir)
    await runPg(path.join(bin, 'initdb'), ['--auth=trust', '--username=postgres', '--encoding=UTF8', '--locale=C', '-D', data])
    let lastErr: unknown
    // The free port may be taken between the check and the bind: retry with another one.
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort()
      const opts = [
        '-c listen_addresses=127.0.0.1',
        `-p ${port}`,
        `-c unix_socket_directories=${dir}`,
        '-c fsync=on',
        '-c synchronous_commit=on',
        '-c max_connections=200',
      ].join(' ')
      try {
        await runPg(path.join(bin, 'pg_ctl'), ['-D', data, '-l', logFile, '-w', '-t', '60', '-o', opts, 'start'])
      } catch (err) {
        lastErr = new Error(`${(err as Error).message}\n--- postgres.log ---\n${readTail(logFile)}`)
        continue
      }
      let stopped = false
      return {
        url: `postgres://postgres@127.0.0.1:${port}/postgres`,
        async stop() {
          if (stopped) return
          stopped = true
          try {
            await runPg(path.join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '60', 'stop', '-m', 'fast'])
          } finally {
            rmSync(dir, { recursive: true, force: true })
          }
        },
      }
    }
    throw lastErr
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** Sends one command to Redis over RESP and returns the first reply line. */
function redisCommand(port: number, args: string[], timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port })
    let buf = ''
    const done = (err: Error | null, value?: string) => {
      clearTimeout(timer)
      sock.destroy()
      if (err) reject(err)
      else resolve(value ?? '')
    }
    const timer = setTimeout(() => done(new Error('redis command timed out')), timeoutMs)
    sock.on('connect', () => {
      sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''))
    })
    sock.on('data', (d) => {
      buf += d.toString()
      const i = buf.indexOf('\r\n')
      if (i >= 0) done(null, buf.slice(0, i))
    })
    sock.on('error', (e) => done(e))
    // SHUTDOWN closes the connection without a reply.
    sock.on('close', () => done(null, buf))
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Starts redis-server (no persistence) on 127.0.0.1. */
export async function startRedis(): Promise<RestartableService> {
  const bin = redisBin()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zync-redis-'))
  const pidFile = path.join(dir, 'redis.pid')
  const logFile = path.join(dir, 'redis.log')
  const redisArgs = (port: number) => ['--bind', '127.0.0.1', '--port', String(port), '--daemonize', 'yes', '--save', '', '--appendonly', 'no', '--pidfile', pidFile, '--logfile', logFile, '--dir', dir]
  try {
    let lastErr: unknown
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort()
      try {
        await run(bin, redisArgs(port))
      } catch (err) {
        lastErr = err
        continue
      }
      // --daemonize returns before the server listens: wait for PING.
      const deadline = Date.now() + 10_000
      let up = false
      while (Date.now() < deadline) {
        const reply = await redisCommand(port, ['PING'], 500).catch(() => '')
        if (reply === '+PONG') {
          up = true
          break
        }
        await sleep(50)
      }
      if (!up) {
        lastErr = new Error(`[zync test] redis-server did not answer on 127.0.0.1:${port}\n--- redis.log ---\n${readTail(logFile)}`)
        const pid = readPid(pidFile)
        if (pid && pidAlive(pid)) process.kill(pid, 'SIGKILL')
        continue
      }
      let pid = readPid(pidFile)
      let stopped = false
      const shutdown = async () => {
        await redisCommand(port, ['SHUTDOWN', 'NOSAVE']).catch(() => '')
        const until = Date.now() + 5000
        while (pid && pidAlive(pid) && Date.now() < until) await sleep(20)
        if (pid && pidAlive(pid)) process.kill(pid, 'SIGKILL')
      }
      return {
        url: `redis://127.0.0.1:${port}`,
        down: shutdown,
        async start() {
          await run(bin, redisArgs(port))
          const deadline = Date.now() + 10_000
          while (Date.now() < deadline && (await redisCommand(port, ['PING'], 500).catch(() => '')) !== '+PONG') await sleep(50)
          pid = readPid(pidFile)
        },
        async stop() {
          if (stopped) return
          stopped = true
          try {
            await shutdown()
          } finally {
            rmSync(dir, { recursive: true, force: true })
          }
        },
      }
    }
    throw lastErr
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim())
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}
