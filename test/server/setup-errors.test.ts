// What an operator sees when the server cannot start: a typed error that says why, and nothing left open.
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { createSyncServer, MemoryStorage, ZyncError } from '../../src/server/index'
import { importPeer } from '../../src/server/peer'
import { root } from './helpers'

describe('server set-up errors', () => {
  it.each([['abc'], [-1], [65536], [1.5]])('port %j is refused before anything opens', async (port) => {
    const err = await createSyncServer({ port: port as never, storage: { kind: 'memory' }, logLevel: 'silent' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ZyncError)
    expect((err as ZyncError).code).toBe('BAD_REQUEST')
    expect((err as ZyncError).message).toContain('port must be an integer from 0 to 65535')
  })

  it('a storage option that is not one is refused with a typed error that shows the accepted forms', async () => {
    // The client's storage: 'memory' given to the server threw a bare Error, "unknown storage kind undefined";
    // { kind: 'sqlite' } without a file, a TypeError from node:path.
    for (const [storage, msg] of [
      ['memory', /storage must be an object, \{ kind: 'memory' \}.*got "memory"; the client's storage: 'memory' is \{ kind: 'memory' \} here/],
      [42, /storage must be \{ kind: 'memory' \}.*\(got number\)/],
      [{ kind: 'sqlite' }, /\{ kind: 'sqlite' \} needs file, a path \(got undefined/],
      [{ kind: 'sqlite', file: 42 }, /needs file, a path \(got 42/],
      // SQLite's temporary database: every acknowledged write lost at close.
      [{ kind: 'sqlite', file: '' }, /needs file, a path \(got ""; ':memory:' for a database in memory\)/],
      [{ kind: 'postgres' }, /\{ kind: 'postgres' \} needs url/],
      [{ kind: 'postgres', url: 'postgres://127.0.0.1:1/x', schema: 5 }, /schema must be a string \(got 5\)/],
      [{ kind: 'mem' }, /kind must be 'memory', 'sqlite' or 'postgres' \(got "mem"\)/],
      [{ append: () => {} }, /kind must be .*or pass a ServerStorage \(an object with init\(\) and append\(\)\)/],
    ] as const) {
      const err = await createSyncServer({ port: 0, storage: storage as never, logLevel: 'silent' }).catch((e: unknown) => e)
      expect(err, JSON.stringify(storage)).toBeInstanceOf(ZyncError)
      expect((err as ZyncError).code).toBe('BAD_REQUEST')
      expect((err as ZyncError).message).toMatch(msg)
    }
  })

  it('a PostgreSQL that cannot be reached is named with its URL (password hidden), not only by the driver\'s words', async () => {
    // An operator trial got "zync-server: connect ECONNREFUSED 127.0.0.1:55499" alone.
    const err = await createSyncServer({ port: 0, storage: { kind: 'postgres', url: 'postgres://zync:s3cret@127.0.0.1:1/zync' }, logLevel: 'silent' }).catch((e: unknown) => e)
    expect((err as Error).message).toMatch(/^\[zync\] cannot connect to PostgreSQL at postgres:\/\/zync:\*\*\*@127\.0\.0\.1:1\/zync: .*ECONNREFUSED/)
    expect((err as Error).message).not.toContain('s3cret')
  })

  it('a limit that is not one, or not a positive number, is refused at start', async () => {
    for (const [limits, msg] of [
      [{ docsPerSocket: 0 }, /limits\.docsPerSocket must be a positive number \(got 0\)/],
      [{ joinsPerSecond: '50' }, /limits\.joinsPerSecond must be a positive number/],
      [{ docsPerSokcet: 10 }, /limits\.docsPerSokcet is not a limit/],
    ] as const) {
      const err = await createSyncServer({ port: 0, storage: { kind: 'memory' }, logLevel: 'silent', limits: limits as never }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ZyncError)
      expect((err as ZyncError).code).toBe('BAD_REQUEST')
      expect((err as ZyncError).message).toMatch(msg)
    }
  })

  it('a port in use: a typed error naming it, and the storage it opened is closed again', async () => {
    const first = await createSyncServer({ port: 0, host: '127.0.0.1', storage: { kind: 'memory' }, logLevel: 'silent' })
    try {
      let closed = 0
      const storage = new (class extends MemoryStorage {
        override async close() {
          closed++
        }
      })()
      const err = await createSyncServer({ port: first.port, host: '127.0.0.1', storage, logLevel: 'silent' }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ZyncError)
      expect((err as ZyncError).message).toBe(`[zync] cannot listen on 127.0.0.1:${first.port}: the port is in use (another server?)`)
      expect(closed).toBe(1)
      // The first server is unharmed.
      expect((await fetch(`${first.url}/healthz`)).status).toBe(200)
    } finally {
      await first.close()
    }
  })

  it('a missing optional package names the package and what needs it', async () => {
    const missing = 'zync-no-such-package'
    const err = await importPeer(() => import(/* @vite-ignore */ missing), missing, 'SQLite storage').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ZyncError)
    expect((err as ZyncError).message).toBe(`[zync] SQLite storage needs the '${missing}' package, which is not installed: npm install ${missing}`)
    // Any other failure while loading passes through unchanged.
    const boom = new Error('the driver failed to initialize')
    await expect(importPeer(() => Promise.reject(boom), missing, 'SQLite storage')).rejects.toBe(boom)
  })
})

describe('SQLite files the server cannot use', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zync-setup-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const start = (file: string) => createSyncServer({ port: 0, storage: { kind: 'sqlite', file }, logLevel: 'silent' })
  /** The pid a lock file names (its first line; the second is when that process started). */
  const lockPid = (file: string) => readFileSync(`${file}.lock`, 'utf8').split('\n')[0]
  const refusal = async (file: string) => {
    const err = await start(file).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ZyncError)
    return (err as ZyncError).message
  }

  it('a second server on the same file is refused, naming the pid and PostgreSQL + Redis; close() releases the lock', async () => {
    const file = path.join(dir, 'shared.db')
    const first = await start(file)
    expect(lockPid(file)).toBe(String(process.pid))
    try {
      const message = await refusal(file)
      expect(message).toContain(`another zync-server (pid ${process.pid}, this process) uses the SQLite database ${JSON.stringify(file)}`)
      expect(message).toMatch(/use PostgreSQL and Redis/)
      // The refused server left the first one's lock alone.
      expect(lockPid(file)).toBe(String(process.pid))
    } finally {
      await first.close()
    }
    expect(existsSync(`${file}.lock`)).toBe(false)
    const again = await start(file)
    await again.close()
  })

  it.skipIf(process.platform !== 'linux')('takes over a lock whose pid is now another process\'s (a reboot, a crash long ago): the lock records when its process started', async () => {
    // An operator trial: a stale lock naming a pid the system had given to an unrelated process refused every start.
    const file = path.join(dir, 'reused.db')
    const other = spawn('sleep', ['30'])
    try {
      const started = readFileSync(`/proc/${other.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19]
      // The pid's process started at another time than the one the lock recorded: taken over.
      writeFileSync(`${file}.lock`, `${other.pid}\n${Number(started) - 100}\n`)
      const s = await start(file)
      expect(lockPid(file)).toBe(String(process.pid))
      await s.close()
      // The same pid and start time: that process may be a server, so the start is refused.
      writeFileSync(`${file}.lock`, `${other.pid}\n${started}\n`)
      expect(await refusal(file)).toContain(`another zync-server (pid ${other.pid}) uses the SQLite database`)
    } finally {
      other.kill()
      rmSync(`${file}.lock`, { force: true })
    }
  })

  it('takes over a lock whose process is gone', async () => {
    const file = path.join(dir, 'stale.db')
    const dead = spawnSync(process.execPath, ['-e', '']).pid
    expect(() => process.kill(dead, 0)).toThrow()
    writeFileSync(`${file}.lock`, `${dead}\n`)
    const s = await start(file)
    expect(lockPid(file)).toBe(String(process.pid))
    await s.close()
    expect(existsSync(`${file}.lock`)).toBe(false)
    // A lock naming this process's pid that this process does not hold (PID 1 in a restarted container) is stale too.
    writeFileSync(`${file}.lock`, `${process.pid}\n`)
    const t = await start(file)
    await t.close()
  })

  // Needs a small file system of its own: a tmpfs, which root can mount (CI runs as root here).
  const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0
  it.skipIf(!canMount)('a disk with a few KB free: the refusal says the disk is full, not only "disk I/O error"', async () => {
    // An operator trial got "disk I/O error" alone at 8, 16 and 32 KB free.
    const small = mkdtempSync(path.join(os.tmpdir(), 'zync-small-'))
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]).status).toBe(0)
    try {
      writeFileSync(path.join(small, 'fill'), Buffer.alloc(48 * 1024))
      expect(await refusal(path.join(small, 'z.db'))).toMatch(/: the disk is full \(\d+ KB free\); free some space$/)
    } finally {
      spawnSync('umount', [small])
      rmSync(small, { recursive: true, force: true })
    }
  })

  it('one lock per database file, through a symlink to it or to its directory too', async () => {
    // An operator trial started a second server through a symlink: the clients of the two diverged.
    const file = path.join(dir, 'linked.db')
    const first = await start(file)
    try {
      const viaFile = path.join(dir, 'alias.db')
      symlinkSync(file, viaFile)
      const linkedDir = path.join(dir, 'alias-dir')
      symlinkSync(dir, linkedDir)
      for (const other of [viaFile, path.join(linkedDir, 'linked.db')]) {
        const err = await refusal(other)
        expect(err, other).toMatch(/another zync-server \(pid \d+, this process\) uses the SQLite database/)
      }
    } finally {
      await first.close()
    }
  })

  it('an empty lock file (a start that failed on a full disk between creating it and writing its pid) does not refuse later starts', async () => {
    const file = path.join(dir, 'empty-lock.db')
    writeFileSync(`${file}.lock`, '')
    const old = new Date(Date.now() - 10_000)
    utimesSync(`${file}.lock`, old, old)
    const s = await start(file)
    expect(lockPid(file)).toBe(String(process.pid))
    await s.close()
    // One written a moment ago may be a server that is starting: refused as before.
    writeFileSync(`${file}.lock`, '')
    expect(await refusal(file)).toMatch(/holds no pid \(empty, written moments ago: a zync-server may be starting; if none is, start again in 2 s or delete it\)$/)
    rmSync(`${file}.lock`)
  })

  it('names the file and says why: not a database, another application\'s tables, a missing directory', async () => {
    const junk = path.join(dir, 'junk.db')
    writeFileSync(junk, 'this is not a database, just text long enough to have a header of sorts'.repeat(20))
    expect(await refusal(junk)).toMatch(new RegExp(`^\\[zync\\] cannot open the SQLite database ${JSON.stringify(junk).replace(/[.\\/]/g, '\\$&')}: file is not a database: it is not a SQLite database`))
    const other = path.join(dir, 'other-app.db')
    const db = new Database(other)
    db.exec('CREATE TABLE log (id INTEGER PRIMARY KEY, line TEXT)')
    db.close()
    const m = await refusal(other)
    expect(m).toContain(`cannot open the SQLite database ${JSON.stringify(other)}: no such column: doc`)
    expect(m).toMatch(/tables of another application/)
    const nowhere = path.join(dir, 'no-such-dir', 'x.db')
    expect(await refusal(nowhere)).toBe(`[zync] cannot open the SQLite database ${JSON.stringify(nowhere)}: cannot create its lock file ${JSON.stringify(nowhere + '.lock')}: its directory does not exist`)
    const aDir = path.join(dir, 'a-directory.db')
    mkdirSync(aDir)
    expect(await refusal(aDir)).toMatch(/^\[zync\] cannot open the SQLite database ".*a-directory\.db": unable to open database file: check that the path names a file/)
    expect(existsSync(`${aDir}.lock`)).toBe(false)
    // Nothing is left locked by the refusals.
    expect(existsSync(`${junk}.lock`) || existsSync(`${other}.lock`)).toBe(false)
  })

  // As root, file permissions stop nothing: the server runs in a child process as an unprivileged user.
  it('a read-only database file fails the start, naming the file', async () => {
    const ro = path.join(dir, 'ro')
    chmodSync(dir, 0o755)
    mkdirSync(ro)
    chmodSync(ro, 0o777) // the lock and the WAL index can be created; the database file cannot be written
    const file = path.join(ro, 'readonly.db')
    const s = await start(file)
    await s.close()
    chmodSync(file, 0o444)
    const script = path.join(ro, 'start.mts')
    writeFileSync(
      script,
      `import { createSyncServer } from ${JSON.stringify(path.join(root, 'src/server/index.ts'))}
try {
  const s = await createSyncServer({ port: 0, storage: { kind: 'sqlite', file: process.argv[2] }, logLevel: 'silent' })
  console.log('started')
  await s.close()
} catch (err) {
  console.log('refused: ' + err.message)
}
`,
    )
    const asRoot = process.getuid?.() === 0
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', script, file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], ...(asRoot ? { uid: 65534, gid: 65534 } : {}) })
      let text = ''
      p.stdout.on('data', (d) => (text += d))
      p.stderr.on('data', (d) => (text += d))
      p.on('error', reject)
      p.on('close', () => resolve(text))
    })
    expect(out).toContain(`refused: [zync] cannot open the SQLite database ${JSON.stringify(file)}: attempt to write a readonly database: the file (or its directory, or the mount) is read-only`)
    expect(existsSync(`${file}.lock`)).toBe(false)
    // Nor the WAL files its open made: a refused start leaves the directory as it found it.
    expect([existsSync(`${file}-wal`), existsSync(`${file}-shm`)]).toEqual([false, false])
  }, 30_000)
})
