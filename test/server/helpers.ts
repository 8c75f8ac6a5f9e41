// Shared by the server tests: real zync-server child processes, raw socket.io clients, valid ops.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { io, type Socket } from 'socket.io-client'
import { encodeHlc } from '../../src/core/hlc'
import type { Op } from '../../src/core/protocol'
import { decodeJoinResponse, decodeOpsResponse } from '../../src/core/wire'
import { sentOpIds } from '../helpers'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const cliSource = path.join(root, 'src/server/cli.ts')

let bundle: Promise<string> | undefined
/**
 * The CLI bundled by esbuild (what tsup ships, minus the dts): it starts in ~0.3 s instead of ~1 s
 * under tsx, which matters for tests that restart servers dozens of times. Dependencies stay external.
 */
export function cliBundle(): Promise<string> {
  bundle ??= (async () => {
    const { build } = await import('esbuild')
    const dir = path.join(root, 'node_modules/.cache/zync-test')
    mkdirSync(dir, { recursive: true })
    const out = path.join(dir, `cli-${process.pid}.mjs`)
    await build({ entryPoints: [cliSource], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: out, logLevel: 'warning' })
    process.on('exit', () => rmSync(out, { force: true }))
    return out
  })()
  return bundle
}

export interface CliProcess {
  proc: ChildProcess
  url: string
  stdout(): string
  stderr(): string
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL')
})

/**
 * Starts zync-server as a child process and waits for its "listening on <url>" line.
 * `via: 'tsx'` runs src/server/cli.ts through tsx (as `npx tsx src/server/cli.ts` does); the default
 * runs the esbuild bundle of the same file.
 */
export async function startCli(args: string[], opts: { env?: Record<string, string>; via?: 'tsx' | 'bundle'; timeoutMs?: number } = {}): Promise<CliProcess> {
  const argv = opts.via === 'tsx' ? ['--import', 'tsx', cliSource, ...args] : [await cliBundle(), ...args]
  const proc = spawn(process.execPath, argv, { cwd: root, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(proc)
  let out = ''
  let err = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (err += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      live.delete(proc)
      resolve({ code, signal })
    }),
  )
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`zync-server did not start in time\n${err}`)), opts.timeoutMs ?? 20_000)
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    proc.stdout!.on('data', check)
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`zync-server exited (${code ?? signal}) before listening\n${out}\n${err}`))
    })
  })
  return {
    proc,
    url,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      return exited
    },
  }
}

/** Runs the CLI to completion (for --help and bad arguments). */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', cliSource, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

export function tempDir(prefix = 'zync-srv-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A socket.io client that resolves once connected (or rejects with the connect_error). */
export function connectRaw(url: string, opts: { auth?: Record<string, unknown>; extraHeaders?: Record<string, string>; transports?: string[] } = {}): Promise<Socket> {
  const s = io(url, {
    transports: (opts.transports ?? ['websocket']) as never,
    reconnection: false,
    forceNew: true,
    auth: opts.auth ?? {},
    ...(opts.extraHeaders ? { extraHeaders: opts.extraHeaders } : {}),
  })
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s))
    s.once('connect_error', (err) => {
      s.disconnect()
      reject(err)
    })
  })
}

let opSeq = 0
/** A valid op for `client` with counter `n` (ids unique per test process unless given). */
export function makeOp(client: string, n: number, path: Array<string | number>, value: unknown, extra: Partial<Op> = {}): Op {
  return {
    id: `${client}-${n}-${++opSeq}-${process.pid}`,
    client,
    n,
    hlc: encodeHlc({ wall: Date.now(), counter: 0, node: client }),
    op: 'add',
    path,
    value,
    base: {},
    ...extra,
  }
}

/** emitWithAck with a timeout: a hung server fails the test instead of hanging it. */
/**
 * Emits with an ack, as a raw client would. Join and ops answers carry change records in the compact
 * wire form; they are decoded with the same functions the client uses (core/wire.ts).
 */
export async function ask<T = Record<string, unknown>>(s: Socket, event: string, payload: unknown, timeoutMs = 10_000): Promise<T> {
  const r: unknown = await s.timeout(timeoutMs).emitWithAck(event, payload)
  // A protocol 3 server sends a successful join answer as bytes (UTF-8 JSON).
  if (event === 'zync:join' && (isAnswer(r) || r instanceof Uint8Array)) return decodeJoinResponse(r) as T
  if (event === 'zync:ops' && isAnswer(r)) return decodeOpsResponse(r, (payload as { o?: unknown } | null)?.o ? sentOpIds(payload) : undefined) as T
  return r as T
}

const isAnswer = (r: unknown) => r !== null && typeof r === 'object' && 'ok' in r

export async function dropPgSchemas(url: string, ...schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
  } finally {
    await client.end()
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Counts turns of the event loop (setImmediate callbacks) until stopped: how often long work let others run. */
export function countTurns(): { readonly count: number; stop(): void } {
  let count = 0
  let stopped = false
  const tick = () => {
    count++
    if (!stopped) setImmediate(tick)
  }
  setImmediate(tick)
  return {
    get count() {
      return count
    },
    stop() {
      stopped = true
    },
  }
}
