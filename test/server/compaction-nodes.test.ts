// Two nodes on one PostgreSQL and one Redis, compacting the whole log behind each snapshot (keepLog 0).
// A node whose copy of a document fell behind (its clients got the other node's changes over Redis)
// served it stale, even empty, once the other node had snapshotted at the head and compacted: an empty
// log looked up to date (an operator trial).
import { afterEach, expect, inject, it } from 'vitest'
import { createSyncServer, type SyncServer } from '../../src/server/index'
import { makeBoard, waitFor } from '../helpers'
import { dropPgSchemas, uniqueName } from './helpers'

const pgUrl = inject('pgUrl')
const redisUrl = inject('redisUrl')
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!()
})

it('a node behind a document compacted to its head by another node serves the head, and a reader reconnecting there keeps what it has', async () => {
  const schema = uniqueName('zync_compact')
  cleanups.push(() => dropPgSchemas(pgUrl, schema))
  const node = async (): Promise<SyncServer> => {
    const s = await createSyncServer({ port: 0, host: '127.0.0.1', logLevel: 'silent', storage: { kind: 'postgres', url: pgUrl, schema }, redis: { url: redisUrl, key: schema }, snapshotEvery: 5, keepLog: 0 })
    cleanups.push(() => s.close())
    return s
  }
  const one = await node()
  const two = await node()
  const board = (url: string) => {
    const b = makeBoard({ name: 'compacted', url, storage: 'memory' })
    cleanups.push(() => b.sync.destroy())
    return b
  }
  // A reader keeps the document loaded on node one; every write goes through node two.
  const reader = board(one.url)
  const writer = board(two.url)
  await waitFor(() => reader.sync.status().connection === 'online' && writer.sync.status().connection === 'online', 10_000, 'online')
  // Writes one at a time until node two has snapshotted at the head and compacted everything behind it
  // (a snapshot is due every 5 ops and written in the background, one at a time: which write lands one
  // at the head depends on timing).
  const atHead = async (head: number) => (await two.storage.loadSnapshot('compacted'))?.seq === head && (await two.storage.readLog('compacted', 0)).every((e) => e.seq >= head)
  let n = 0
  while (n < 10 || !(await atHead(n))) {
    expect(n).toBeLessThan(40)
    writer.getState().addCard(`c${n}`, `card ${n}`)
    n++
    await writer.sync.flush({ timeout: 5000 })
    for (const until = Date.now() + 200; n >= 10 && n % 5 === 0 && !(await atHead(n)) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 10))
  }
  await waitFor(() => Object.keys(reader.getState().cards).length === n, 5000, 'the reader has every card, over Redis')
  // A new device joining through node one gets the document, not node one's stale copy.
  const late = board(one.url)
  await waitFor(() => late.sync.status().connection === 'online', 5000, 'late online')
  expect(late.sync.status().seq).toBe(n)
  expect(Object.keys(late.getState().cards)).toHaveLength(n)
  // The reader reconnecting there keeps its cards, with no alarm about lost writes.
  const rewound: unknown[] = []
  reader.sync.on('server:rewound', (e) => rewound.push(e))
  reader.sync.disconnect()
  reader.sync.connect()
  await waitFor(() => reader.sync.status().connection === 'online', 5000, 'reader back online')
  expect(Object.keys(reader.getState().cards)).toHaveLength(n)
  expect(rewound).toEqual([])
})

it('a node on another storage than its Redis channel\'s nodes, or on another channel than its storage\'s, refuses to start', async () => {
  const schema = uniqueName('zync_cluster')
  const typo = `${schema}_typo`
  cleanups.push(() => dropPgSchemas(pgUrl, schema, typo))
  const node = (opts: { schema: string; key: string }) =>
    createSyncServer({ port: 0, host: '127.0.0.1', logLevel: 'silent', storage: { kind: 'postgres', url: pgUrl, schema: opts.schema }, redis: { url: redisUrl, key: opts.key } })
  const one = await node({ schema, key: schema })
  cleanups.push(() => one.close())
  // The same cluster: starts.
  const two = await node({ schema, key: schema })
  cleanups.push(() => two.close())
  // A mistyped schema (an empty storage of its own) on the cluster's channel: refused, not silently split.
  await expect(node({ schema: typo, key: schema })).rejects.toThrow(/keep their documents in another storage .*--schema/)
  // The cluster's storage on another channel (its clients would never hear the others' changes): refused.
  await expect(node({ schema, key: `${schema}-other` })).rejects.toThrow(/fan out on the Redis channel "zync_cluster[^"]*" at redis:\/\/127\.0\.0\.1:\d+\/?, not "zync_cluster[^"]*-other": every node of a cluster needs the same --redis-key/)
})
