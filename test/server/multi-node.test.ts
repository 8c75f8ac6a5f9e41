// Several zync-server processes sharing PostgreSQL and fanning out through Redis: clients on
// different nodes converge, seqs are allocated atomically, and killing a node loses nothing.
import { isDeepStrictEqual } from 'node:util'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Socket } from 'socket.io-client'
import type { Change, OpResult } from '../../src/core/protocol'
import { decodeChangesMessage } from '../../src/core/wire'
import { createSyncServer } from '../../src/server/index'
import { PostgresStorage } from '../../src/server/storage/postgres'
import { dataOf, freshDb, makeBoard, waitFor } from '../helpers'
import { ask, connectRaw, dropPgSchemas, makeOp, startCli, uniqueName, type CliProcess } from './helpers'

const pgUrl = inject('pgUrl')
const redisUrl = inject('redisUrl')
const schema = uniqueName('zync_multi')
const nodes: CliProcess[] = []
const cleanups: Array<() => unknown> = []

beforeAll(async () => {
  const args = ['--port', '0', '--postgres', pgUrl, '--schema', schema, '--redis', redisUrl, '--redis-key', schema, '--log-level', 'warn']
  nodes.push(...(await Promise.all([startCli(args), startCli(args), startCli(args)])))
}, 60_000)

afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
  await Promise.all(nodes.map((n) => n.kill()))
  await dropPgSchemas(pgUrl, schema, `${schema}_re`)
})

function board(opts: Parameters<typeof makeBoard>[0]) {
  const b = makeBoard(opts)
  cleanups.push(() => b.sync.destroy())
  return b
}

async function raw(url: string, user = 'u'): Promise<Socket> {
  const s = await connectRaw(url, { auth: { userId: user } })
  cleanups.push(() => s.disconnect())
  return s
}

describe('three nodes, one PostgreSQL, one Redis', () => {
  it('stores on different nodes converge', async () => {
    const [a, b, c] = nodes.map((n) => board({ name: 'conv', url: n.url }))
    await waitFor(() => [a, b, c].every((s) => s!.sync.status().connection === 'online'), 10_000, 'all online')
    for (let i = 0; i < 10; i++) {
      a!.getState().addCard(`a${i}`, `from a ${i}`)
      b!.getState().addCard(`b${i}`, `from b ${i}`)
      c!.getState().addCard(`c${i}`, `from c ${i}`)
    }
    await Promise.all([a, b, c].map((s) => s!.sync.flush({ timeout: 10_000 })))
    await waitFor(() => [a, b, c].every((s) => Object.keys(s!.getState().cards).length === 30), 10_000, '30 cards everywhere')
    // Concurrent writes to the same fields from three nodes.
    a!.getState().rename('b1', 'renamed on node 0')
    c!.getState().rename('b1', 'renamed on node 2')
    b!.getState().vote('a0')
    c!.getState().vote('a0')
    await Promise.all([a, b, c].map((s) => s!.sync.flush({ timeout: 10_000 })))
    await waitFor(() => [a, b, c].every((s) => Object.keys(s!.getState().cards).length === 30), 10_000, '30 cards everywhere')
    const same = () => isDeepStrictEqual(dataOf(a!), dataOf(b!)) && isDeepStrictEqual(dataOf(b!), dataOf(c!))
    await waitFor(same, 10_000, 'identical state on every node')
    // Two nodes both voted; whatever the client's policy made of it, every node agrees (checked above).
    expect(a!.getState().cards.a0?.votes).toBeGreaterThanOrEqual(1)
    expect(['renamed on node 0', 'renamed on node 2']).toContain(a!.getState().cards.b1?.title)
    // Every node's stream reaches every store: the same last seq everywhere (superseded writes
    // change no data but still arrive).
    await waitFor(() => new Set([a, b, c].map((s) => s!.sync.status().seq)).size === 1, 10_000, 'same seq everywhere')
  })

  it('allocates seqs atomically: concurrent writers on three nodes get a gapless, unique sequence', async () => {
    const doc = 'race'
    const socks = await Promise.all(nodes.map((n, i) => raw(n.url, `racer${i}`)))
    const observer = await raw(nodes[2]!.url, 'observer')
    const seen: Change[] = []
    observer.on('zync:changes', (raw: unknown) => {
      const m = decodeChangesMessage(raw)
      if (m.doc === doc) seen.push(...m.changes)
    })
    await ask(observer, 'zync:join', { v: 2, doc, client: 'obs', since: 0 })
    for (const [i, s] of socks.entries()) expect((await ask(s, 'zync:join', { v: 2, doc, client: `r${i}`, since: 0 })).ok).toBe(true)

    const acks = new Map<string, number>()
    const batches = 20
    await Promise.all(
      socks.map(async (s, i) => {
        let n = 0
        const lanes = Array.from({ length: 3 }, async (_, lane) => {
          for (let b = lane; b < batches; b += 3) {
            const ops = Array.from({ length: 5 }, () => makeOp(`r${i}`, ++n, ['cells', `r${i}-${b}`, `f${n}`], n))
            const res = await ask<{ ok: true; results: OpResult[] }>(s, 'zync:ops', { doc, ops })
            expect(res.ok).toBe(true)
            for (const r of res.results) {
              expect(r.ok, JSON.stringify(r)).toBe(true)
              if (r.ok) acks.set(r.id, r.seq)
            }
          }
        })
        await Promise.all(lanes)
      }),
    )
    const total = socks.length * batches * 5
    expect(acks.size).toBe(total)
    const seqs = [...acks.values()].sort((x, y) => x - y)
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1))

    const storage = new PostgresStorage({ connectionString: pgUrl, schema })
    await storage.init()
    try {
      const log = await storage.readLog(doc, 0)
      expect(log.length).toBe(total)
      for (const e of log) expect(acks.get(e.opId)).toBe(e.seq)
    } finally {
      await storage.close()
    }
    // Fan-out: an observer on one node received every change, whichever node sequenced it.
    await waitFor(() => new Set(seen.map((c) => c.seq)).size === total, 10_000, 'observer saw everything')
  })

  it('presence crosses nodes, stamped with the authenticated user', async () => {
    const a = await raw(nodes[0]!.url, 'alice')
    const b = await raw(nodes[1]!.url, 'bob')
    const got: Array<{ peers: Array<{ user?: { id: string }; state: unknown }> }> = []
    b.on('zync:presence', (m) => got.push(m))
    await ask(a, 'zync:join', { v: 2, doc: 'pres-x', client: 'ca', since: 0 })
    await ask(b, 'zync:join', { v: 2, doc: 'pres-x', client: 'cb', since: 0 })
    expect(await ask(a, 'zync:presence', { doc: 'pres-x', state: { cursor: 3, user: { id: 'bob' } } })).toEqual({ ok: true })
    await waitFor(() => got.some((m) => m.peers.some((p) => p.state !== null)), 5000, 'presence on the other node')
    const peer = got.flatMap((m) => m.peers).find((p) => p.state !== null)!
    expect(peer.user).toEqual({ id: 'alice' })
    a.disconnect()
    await waitFor(() => got.some((m) => m.peers.some((p) => p.state === null)), 5000, 'gone on disconnect')
  })

  it('killing a node mid-stream loses no acknowledged op; its clients fail over and catch up', async () => {
    const [A, B, C] = nodes as [CliProcess, CliProcess, CliProcess]
    // The writer knows two nodes; the reader on A only one, and comes back as a new store on B.
    const writer = board({ name: 'failover', url: [A.url, B.url] as unknown as string })
    const readerDb = freshDb()
    const reader = board({ name: 'failover', url: A.url, dbName: readerDb })
    const observer = board({ name: 'failover', url: C.url })
    const acked = new Set<string>()
    const ackedBeforeKill = new Set<string>()
    writer.sync.on('sync:acked', ({ ids }) => ids.forEach((id) => acked.add(id)))
    await waitFor(() => [writer, reader, observer].every((s) => s.sync.status().connection === 'online'), 10_000, 'online')

    const total = 60
    let killedAt = -1
    for (let i = 0; i < total; i++) {
      writer.getState().addCard(`k${i}`, `card ${i}`)
      await new Promise((r) => setTimeout(r, 15))
      if (i === 25) {
        for (const id of acked) ackedBeforeKill.add(id)
        A.proc.kill('SIGKILL')
        killedAt = i
      }
    }
    expect((await A.exited).signal).toBe('SIGKILL')
    expect(ackedBeforeKill.size).toBeGreaterThan(0)
    await writer.sync.flush({ timeout: 20_000 })
    await waitFor(() => Object.keys(observer.getState().cards).length === total, 15_000, 'observer has every card')
    expect(dataOf(observer)).toEqual(dataOf(writer))
    expect(writer.sync.status()).toMatchObject({ connection: 'online', pending: 0 })

    // The reader lost its only node; the same device (same IndexedDB) reconnects to node B.
    await reader.sync.destroy()
    const again = board({ name: 'failover', url: B.url, dbName: readerDb })
    await waitFor(() => Object.keys(again.getState().cards).length === total, 15_000, 'reader caught up on another node')
    expect(dataOf(again)).toEqual(dataOf(observer))

    // Every op acknowledged before the kill is in PostgreSQL, once.
    const storage = new PostgresStorage({ connectionString: pgUrl, schema })
    await storage.init()
    try {
      const found = await storage.findOps('failover', [...ackedBeforeKill])
      expect(found.size).toBe(ackedBeforeKill.size)
      const log = await storage.readLog('failover', 0)
      expect(new Set(log.map((e) => e.opId)).size).toBe(log.length)
      expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1))
    } finally {
      await storage.close()
    }
    console.log(`failover: node killed after card ${killedAt}, ${ackedBeforeKill.size} ops acknowledged before the kill, all ${total} cards converged`)
  }, 60_000)

  it('a node stopped with SIGTERM drains, exits 0, and its clients move to another node', async () => {
    const [, B, C] = nodes as [CliProcess, CliProcess, CliProcess]
    const writer = board({ name: 'drain', url: [B.url, C.url] as unknown as string })
    const observer = board({ name: 'drain', url: C.url })
    await waitFor(() => writer.sync.status().connection === 'online' && observer.sync.status().connection === 'online', 10_000, 'online')
    const total = 40
    let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined
    for (let i = 0; i < total; i++) {
      writer.getState().addCard(`d${i}`, `card ${i}`)
      await new Promise((r) => setTimeout(r, 10))
      if (i === 15) exit = B.kill('SIGTERM')
    }
    expect(await exit).toEqual({ code: 0, signal: null })
    expect(B.stderr()).toMatch(/"msg":"shutting down gracefully","signal":"SIGTERM"/)
    await writer.sync.flush({ timeout: 20_000 })
    await waitFor(() => Object.keys(observer.getState().cards).length === total, 15_000, 'observer has every card')
    expect(dataOf(observer)).toEqual(dataOf(writer))
  }, 60_000)

  it('reauthorize() on one node disconnects the revoked user on every node', async () => {
    const readers = new Set(['ann', 'ben'])
    const opts = {
      port: 0,
      logLevel: 'silent' as const,
      // A cluster of their own (storage and channel): nodes sharing a storage must share its channel.
      storage: { kind: 'postgres' as const, url: pgUrl, schema: `${schema}_re` },
      redis: { url: redisUrl, key: `${schema}-re` },
      reauthorizeMs: 0,
      authorize: (user: { id: string }) => readers.has(user.id),
    }
    const [one, two] = await Promise.all([createSyncServer(opts), createSyncServer(opts)])
    cleanups.push(() => one!.close(), () => two!.close())
    const ann = board({ name: 'revoked', url: one!.url, user: { id: 'ann' } })
    const ben = board({ name: 'revoked', url: two!.url, user: { id: 'ben' } })
    await waitFor(() => [ann, ben].every((b) => b.sync.status().connection === 'online'), 10_000, 'both online')
    readers.delete('ben')
    // Asked on the node ben is not connected to.
    expect(await one!.reauthorize({ user: 'ben' })).toBe(0)
    await waitFor(() => ben.sync.status().error?.code === 'FORBIDDEN', 10_000, 'ben refused on node two')
    ann.getState().addCard('after', 'not for ben')
    await ann.sync.flush({ timeout: 10_000 })
    await new Promise((r) => setTimeout(r, 300))
    expect(ben.getState().cards.after).toBeUndefined()
  })
})
