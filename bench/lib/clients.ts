/** Clients for the network benches: zync stores, bare socket.io sockets and Yjs docs over y-websocket. */
import { createStore, type StoreApi } from 'zustand/vanilla'
import { io, type Socket } from 'socket.io-client'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { sync, type SyncOptions } from '../../src/index'
import type { SyncApi } from '../../src/core/types'
import { until } from './stats'

export interface Rec {
  n: number
  title: string
}
export type Doc = { items: Record<string, Rec> }
export type ZStore = StoreApi<Doc> & { sync: SyncApi<Doc> }

export function smallDoc(n = 100): Doc {
  const items: Record<string, Rec> = {}
  for (let i = 0; i < n; i++) items[`e${i}`] = { n: 0, title: `Item ${i}` }
  return { items }
}

let ids = 0
/** A synced store on its own socket.io connection; outbox in memory (Node has no IndexedDB). */
export async function zyncClient(url: string, doc: string, o: Partial<SyncOptions<Doc>> = {}, init: () => Doc = smallDoc): Promise<ZStore> {
  const store = createStore<Doc>()(
    sync(init, { name: doc, url, storage: 'memory', crossTab: false, clientId: `c${process.pid}-${++ids}`, onWarning: () => {}, ...o }),
  ) as ZStore
  await store.sync.ready
  if (o.autoConnect !== false) await until(() => store.sync.status().connection === 'online', 10_000, 'zync client online')
  return store
}

export async function socketClient(url: string): Promise<Socket> {
  const s = io(url, { transports: ['websocket'], forceNew: true })
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve())
    s.once('connect_error', reject)
  })
  return s
}

export interface YClient {
  doc: Y.Doc
  map: Y.Map<unknown>
  provider: WebsocketProvider
}

export async function yjsClient(port: number, room: string): Promise<YClient> {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(`ws://127.0.0.1:${port}`, room, doc, { WebSocketPolyfill: WebSocket as never, disableBc: true })
  await new Promise<void>((resolve) => {
    if (provider.synced) resolve()
    else provider.once('sync', (s: boolean) => s && resolve())
  })
  return { doc, map: doc.getMap('items'), provider }
}

export function closeYjs(c: YClient): void {
  c.provider.destroy()
  c.doc.destroy()
}

/** An op shaped like the ones zync sends, for bare socket.io baselines of the same size. */
export function sampleOp(i: number) {
  return {
    id: `op-${process.pid}-${i}-abcdefghijk`,
    client: 'c-abcdefghijklmnopqrst',
    n: i,
    hlc: `${String(Date.now()).padStart(15, '0')}:000000:c-abcdefghijklmnopqrst`,
    op: 'replace',
    path: ['items', `e${i % 100}`, 'n'],
    value: i,
    base: {},
  }
}
