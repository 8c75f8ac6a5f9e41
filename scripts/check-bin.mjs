// `npm run test:bin`: the built `zync-server` bin (dist/server/cli.js, what `npx zync-server` runs)
// starts, listens, takes a plugged-in --auth module, serves a join, and stops cleanly on SIGTERM.
// Runs after `npm run build` (the size step builds dist).
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { io } from 'socket.io-client'

const dir = mkdtempSync(join(tmpdir(), 'zync-bin-'))
const auth = join(dir, 'auth.mjs')
// The module takes ZyncError from the package's server entry (dist/server/index.js, what 'zync/server'
// resolves to), as docs/SERVER.md says: the CLI's own bundle of the server has its own copy of the
// class, and a retryable refusal (an identity provider down) became a permanent UNAUTHENTICATED one.
const serverEntry = new URL('../dist/server/index.js', import.meta.url).href
writeFileSync(
  auth,
  `import { ZyncError } from ${JSON.stringify(serverEntry)}\n` +
    "export function authenticate({ auth }) { if (auth.token === 'down') throw new ZyncError('INTERNAL', 'identity provider unreachable', { retryable: true }); if (auth.token !== 'ok') throw new Error('bad token'); return { id: 'ada' } }\n",
)
const fail = (msg) => {
  console.error(`[test:bin] ${msg}`)
  process.exitCode = 1
}

// zync/react is marked as client code (scripts/use-client.mjs), for React Server Component bundlers.
for (const f of ['dist/react/index.js', 'dist/react/index.cjs']) {
  if (!readFileSync(f, 'utf8').startsWith('"use client";')) fail(`${f} does not start with "use client"`)
}

// An app that imports only some of zync gets only what that needs: the modules that import dexie and
// socket.io-client (peers a bundler keeps once imported: they are not side-effect free) are chunks of
// their own (tsup.config.ts), so importing ZyncError alone, or zync/react, bundles neither.
const { build } = await import('esbuild')
for (const [name, code] of [
  ['ZyncError from zync', `import { ZyncError } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).pathname)}; console.log(ZyncError)`],
  ['zync/react', `import { useSyncStatus, ConflictModal } from ${JSON.stringify(new URL('../dist/react/index.js', import.meta.url).pathname)}; console.log(useSyncStatus, ConflictModal)`],
]) {
  const { metafile } = await build({
    stdin: { contents: code, resolveDir: process.cwd() },
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'browser',
    external: ['react', 'react-dom', 'react/jsx-runtime', 'zustand', 'zustand/vanilla', 'immer'],
    logLevel: 'silent',
  })
  const kept = Object.values(metafile.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([f]) => f))
  const peers = kept.filter((f) => /node_modules\/(dexie|socket\.io-client|engine\.io-client)\//.test(f))
  if (peers.length) fail(`a bundle of ${name} includes ${[...new Set(peers.map((f) => f.split('node_modules/')[1].split('/')[0]))].join(', ')}`)
}

const proc = spawn(process.execPath, ['dist/server/cli.js', '--port', '0', '--memory', '--auth', auth, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] })
let out = ''
let err = ''
proc.stdout.on('data', (d) => (out += d))
proc.stderr.on('data', (d) => (err += d))
const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })))
try {
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`did not start within 15 s\n${out}\n${err}`)), 15_000)
    proc.stdout.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(t)
        resolve(m[1])
      }
    })
    void exited.then(({ code, signal }) => reject(new Error(`exited (${code ?? signal}) before listening\n${out}\n${err}`)))
  })
  const connect = (token) =>
    new Promise((resolve) => {
      const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token } })
      s.on('connect', () => resolve(s))
      s.on('connect_error', (e) => {
        s.disconnect()
        resolve(e)
      })
    })
  const refused = await connect('nope')
  if (!(refused instanceof Error) || !/bad token/.test(refused.message)) fail(`a bad token was not refused by the --auth module: ${refused}`)
  const down = await connect('down')
  if (!(down instanceof Error) || down.data?.code !== 'INTERNAL' || down.data?.retryable !== true) fail(`a retryable ZyncError from the --auth module was not passed on as such: ${JSON.stringify(down?.data ?? down)}`)
  const s = await connect('ok')
  if (s instanceof Error) fail(`a good token was refused: ${s.message}`)
  else {
    const r = await s.timeout(5000).emitWithAck('zync:join', { v: 2, doc: 'bin-check', client: 'c1', since: 0 })
    if (!r?.ok) fail(`join failed: ${JSON.stringify(r)}`)
    s.disconnect()
  }
  proc.kill('SIGTERM')
  const { code } = await exited
  if (code !== 0) fail(`SIGTERM exit code ${code}\n${err}`)
  if (!process.exitCode) console.log(`[test:bin] dist/server/cli.js: listens, --auth plugged in, join served, SIGTERM exit 0 (${url})`)
} catch (e) {
  fail(e.message)
  proc.kill('SIGKILL')
} finally {
  rmSync(dir, { recursive: true, force: true })
}

// Installed without its server peers (socket.io, zod): --help works and a start says what to install
// (Node stopped at its module loader with a stack trace; a new-user trial). The package is copied where
// no node_modules can be found above it.
const bare = mkdtempSync(join(tmpdir(), 'zync-bare-'))
try {
  const pkg = join(bare, 'node_modules', 'zync')
  cpSync('dist', join(pkg, 'dist'), { recursive: true })
  cpSync('package.json', join(pkg, 'package.json'))
  const run = (...args) => spawnSync(process.execPath, [join(pkg, 'dist/server/cli.js'), ...args], { cwd: bare, encoding: 'utf8', timeout: 15_000 })
  const help = run('--help')
  if (help.status !== 0 || !help.stdout.includes('Usage: zync-server')) fail(`--help without socket.io failed (${help.status}): ${help.stderr}`)
  const start = run('--memory', '--port', '0')
  if (start.status !== 1 || !/needs socket\.io and zod, which are not installed: npm install socket\.io zod/.test(start.stderr) || /at .*\(/.test(start.stderr)) fail(`a start without socket.io and zod did not say what to install (${start.status}): ${start.stderr}`)
  else if (!process.exitCode) console.log('[test:bin] without socket.io and zod: --help works, a start says what to install')
} finally {
  rmSync(bare, { recursive: true, force: true })
}
