import { afterEach } from 'vitest'
import { createStore } from 'zustand/vanilla'
import { sync, type SyncOptions } from 'zync'
import { createSyncServer, MemoryStorage, type SyncServerOptions } from 'zync/server'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Card {
  title: string
  done?: boolean
  votes?: number
  tags?: string[]
}

export interface Board {
  cards: Record<string, Card>
  filter: string
  addCard: (id: string, title: string) => void
  rename: (id: string, title: string) => void
  vote: (id: string) => void
  remove: (id: string) => void
}

let dbCounter = 0
/** A fresh IndexedDB database name: a separate "device". */
export function freshDb(): string {
  return `zync-test-${process.pid}-${++dbCounter}-${Math.random().toString(36).slice(2)}`
}

export function tempFile(name: string): string {
  return join(mkdtempSync(join(tmpdir(), 'zync-')), name)
}

export async function startServer(opts: SyncServerOptions = {}) {
  return createSyncServer({ port: 0, host: '127.0.0.1', storage: { kind: 'memory' }, logLevel: 'silent', ...opts })
}

export function makeBoard({ initialCards, ...opts }: Omit<SyncOptions<Board>, 'name'> & { name?: string; initialCards?: Record<string, Card> }) {
  return createStore<Board>()(
    sync(
      (set) => ({
        cards: initialCards ?? {},
        filter: 'all',
        addCard: (id, title) => set((s) => ({ cards: { ...s.cards, [id]: { title, votes: 0 } } })),
        rename: (id, title) => set((s) => ({ cards: { ...s.cards, [id]: { ...s.cards[id]!, title } } })),
        vote: (id) => set((s) => ({ cards: { ...s.cards, [id]: { ...s.cards[id]!, votes: (s.cards[id]!.votes ?? 0) + 1 } } })),
        remove: (id) =>
          set((s) => {
            const { [id]: _gone, ...rest } = s.cards
            return { cards: rest }
          }),
      }),
      { name: 'board', dbName: freshDb(), onWarning: () => {}, ...opts },
    ),
  )
}

export async function waitFor(check: () => boolean | void, timeout = 5000, what = 'condition'): Promise<void> {
  const start = Date.now()
  for (;;) {
    try {
      if (check() !== false) return
    } catch (err) {
      if (Date.now() - start > timeout) throw err
    }
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

export function dataOf(store: { getState(): Board }) {
  const { cards, filter } = store.getState()
  return { cards, filter }
}

/**
 * Per-file cleanup: servers and stores made through it are closed after each test, newest first.
 * `before` runs first (e.g. to restore real timers so the closing can use them).
 */
export function useCleanup(before?: () => void) {
  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    before?.()
    while (cleanups.length) await cleanups.pop()!()
  })
  return {
    cleanups,
    server: async (opts: Parameters<typeof startServer>[0] = {}) => {
      const s = await startServer(opts)
      cleanups.push(() => s.close())
      return s
    },
    board: (opts: Parameters<typeof makeBoard>[0]) => {
      const b = makeBoard(opts)
      cleanups.push(() => b.sync.destroy())
      return b
    },
  }
}

/**
 * The op ids of a 'zync:ops' request as the server receives it: the client sends compact ops
 * (core/wire.ts, an array per op whose first item is its id); raw clients may send objects.
 */
export function sentOpIds(payload: unknown): string[] {
  const p = payload as { o?: unknown[]; ops?: unknown[] } | null
  if (Array.isArray(p?.o)) return p.o.map((w) => String((w as unknown[])?.[0]))
  if (Array.isArray(p?.ops)) return p.ops.map((o) => String((o as { id?: unknown })?.id))
  return []
}

/**
 * Memory storage whose reads fail while `down` (as a PostgreSQL that is down would): a document cannot
 * load. Set `down = false` to let it recover.
 */
export class DownStorage extends MemoryStorage {
  down = true
  override async loadSnapshot(doc: string) {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432')
    return super.loadSnapshot(doc)
  }
  override async readLog(doc: string, after: number, limit?: number) {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432')
    return super.readLog(doc, after, limit)
  }
  override async head(doc: string) {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432')
    return super.head(doc)
  }
}
