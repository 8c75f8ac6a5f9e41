// A node on Redis (socket.io Redis adapter) survives a Redis outage, and an unreachable Redis at start
// is a clear error instead of a process that waits forever.
import { describe, expect, inject, it } from 'vitest'
import { createLogger, createSyncServer, ZyncError } from '../../src/server/index'
import { makeBoard, waitFor } from '../helpers'
import { startRedis } from '../setup/pg-redis'
import { dropPgSchemas, uniqueName } from './helpers'

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
      const metric = async (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await server.metrics())?.[1])
      expect(await metric('zync_redis_up')).toBe(1)
      await redis.stop()
      stopped = true
      // Each write is broadcast through Redis, now down: the publishes fail after the client's timeout.
      for (let i = 0; i < 3; i++) {
        a.getState().rename('c1', `during ${i}`)
        await a.sync.flush({ timeout: 5000 })
      }
      await new Promise((r) => setTimeout(r, 7000))
      // Still ready: Redis down says so, but takes no node out of rotation (with one shared Redis, a
      // load balancer would take every node out at once; an operator trial).
      const ready = await fetch(`${server.url}/readyz`)
      expect([ready.status, await ready.json()]).toEqual([200, { ok: true, storage: 'up', redis: 'down', closing: false }])
      // And the metrics say so, for an alert: Redis down, and the broadcasts lost meanwhile.
      expect(await metric('zync_redis_up')).toBe(0)
      expect(await metric('zync_redis_broadcasts_lost_total')).toBeGreaterThanOrEqual(1)
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

  it('a change broadcast during an outage reaches the other node\'s clients when Redis is back, without a further write', async () => {
    const redis = await startRedis()
    const pgUrl = inject('pgUrl')
    const schema = uniqueName('zync_outage')
    const lines: Array<Record<string, unknown>> = []
    const opts = (name: string) => ({
      port: 0,
      host: '127.0.0.1',
      storage: { kind: 'postgres' as const, url: pgUrl, schema },
      redis: { url: redis.url, key: schema },
      logger: createLogger('info', (l) => lines.push({ node: name, ...(JSON.parse(l) as Record<string, unknown>) })),
    })
    const one = await createSyncServer(opts('one'))
    const two = await createSyncServer(opts('two'))
    const writer = makeBoard({ name: 'quiet', url: one.url })
    const reader = makeBoard({ name: 'quiet', url: two.url })
    try {
      await waitFor(() => writer.sync.status().connection === 'online' && reader.sync.status().connection === 'online', 10_000, 'online')
      writer.getState().addCard('c1', 'before')
      await writer.sync.flush({ timeout: 5000 })
      await waitFor(() => reader.getState().cards.c1?.title === 'before', 5000, 'reader has c1 through Redis')
      await redis.down()
      await waitFor(() => lines.some((l) => l.node === 'two' && l.msg === 'redis unreachable; reconnecting'), 5000, 'node two saw the outage')
      // Acknowledged (durable in PostgreSQL) while node one cannot publish it: node two's reader misses it.
      writer.getState().rename('c1', 'during the outage')
      await writer.sync.flush({ timeout: 5000 })
      await new Promise((r) => setTimeout(r, 300))
      expect(reader.getState().cards.c1?.title).toBe('before')
      await redis.start()
      // Nothing else is written: the reader gets the change when node two is back on Redis.
      await waitFor(() => reader.getState().cards.c1?.title === 'during the outage', 15_000, 'reader caught up after the outage')
      // Node two read what it had missed from PostgreSQL (its own copy of the document included the
      // change it had only relayed before the outage) and sent it to its clients.
      const caught = lines.find((l) => l.node === 'two' && l.msg === 'caught up after a Redis outage')
      expect(caught).toMatchObject({ docs: 1 })
      expect(caught!.changes).toBeGreaterThanOrEqual(1)
      await waitFor(() => lines.some((l) => l.node === 'one' && l.msg === 'redis reachable again' && l.client === 'pub'), 10_000, 'node one publishing again')
      expect(lines.find((l) => l.node === 'one' && l.msg === 'redis reachable again' && l.client === 'pub')).toMatchObject({ broadcastsLost: 1 })
      expect(lines.filter((l) => l.msg?.toString().startsWith('redis publish failed'))).toHaveLength(1)
    } finally {
      await writer.sync.destroy()
      await reader.sync.destroy()
      await one.close()
      await two.close()
      await redis.stop()
      await dropPgSchemas(pgUrl, schema)
    }
  }, 60_000)

  it('credentials Redis refuses fail createSyncServer at once, with the reason and without the password', async () => {
    const url = new URL(inject('redisUrl'))
    url.username = 'nobody'
    url.password = 'hunter2'
    const t0 = Date.now()
    const err = await createSyncServer({ port: 0, host: '127.0.0.1', storage: { kind: 'memory' }, logLevel: 'silent', redis: { url: url.toString(), connectTimeoutMs: 10_000 } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ZyncError)
    expect((err as ZyncError).message).toMatch(/^\[zync\] cannot connect to Redis at redis:\/\/nobody:\*\*\*@127\.0\.0\.1:\d+: WRONGPASS/)
    expect((err as ZyncError).message).not.toContain('hunter2')
    expect(Date.now() - t0).toBeLessThan(5000)
  })

  it('an unreachable Redis at start fails createSyncServer with a typed error within connectTimeoutMs', async () => {
    const t0 = Date.now()
    const err = await createSyncServer({ port: 0, host: '127.0.0.1', storage: { kind: 'memory' }, logLevel: 'silent', redis: { url: 'redis://:hunter2@127.0.0.1:1', connectTimeoutMs: 1000 } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ZyncError)
    // Its password hidden (an operator trial found it printed), and the reason given.
    expect((err as ZyncError).message).toMatch(/^\[zync\] cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 within 1000 ms: .*ECONNREFUSED/)
    expect((err as ZyncError).message).not.toContain('hunter2')
    expect(Date.now() - t0).toBeLessThan(5000)
  })
})
