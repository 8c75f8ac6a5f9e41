#!/usr/bin/env node
// `npm start`: the zync sync server (embedded SQLite, .zync-data/demo.db) and the demo app (Vite dev
// server), both on 127.0.0.1, in this one process. Plain node, no build step: TypeScript sources are
// loaded through tsx, the app through Vite. Env PORT sets the sync server's port (default 4000, a
// free one if that is taken); VITE_PORT the app's (default 5173, the next free one if taken).
import { mkdirSync } from 'node:fs'
import { createServer as createNetServer } from 'node:net'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tsImport } from 'tsx/esm/api'
import { createServer as createViteServer } from 'vite'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const HOST = '127.0.0.1'
const DOC = 'demo-board'

function isFree(port) {
  return new Promise((resolve) => {
    const probe = createNetServer()
    probe.once('error', () => resolve(false))
    probe.listen(port, HOST, () => probe.close(() => resolve(true)))
  })
}

function portFromEnv(name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number (0-65535), got "${raw}"`)
  return n
}

async function main() {
  const wanted = portFromEnv('PORT', 4000)
  const port = wanted === 0 || (await isFree(wanted)) ? wanted : 0
  if (port !== wanted) process.stdout.write(`port ${wanted} is taken; the sync server picks a free one\n`)

  const dataFile = join(root, '.zync-data', 'demo.db')
  mkdirSync(dirname(dataFile), { recursive: true })
  const { createDemoServer } = await tsImport('../demo/server.ts', import.meta.url)
  const sync = await createDemoServer({ port, file: dataFile, seed: [DOC], logLevel: process.env.ZYNC_LOG_LEVEL ?? 'warn' })

  let vite
  try {
    vite = await createViteServer({
      configFile: join(root, 'demo', 'vite.config.ts'),
      clearScreen: false,
      logLevel: 'warn',
      server: { host: HOST, port: portFromEnv('VITE_PORT', 5173), strictPort: false },
      // The app finds the sync server through this global when it is not on port 4000.
      plugins: [
        {
          name: 'zync-demo-server-url',
          transformIndexHtml: () => [{ tag: 'script', children: `window.__ZYNC_SERVER__ = ${JSON.stringify(sync.url)}`, injectTo: 'head-prepend' }],
        },
      ],
    })
    await vite.listen()
  } catch (err) {
    await sync.close()
    throw err
  }

  const url = vite.resolvedUrls?.local[0] ?? `http://${HOST}:${vite.config.server.port}/`
  process.stdout.write(`zync demo: ${url}  (sync server ${sync.url}, SQLite ${relative(process.cwd(), dataFile) || dataFile})\n`)
  process.stdout.write('Open it in two windows to add more people. Ctrl-C stops both.\n')

  let stopping = false
  const stop = async (signal) => {
    if (stopping) {
      process.stderr.write('forced exit\n')
      process.exit(1)
    }
    stopping = true
    process.stdout.write(`\n${signal}: stopping the app and the sync server...\n`)
    const results = await Promise.allSettled([vite.close(), sync.close()])
    const failed = results.filter((r) => r.status === 'rejected')
    for (const r of failed) process.stderr.write(`shutdown: ${r.reason?.message ?? r.reason}\n`)
    process.exit(failed.length ? 1 : 0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
}

main().catch((err) => {
  process.stderr.write(`zync demo: ${err?.stack ?? err}\n`)
  process.exit(1)
})
