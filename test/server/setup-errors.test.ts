// What an operator sees when the server cannot start: a typed error that says why, and nothing left open.
import { describe, expect, it } from 'vitest'
import { createSyncServer, MemoryStorage, ZyncError } from '../../src/server/index'
import { importPeer } from '../../src/server/peer'

describe('server set-up errors', () => {
  it.each([['abc'], [-1], [65536], [1.5]])('port %j is refused before anything opens', async (port) => {
    const err = await createSyncServer({ port: port as never, storage: { kind: 'memory' }, logLevel: 'silent' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ZyncError)
    expect((err as ZyncError).code).toBe('BAD_REQUEST')
    expect((err as ZyncError).message).toContain('port must be an integer from 0 to 65535')
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
