import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The server script: the bundled one when the launcher built it (bench/launch.mjs), else the source via tsx. */
const BUNDLED = process.env.ZYNC_BENCH_SERVER
const SCRIPT = BUNDLED ?? fileURLToPath(new URL('../servers/server.ts', import.meta.url))

export interface BenchServer {
  url: string
  port: number
  /** Bytes through every TCP connection of the server so far (both directions). */
  bytes(): Promise<number>
  /** Server heapUsed after full GCs. */
  heap(): Promise<{ heapUsed: number; connections: number }>
  close(): Promise<void>
}

/** Starts a bench server (zync, bare socket.io or y-websocket) in a separate Node process: the bundled script, or the source via tsx. */
export async function startServer(kind: 'zync' | 'socketio' | 'yjs', storage: 'memory' | 'sqlite' = 'memory'): Promise<BenchServer> {
  const child: ChildProcess = fork(SCRIPT, [kind, storage], { execArgv: [...(BUNDLED ? [] : ['--import', 'tsx']), '--expose-gc', ...(process.env.BENCH_SERVER_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_SERVER_PROF}`] : []), ...(process.env.BENCH_SERVER_FLAGS ? process.env.BENCH_SERVER_FLAGS.split(' ') : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const waiting = new Set<(err: Error) => void>()
  child.once('exit', (code) => {
    for (const fail of waiting) fail(new Error(`[bench] ${kind} server exited (${code})`))
  })
  const ask = <T>(type: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const on = (m: { type: string } & T) => {
        if (m.type !== type) return
        child.off('message', on)
        waiting.delete(reject)
        resolve(m)
      }
      child.on('message', on)
      waiting.add(reject)
      if (type !== 'ready') child.send({ type })
    })
  const { port } = await ask<{ port: number }>('ready')
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    bytes: async () => (await ask<{ bytes: number }>('stats')).bytes,
    heap: () => ask<{ heapUsed: number; connections: number }>('heap'),
    close: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.send({ type: 'close' })
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    },
  }
}

type ServerSpec = readonly [kind: 'zync' | 'socketio' | 'yjs', storage?: 'memory' | 'sqlite']

/** Starts the servers, runs `fn` with them, and closes every one that started, also on failure. */
export async function withServers<const S extends readonly ServerSpec[], T>(specs: S, fn: (servers: { [K in keyof S]: BenchServer }) => Promise<T>): Promise<T> {
  const servers: BenchServer[] = []
  try {
    for (const [kind, storage] of specs) servers.push(await startServer(kind, storage))
    return await fn(servers as { [K in keyof S]: BenchServer })
  } finally {
    await Promise.all(servers.map((s) => s.close()))
  }
}
