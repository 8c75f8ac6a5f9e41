// zync-server as users run it: a child process configured by flags and environment variables,
// stopped by SIGTERM while writes are in flight.
import { afterAll, describe, expect, it } from 'vitest'
import { SqliteStorage } from '../../src/server/storage/sqlite'
import { connectRaw, makeOp, runCli, startCli, tempDir, type CliProcess } from './helpers'
import path from 'node:path'
import { existsSync, writeFileSync } from 'node:fs'
import { ask } from './helpers'

const dirs: Array<{ remove(): void }> = []
const procs: CliProcess[] = []
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()))
  for (const d of dirs) d.remove()
})

describe('zync-server CLI', () => {
  it('--help lists every option with its environment variable', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    for (const [flag, env] of [
      ['--port', 'ZYNC_PORT'],
      ['--host', 'ZYNC_HOST'],
      ['--data', 'ZYNC_DATA'],
      ['--postgres', 'ZYNC_POSTGRES_URL'],
      ['--redis', 'ZYNC_REDIS_URL'],
      ['--cors', 'ZYNC_CORS'],
      ['--log-level', 'ZYNC_LOG_LEVEL'],
      ['--auth', 'ZYNC_AUTH'],
      ['--reauthorize-ms', 'ZYNC_REAUTHORIZE_MS'],
      ['--limits', 'ZYNC_LIMITS'],
    ]) {
      expect(r.stdout).toMatch(new RegExp(`${flag} .*${env}`))
    }
    expect(r.stdout).toContain('SIGTERM')
  })

  it('refuses bad arguments with exit code 2 and a hint', async () => {
    const bogus = await runCli(['--bogus'])
    expect(bogus.code).toBe(2)
    expect(bogus.stderr).toMatch(/--bogus/)
    expect(bogus.stderr).toMatch(/--help/)
    const port = await runCli(['--port', 'abc'])
    expect(port.code).toBe(2)
    expect(port.stderr).toMatch(/--port must be an integer/)
    const envPort = await runCli([], { ZYNC_PORT: 'abc', ZYNC_MEMORY: '1' })
    expect(envPort.code).toBe(2)
    expect(envPort.stderr).toMatch(/ZYNC_PORT must be an integer in 0\.\.65535, got "abc"/)
    const dir = await runCli(['--port', '0', '--data', '/nonexistent-zync-dir/x.db'])
    expect(dir.code).toBe(1)
    expect(dir.stderr).toMatch(/cannot open the SQLite database "\/nonexistent-zync-dir\/x\.db": .*directory does not exist/)
    const level = await runCli([], { ZYNC_LOG_LEVEL: 'loud', ZYNC_PORT: '0', ZYNC_MEMORY: '1' })
    expect(level.code).toBe(2)
    expect(level.stderr).toMatch(/--log-level/)
  })

  it('refuses an empty value, of a flag or a variable, and numbers that are not decimal digits (exit 2)', async () => {
    // An operator trial: --data "" ran on a SQLite database private to the process (every acknowledged
    // write lost at the restart), --auth "" without authentication, --host "" on every interface,
    // --port 0xA8F0 on port 43248.
    for (const flag of ['--data', '--auth', '--host', '--postgres', '--redis', '--cors', '--port']) {
      const r = await runCli([flag, '', ...(flag === '--data' ? [] : ['--memory'])])
      expect(r.code, flag).toBe(2)
      expect(r.stderr).toContain(`${flag} needs a value, got ""`)
    }
    for (const name of ['ZYNC_DATA', 'ZYNC_AUTH', 'ZYNC_HOST', 'ZYNC_PORT']) {
      const r = await runCli(['--port', '0', ...(name === 'ZYNC_DATA' ? [] : ['--memory'])], { [name]: ' ' })
      expect(r.code, name).toBe(2)
      expect(r.stderr).toContain(`${name} is set but empty; unset it for the default`)
    }
    for (const [flag, env] of [[['--cors', ','], {}], [[], { ZYNC_CORS: ' , ' }]] as const) {
      const r = await runCli([...flag, '--memory'], env)
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/(--cors|ZYNC_CORS) names no origin/)
    }
    for (const n of ['0xA8F0', '1e3', '4.0', '+80']) {
      const r = await runCli(['--port', n, '--memory'])
      expect(r.code, n).toBe(2)
      expect(r.stderr).toContain(`--port must be an integer in 0..65535, got ${JSON.stringify(n)}`)
    }
  })

  it('a storage flag wins over every storage variable, and two storages at once are refused', async () => {
    const d = tempDir()
    dirs.push(d)
    const file = path.join(d.dir, 'explicit.db')
    // --data with ZYNC_MEMORY (or a PostgreSQL URL) left in the environment: the flag's SQLite file is used,
    // even when the variable's value is not one ZYNC_MEMORY takes (a storage flag ignores them as a whole).
    for (const env of [{ ZYNC_MEMORY: '1' }, { ZYNC_MEMORY: 'maybe' }, { ZYNC_POSTGRES_URL: 'postgres://127.0.0.1:1/none' }] as Array<Record<string, string>>) {
      const cli = await startCli(['--port', '0', '--data', file], { env })
      procs.push(cli)
      expect(cli.stdout()).toMatch(/\(sqlite\)/)
      await cli.kill()
    }
    expect(existsSync(file)).toBe(true)
    for (const [args, env, message] of [
      [['--memory', '--data', file], {}, /--memory and --data name different storages/],
      [['--memory', '--postgres', 'postgres://127.0.0.1:1/x'], {}, /--postgres and --memory name different storages/],
      [[], { ZYNC_MEMORY: 'true', ZYNC_POSTGRES_URL: 'postgres://127.0.0.1:1/x' }, /ZYNC_POSTGRES_URL and ZYNC_MEMORY name different storages/],
      [['--memory', '--schema', 'app'], {}, /--schema applies to PostgreSQL storage only/],
      [['--memory', '--redis-key', 'k'], {}, /--redis-key applies only with --redis/],
      [['--postgres', 'notaurl'], {}, /--postgres must be a postgres:\/\/ URL/],
      [['--memory', '--cors', 'https://app.example.com/'], {}, /--cors: "https:\/\/app\.example\.com\/" is not an origin as browsers send it/],
      [['--memory', '--cors', 'https://a.example,*'], {}, /--cors: '\*' allows every origin on its own/],
      [['--memory', '--redis', 'notaurl'], {}, /--redis must be a redis:\/\/ or rediss:\/\/ URL/],
      // A password in a value that is not a URL is not printed (an operator trial).
      [['--memory', '--redis', 'default:hunter2@127.0.0.1:6379'], {}, /--redis must be a redis:\/\/ or rediss:\/\/ URL, got "default:\*\*\*@127\.0\.0\.1:6379"/],
      [['--postgres', 'zync:hunter2@db/zync'], {}, /--postgres must be a postgres:\/\/ URL, got "zync:\*\*\*@db\/zync"/],
      // Redis without the PostgreSQL the other nodes share (an operator trial: a node on its own SQLite file).
      [['--redis', 'redis://127.0.0.1:1'], {}, /--redis fans out between nodes that share one PostgreSQL database: give --postgres .*on the SQLite file \.\/zync\.db/],
      [['--memory', '--redis', 'redis://127.0.0.1:1'], {}, /--redis fans out between nodes that share one PostgreSQL database.*in memory/],
      [[], { ZYNC_REDIS_URL: 'redis://127.0.0.1:1', ZYNC_DATA: file }, /ZYNC_REDIS_URL fans out between nodes that share one PostgreSQL database/],
      [['--memory', '--keep-log', '-5'], {}, /--keep-log needs a value that does not start with "-"/],
      [['--memory', '--ops-per-second', '0'], {}, /--ops-per-second must be an integer in 1\.\.1000000000, got "0"/],
      [['--memory', '--reauthorize-ms', 'soon'], {}, /--reauthorize-ms must be an integer in 0\.\.1000000000, got "soon"/],
      [['--memory', '--limits', '{docs:1}'], {}, /--limits must be a JSON object/],
      [['--memory'], { ZYNC_LIMITS: '{"docsPerSokcet":5}' }, /ZYNC_LIMITS: docsPerSokcet is not a limit/],
      [['--memory', '--limits', '{"joinsPerSecond":0}'], {}, /--limits: joinsPerSecond must be a positive number, got 0/],
      [[], { ZYNC_MEMORY: 'on' }, /ZYNC_MEMORY must be 1, true or yes/],
      // Variables are held to what their flags are, and named in the refusal (an operator trial).
      [['--memory'], { ZYNC_REDIS_KEY: 'k' }, /ZYNC_REDIS_KEY applies only with ZYNC_REDIS_URL or --redis/],
      [[], { ZYNC_MEMORY: '1', ZYNC_POSTGRES_SCHEMA: 'app' }, /ZYNC_POSTGRES_SCHEMA applies to PostgreSQL storage only/],
      [['--memory'], { ZYNC_LOG_LEVEL: 'loud' }, /ZYNC_LOG_LEVEL \(--log-level\) must be one of/],
      [['--memory'], { ZYNC_REDIS_URL: 'notaurl' }, /ZYNC_REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
      // Found by a docs audit: these named the flag when the variable was set.
      [['--memory'], { ZYNC_CORS: 'https://a.example/' }, /ZYNC_CORS \(--cors\): "https:\/\/a\.example\/" is not an origin/],
      [['--memory'], { ZYNC_AUTH: './no-such-auth.mjs' }, /ZYNC_AUTH \.\/no-such-auth\.mjs: cannot load the module/],
      [['--memory', '--auth', './no-such-auth.mjs'], {}, /--auth \.\/no-such-auth\.mjs: cannot load the module/],
      [[], { ZYNC_POSTGRES_URL: 'notaurl' }, /ZYNC_POSTGRES_URL must be a postgres:\/\/ URL/],
    ] as Array<[string[], Record<string, string>, RegExp]>) {
      const r = await runCli(['--port', '0', ...args], env)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toMatch(message)
      expect(r.stderr).not.toContain('hunter2')
    }
    // ZYNC_MEMORY=true counts as set, as =1 does.
    const mem = await startCli(['--port', '0'], { env: { ZYNC_MEMORY: 'true' } })
    procs.push(mem)
    expect(mem.stdout()).toMatch(/\(memory\)/)
  })

  it('--ops-per-second (or ZYNC_OPS_PER_SECOND) sets the per-connection op rate, which the join answer names for clients to pace to', async () => {
    for (const [args, env, rate] of [
      [['--ops-per-second', '123'], { ZYNC_OPS_PER_SECOND: '999' }, 123],
      [[], { ZYNC_OPS_PER_SECOND: '77' }, 77],
      [[], {}, 5000],
    ] as Array<[string[], Record<string, string>, number]>) {
      const p = await startCli(['--port', '0', '--memory', '--log-level', 'silent', ...args], { env })
      procs.push(p)
      const s = await connectRaw(p.url)
      try {
        expect(await ask(s, 'zync:join', { v: 2, doc: 'd', client: 'c', since: 0 })).toMatchObject({ ok: true, opsPerSecond: rate })
      } finally {
        s.disconnect()
      }
      await p.kill()
    }
  })

  it('--limits (or ZYNC_LIMITS) sets per-connection limits; --ops-per-second wins over its key', async () => {
    // A re-check of the auth trial: the CLI could raise only opsPerSecond, so an app with more boards per
    // shared socket than docsPerSocket could not be served by zync-server.
    const p = await startCli(['--port', '0', '--memory', '--log-level', 'silent', '--limits', '{"docsPerSocket":2,"opsPerSecond":10}', '--ops-per-second', '77'])
    procs.push(p)
    const s = await connectRaw(p.url)
    try {
      expect(await ask(s, 'zync:join', { v: 2, doc: 'a', client: 'c', since: 0 })).toMatchObject({ ok: true, opsPerSecond: 77 })
      expect((await ask<{ ok: boolean }>(s, 'zync:join', { v: 2, doc: 'b', client: 'c', since: 0 })).ok).toBe(true)
      expect(await ask(s, 'zync:join', { v: 2, doc: 'c', client: 'c', since: 0 })).toMatchObject({ ok: false, code: 'RATE_LIMITED' })
    } finally {
      s.disconnect()
    }
    await p.kill()
  })

  it('--auth loads authenticate and authorize from a module, and refuses a module without them', async () => {
    const d = tempDir()
    dirs.push(d)
    const mod = path.join(d.dir, 'auth.mjs')
    writeFileSync(
      mod,
      `export function authenticate({ auth }) {
        if (auth.token !== 'let-me-in') throw new Error('bad token')
        return { id: 'ada', name: 'Ada' }
      }
      export default { authorize: (user, doc, action) => !(doc === 'vault' && action === 'write') }
      `,
    )
    const p = await startCli(['--port', '0', '--memory', '--log-level', 'silent', '--auth', mod], { via: 'tsx' })
    procs.push(p)
    await expect(connectRaw(p.url, { auth: { token: 'nope' } })).rejects.toThrow(/authentication failed: bad token/)
    const s = await connectRaw(p.url, { auth: { token: 'let-me-in' } })
    try {
      expect((await ask(s, 'zync:join', { v: 2, doc: 'vault', client: 'cv', since: 0 })).ok).toBe(true)
      const denied = await ask<{ ok: boolean; code?: string }>(s, 'zync:ops', { doc: 'vault', ops: [makeOp('cv', 1, ['k', 'x'], 1)] })
      expect(denied).toMatchObject({ ok: false, code: 'FORBIDDEN' })
      expect((await ask(s, 'zync:join', { v: 2, doc: 'open', client: 'cv', since: 0 })).ok).toBe(true)
      const ok = await ask<{ ok: boolean; results: Array<{ ok: boolean }> }>(s, 'zync:ops', { doc: 'open', ops: [makeOp('cv', 2, ['k', 'x'], 1)] })
      expect(ok.results[0]!.ok).toBe(true)
    } finally {
      s.disconnect()
    }
    const empty = path.join(d.dir, 'empty.mjs')
    writeFileSync(empty, 'export const nothing = 1\n')
    const r = await runCli(['--port', '0', '--memory', '--auth', empty])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/exports neither authenticate nor authorize/)
    const missing = await runCli(['--port', '0', '--memory'], { ZYNC_AUTH: path.join(d.dir, 'missing.mjs') })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/ZYNC_AUTH .*cannot load the module/)
  })

  it('is configured by environment variables, and flags win over them', async () => {
    const d = tempDir()
    dirs.push(d)
    const file = path.join(d.dir, 'env.db')
    const p = await startCli([], {
      via: 'tsx',
      env: { ZYNC_PORT: '0', ZYNC_HOST: '127.0.0.1', ZYNC_DATA: file, ZYNC_LOG_LEVEL: 'debug', ZYNC_CORS: 'http://app.example.test, http://other.example.test' },
    })
    procs.push(p)
    expect(p.stdout()).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+ \(sqlite\)/)
    // ZYNC_CORS replaced the localhost default: the configured origin connects, localhost does not.
    const ok = await connectRaw(p.url, { extraHeaders: { origin: 'http://app.example.test' }, transports: ['polling'] })
    ok.disconnect()
    await expect(connectRaw(p.url, { extraHeaders: { origin: 'http://localhost:5173' }, transports: ['polling'] })).rejects.toThrow()
    // ZYNC_LOG_LEVEL=debug: structured JSON lines including debug ones; ZYNC_DATA: the file exists.
    await new Promise((r) => setTimeout(r, 100))
    const lines = p.stderr().trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string; time: string })
    expect(lines.some((l) => l.level === 'debug' && l.msg === 'connect')).toBe(true)
    expect(lines.every((l) => typeof l.time === 'string' && ['debug', 'info', 'warn', 'error'].includes(l.level))).toBe(true)
    const s = new SqliteStorage({ file })
    await s.init()
    await s.close()
    await p.kill('SIGTERM')

    // A flag beats its variable: --log-level warn hides the info lines ZYNC_LOG_LEVEL=debug would show.
    const q = await startCli(['--log-level', 'warn', '--memory'], { env: { ZYNC_PORT: '0', ZYNC_LOG_LEVEL: 'debug' } })
    procs.push(q)
    expect(q.stdout()).toMatch(/\(memory\)/)
    const sock = await connectRaw(q.url)
    sock.disconnect()
    await new Promise((r) => setTimeout(r, 100))
    expect(q.stderr()).not.toMatch(/"level":"(debug|info)"/)
    const metrics = await (await fetch(`${q.url}/metrics`)).text()
    expect(metrics).toContain('zync_connections')
    expect(await q.kill('SIGTERM')).toEqual({ code: 0, signal: null })
  })

  it('SIGHUP (a closed terminal) stops it gracefully too, exit 0', async () => {
    // An operator trial: SIGHUP killed the server at once, without the graceful shutdown.
    const p = await startCli(['--port', '0', '--memory', '--log-level', 'info'], { via: 'tsx' })
    procs.push(p)
    const exit = p.kill('SIGHUP')
    expect(await exit).toEqual({ code: 0, signal: null })
    expect(p.stderr()).toMatch(/"msg":"shutting down gracefully","signal":"SIGHUP"/)
    expect(p.stderr()).toMatch(/"msg":"zync server closed"/)
  })

  it('on SIGTERM acknowledges every write in flight, makes it durable, then exits 0', async () => {
    const d = tempDir()
    dirs.push(d)
    const file = path.join(d.dir, 'drain.db')
    const p = await startCli(['--port', '0', '--data', file, '--log-level', 'info'], { via: 'tsx' })
    procs.push(p)
    const sock = await connectRaw(p.url)
    const join = await sock.emitWithAck('zync:join', { v: 2, doc: 'drain', client: 'w', since: 0 })
    expect(join.ok).toBe(true)

    type Answer = { ok: boolean; code?: string; retryable?: boolean; results?: Array<{ ok: boolean; id: string }> } | 'lost'
    const batches = 40
    const sent: string[][] = []
    const answers: Promise<Answer>[] = []
    let n = 0
    let firstAck!: () => void
    const first = new Promise<void>((r) => (firstAck = r))
    for (let b = 0; b < batches; b++) {
      const ops = Array.from({ length: 25 }, () => ++n).map((i) => makeOp('w', i, ['items', `i${i}`], { i, pad: 'x'.repeat(200) }))
      sent.push(ops.map((o) => o.id))
      answers.push(
        new Promise<Answer>((resolve) => {
          sock.timeout(15_000).emit('zync:ops', { doc: 'drain', ops }, (err: Error | null, res: Answer) => {
            firstAck()
            resolve(err ? 'lost' : res)
          })
        }),
      )
    }
    await first
    const exit = p.kill('SIGTERM')
    const settled = await Promise.all(answers)
    expect(await exit).toEqual({ code: 0, signal: null })
    expect(p.stderr()).toMatch(/"msg":"shutting down gracefully","signal":"SIGTERM"/)
    expect(p.stderr()).toMatch(/"msg":"zync server closed"/)

    const acked: string[] = []
    let refused = 0
    let lost = 0
    settled.forEach((a, i) => {
      if (a === 'lost') return void lost++
      if (a.ok) {
        // A batch the server started on is finished and acknowledged, every op of it.
        expect(a.results!.every((r) => r.ok)).toBe(true)
        acked.push(...sent[i]!)
      } else {
        // Batches that arrived after shutdown began are refused, retryably, and nothing else.
        expect(a).toMatchObject({ ok: false, code: 'DISCONNECTED', retryable: true })
        refused++
      }
    })
    expect(acked.length).toBeGreaterThan(0)
    // Batches are answered in order: no acknowledged batch after a refused or lost one.
    const firstNotAcked = settled.findIndex((a) => a === 'lost' || !a.ok)
    if (firstNotAcked >= 0) expect(settled.slice(firstNotAcked).every((a) => a === 'lost' || !a.ok)).toBe(true)
    sock.disconnect()

    const s = new SqliteStorage({ file })
    await s.init()
    const found = await s.findOps('drain', acked)
    expect(found.size).toBe(acked.length)
    expect(await s.head('drain')).toBeGreaterThanOrEqual(acked.length)
    await s.close()
    console.log(`SIGTERM drain: ${acked.length / 25} batches acknowledged, ${refused} refused (retryable), ${lost} never answered`)
  })
})
