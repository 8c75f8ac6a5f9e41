// A node on Redis (socket.io Redis adapter) survives a Redis outage, and an unreachable Redis at start
// is a clear error instead of a process that waits forever.
import { describe, expect, it } from 'vitest'
import { createSyncServer, ZyncError } from '../../src/server/index'
import { makeBoard, waitFor } from '../helpers'
import { startRedis } from '../setup/pg-redis'

describe('Redis outages', () => {
  it('a node keeps serving its clients through an outage longer than a publish timeout: no crash, writes acknowledged', async () => {
    const redis = await startRedis()
    let stopped = false
    const server = await createSyncServer({ port: 0, host: '127.0.0.1', storage: { kind: 'memory' }, logLevel: 'silent', redis: { url: redis.url, key: `outage-${process.pid}` } })
    const a = makeBoard({ name: 'outage', url: server.url })
    try {
      await waitFor(() => a.sync.status().connection === 'online', 5000, 'online')
      a.getState().addCard('c1', 'before')
      await a.sync.flush({ timeout: 5000 })
      await redis.stop()
      stopped = true
      // Each write is broadcast through Redis, now down: the publishes fail after the client's timeout.
      for (let i = 0; i < 3; i++) {
        a.getState().rename('c1', `during ${i}`)
        await a.sync.flush({ timeout: 5000 })
      }
      await new Promise((r) => setTimeout(r, 7000))
      a.getState().rename('c1', 'after the wait')
      await a.sync.flush({ timeout: 5000 })
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
      expect((await server.history('outage', { limit: 1 }))[0]?.value).toBe('after the wait')
    } finally {
      await a.sync.destroy()
      await server.close()
      if (!stopped) await redis.stop()
    }
  }, 30_000)

  it('an unreachable Redis at start fails createSyncServer with a typed error within connectTimeoutMs', async () => {
    const t0 = Date.now()
    const err = await createSyncServer({ port: 0, host: '127.0.0.1', storage: { kind: 'memory' }, logLevel: 'silent', redis: { url: 'redis://127.0.0.1:1', connectTimeoutMs: 1000 } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ZyncError)
    expect((err as ZyncError).message).toBe('[zync] cannot connect to Redis at redis://127.0.0.1:1 within 1000 ms')
    expect(Date.now() - t0).toBeLessThan(5000)
  })
})
