// The ServerStorage contract (src/server/storage/types.ts), checked against every implementation.
//
// `make()` must return a new, initialized handle on ONE shared backing store (memory: the same instance;
// SQLite: a new SqliteStorage on the same file; PostgreSQL: a new PostgresStorage on the same database
// and schema). Every test works on documents of its own (unique names), so tests do not see each other's
// data; two `make()` handles racing each other model two server nodes; close + make models a restart.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { encodeHlc } from '../../src/core/hlc'
import type { Path } from '../../src/core/path'
import type { Op, OpStatus, Snapshot } from '../../src/core/protocol'
import { AppendConflictError, type LogEntry, type ServerStorage } from '../../src/server/storage/types'

export interface EntryInit {
  opId?: string
  path?: Path
  value?: unknown
  status?: OpStatus
  client?: string
  kind?: 'set' | 'delete'
  before?: unknown
}

const RUN = Math.random().toString(36).slice(2, 8)
let opCounter = 0

/** A valid LogEntry at `seq` (op id unique unless given). */
export function makeEntry(seq: number, init: EntryInit = {}): LogEntry {
  const client = init.client ?? 'client-a'
  const path = init.path ?? ['todos', `t${seq}`, 'title']
  const opId = init.opId ?? `${RUN}-op-${++opCounter}`
  const kind = init.kind ?? 'set'
  const value = 'value' in init ? init.value : `value ${seq}`
  const hlc = encodeHlc({ wall: 1_700_000_000_000 + seq, counter: 0, node: client })
  const op: Op = {
    id: opId,
    client,
    n: seq,
    hlc,
    op: kind === 'delete' ? 'remove' : 'replace',
    path,
    ...(kind === 'set' ? { value } : {}),
    base: { [client]: seq - 1 },
    policy: 'lww',
  }
  return {
    seq,
    opId,
    client,
    n: seq,
    hlc,
    entity: `${String(path[0])}/${String(path[1] ?? '')}`,
    path,
    kind,
    ...(kind === 'set' ? { value } : {}),
    ...('before' in init ? { before: init.before } : {}),
    status: init.status ?? 'applied',
    policy: 'lww',
    at: 1_700_000_000_000 + seq,
    op,
  }
}

/** Entries with seqs from..to (inclusive). */
export function makeEntries(from: number, to: number, init: (seq: number) => EntryInit = () => ({})): LogEntry[] {
  const out: LogEntry[] = []
  for (let s = from; s <= to; s++) out.push(makeEntry(s, init(s)))
  return out
}

function makeSnapshot(seq: number, extra: Record<string, unknown> = {}): Snapshot {
  return {
    seq,
    state: { todos: { a: { title: `at ${seq}`, done: false, tags: ['x', 'y'], meta: null } }, ...extra },
    vv: { 'todos/a': { 'client-a': seq, 'client-b': 2 } },
    fields: { 'todos/a\u0000title': { client: 'client-a', n: seq, hlc: encodeHlc({ wall: 1, counter: 2, node: 'client-a' }), seq, at: 5 } },
  }
}

const seqs = (entries: LogEntry[]) => entries.map((e) => e.seq)

/** A JSON value exercising what JSON can carry: unicode, escapes, nesting, nulls, numbers at the edges. */
const TRICKY_VALUE = {
  emoji: '👩‍👩‍👧‍👦 🎉',
  cjk: '漢字かなカナ한국어',
  rtl: 'مرحبا שלום',
  combining: 'e\u0301 n\u0303',
  controls: 'nul:\u0000 tab:\t nl:\n cr:\r bell:\u0007 ls:\u2028 ps:\u2029',
  quotes: `"double" 'single' \`back\` \\ backslash /slash`,
  sqlish: "'; DROP TABLE log; --",
  empty: '',
  nul: null,
  yes: true,
  no: false,
  zero: 0,
  negative: -42,
  float: 0.1 + 0.2,
  tiny: 5e-324,
  big: Number.MAX_SAFE_INTEGER,
  huge: 1.7976931348623157e308,
  emptyObj: {},
  emptyArr: [],
  'key with "quotes" and \u0000 nul': 'k',
  '': 'empty key',
  nested: { a: [1, [2, [3, { b: [null, { c: 'deep ✓' }] }]]], z: { y: { x: { w: { v: 'bottom' } } } } },
  array: [null, 0, '', false, [], {}, 'ünïcödé'],
  order: { zeta: 1, alpha: 2, mid: 3 },
}

async function expectConflict(p: Promise<unknown>): Promise<AppendConflictError> {
  const err = await p.then(
    () => {
      throw new Error('expected the append to reject with AppendConflictError, but it resolved')
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(AppendConflictError)
  expect(err).toBeInstanceOf(Error)
  expect((err as Error).name).toBe('AppendConflictError')
  return err as AppendConflictError
}

export function runStorageConformance(name: string, make: () => Promise<ServerStorage>, cleanup?: () => Promise<void>): void {
  describe(`ServerStorage conformance: ${name}`, () => {
    const handles: ServerStorage[] = []
    let docCounter = 0
    /** A document name no other test (or earlier run on a persistent store) uses. */
    const docName = (label: string) => `${RUN}:${label}:${++docCounter}`

    async function open(): Promise<ServerStorage> {
      const s = await make()
      handles.push(s)
      return s
    }

    afterEach(async () => {
      const hs = handles.splice(0)
      for (const h of hs) await h.close()
    })

    afterAll(async () => {
      await cleanup?.()
    })

    it('has a kind, and init() may be called again', async () => {
      const s = await open()
      expect(['memory', 'sqlite', 'postgres']).toContain(s.kind)
      await s.init()
      const doc = docName('init')
      await s.append(doc, makeEntries(1, 2))
      await s.init()
      expect(await s.head(doc)).toBe(2)
    })

    it('probeWrite() (what /readyz tries while appends fail) resolves on a writable store and leaves no document behind', async () => {
      const s = await open()
      // Optional in the interface; every storage zync ships has one.
      expect(typeof s.probeWrite).toBe('function')
      if (!s.probeWrite) return
      const before = await s.listDocs()
      await s.probeWrite()
      await s.probeWrite()
      expect((await s.listDocs()).sort()).toEqual(before.sort())
      expect(await s.loadSnapshot('')).toBeUndefined()
    })

    it('answers for an unknown document with emptiness', async () => {
      const s = await open()
      const doc = docName('unknown')
      expect(await s.head(doc)).toBe(0)
      expect(await s.readLog(doc, 0)).toEqual([])
      expect(await s.readLog(doc, 0, 10)).toEqual([])
      expect(await s.history(doc, {})).toEqual([])
      expect(await s.history(doc, { path: ['todos'] })).toEqual([])
      expect((await s.findOps(doc, ['nope'])).size).toBe(0)
      expect(await s.loadSnapshot(doc)).toBeUndefined()
      expect(await s.compact(doc, 100)).toBe(0)
      // Reading does not create the document.
      expect(await s.listDocs()).not.toContain(doc)
    })

    it('appends in order and reads the log after a seq, with limits', async () => {
      const s = await open()
      const doc = docName('order')
      const first = makeEntries(1, 3)
      const second = makeEntries(4, 6)
      await s.append(doc, first)
      expect(await s.head(doc)).toBe(3)
      await s.append(doc, second)
      expect(await s.head(doc)).toBe(6)

      const all = await s.readLog(doc, 0)
      expect(all).toEqual([...first, ...second])
      expect(seqs(await s.readLog(doc, 2))).toEqual([3, 4, 5, 6])
      expect(seqs(await s.readLog(doc, 0, 2))).toEqual([1, 2])
      expect(seqs(await s.readLog(doc, 2, 3))).toEqual([3, 4, 5])
      expect(seqs(await s.readLog(doc, 4, 100))).toEqual([5, 6])
      expect(seqs(await s.readLog(doc, 5, 1))).toEqual([6])
      expect(await s.readLog(doc, 6)).toEqual([])
      expect(await s.readLog(doc, 1000)).toEqual([])
    })

    it('appends single entries one after another and a large batch at once', async () => {
      const s = await open()
      const doc = docName('many')
      for (let seq = 1; seq <= 20; seq++) await s.append(doc, [makeEntry(seq)])
      const batch = makeEntries(21, 520)
      await s.append(doc, batch)
      expect(await s.head(doc)).toBe(520)
      const log = await s.readLog(doc, 0)
      expect(seqs(log)).toEqual(Array.from({ length: 520 }, (_, i) => i + 1))
      expect(log.slice(20)).toEqual(batch)
    })

    it('treats an empty append as a no-op', async () => {
      const s = await open()
      const doc = docName('empty-append')
      await s.append(doc, [])
      expect(await s.head(doc)).toBe(0)
      await s.append(doc, makeEntries(1, 2))
      await s.append(doc, [])
      expect(await s.head(doc)).toBe(2)
      expect(seqs(await s.readLog(doc, 0))).toEqual([1, 2])
    })

    it('stores copies: changing objects given to or returned by the storage changes nothing stored', async () => {
      const s = await open()
      const doc = docName('copies')
      const entries = makeEntries(1, 2, () => ({ value: { title: 'original', tags: ['a'] } }))
      const expected = structuredClone(entries)
      await s.append(doc, entries)
      ;(entries[0]!.value as { title: string }).title = 'mutated after append'
      entries[1]!.status = 'conflict'
      const read = await s.readLog(doc, 0)
      expect(read).toEqual(expected)
      ;(read[0]!.value as { tags: string[] }).tags.push('mutated after read')
      expect(await s.readLog(doc, 0)).toEqual(expected)

      const snap = makeSnapshot(2)
      const snapExpected = structuredClone(snap)
      await s.saveSnapshot(doc, snap)
      ;(snap.state as { todos: { a: { title: string } } }).todos.a.title = 'mutated'
      const loaded = (await s.loadSnapshot(doc))!
      expect(loaded).toEqual(snapExpected)
      loaded.vv['todos/a']!['client-a'] = 999
      expect(await s.loadSnapshot(doc)).toEqual(snapExpected)
    })

    it('reads each entry back with its whole op, whatever the op shares with the entry', async () => {
      const s = await open()
      const doc = docName('ops')
      const [plain, merged, clamped, conflict, removed, tricky] = makeEntries(1, 6, (seq) => (seq === 5 ? { kind: 'delete' } : seq === 6 ? { value: TRICKY_VALUE } : { value: { title: `t${seq}`, tags: ['a'] } }))
      // A merge left another value than the op's; a clamp another stamp; a conflict keeps the op's value as proposed.
      merged!.value = { title: 'merged', tags: ['a', 'b'] }
      clamped!.hlc = encodeHlc({ wall: 1_700_000_000_999, counter: 3, node: 'client-a' })
      conflict!.status = 'conflict'
      conflict!.proposed = conflict!.op.value
      conflict!.value = 'what stayed'
      conflict!.winner = { client: 'client-b', hlc: encodeHlc({ wall: 1, counter: 0, node: 'client-b' }), at: 2 }
      plain!.op.base = { 'client-a': 0, 'client-b': 7 }
      const entries = [plain!, merged!, clamped!, conflict!, removed!, tricky!]
      const expected = structuredClone(entries)
      await s.append(doc, entries)
      const read = await s.readLog(doc, 0)
      expect(read).toStrictEqual(expected)
      expect(read.map((e) => e.op)).toStrictEqual(expected.map((e) => e.op))
      expect(await s.history(doc, { limit: 10 })).toStrictEqual(expected.slice().reverse())
    })

    describe('atomicity', () => {
      it('rejects a batch whose first seq skips ahead of the head, writing nothing', async () => {
        const s = await open()
        const doc = docName('gap-first')
        const bad = makeEntries(2, 3)
        await expectConflict(s.append(doc, bad))
        expect(await s.head(doc)).toBe(0)
        expect(await s.readLog(doc, 0)).toEqual([])
        expect((await s.findOps(doc, bad.map((e) => e.opId))).size).toBe(0)

        await s.append(doc, makeEntries(1, 3))
        const bad2 = makeEntries(5, 6)
        await expectConflict(s.append(doc, bad2))
        expect(await s.head(doc)).toBe(3)
        expect(seqs(await s.readLog(doc, 0))).toEqual([1, 2, 3])
        expect((await s.findOps(doc, bad2.map((e) => e.opId))).size).toBe(0)
      })

      it('rejects a batch reusing a seq at or below the head', async () => {
        const s = await open()
        const doc = docName('reuse-seq')
        const good = makeEntries(1, 3)
        await s.append(doc, good)
        for (const start of [1, 2, 3]) {
          const bad = makeEntries(start, start + 1)
          await expectConflict(s.append(doc, bad))
          expect((await s.findOps(doc, bad.map((e) => e.opId))).size).toBe(0)
        }
        await expectConflict(s.append(doc, [makeEntry(0)]))
        await expectConflict(s.append(doc, [makeEntry(-1)]))
        expect(await s.head(doc)).toBe(3)
        expect(await s.readLog(doc, 0)).toEqual(good)
      })

      it('rejects a batch with non-consecutive seqs inside it, writing nothing (not even its valid prefix)', async () => {
        const s = await open()
        const doc = docName('gap-inside')
        const bad = [makeEntry(1), makeEntry(2), makeEntry(4)]
        await expectConflict(s.append(doc, bad))
        expect(await s.head(doc)).toBe(0)
        expect(await s.readLog(doc, 0)).toEqual([])
        expect((await s.findOps(doc, bad.map((e) => e.opId))).size).toBe(0)

        const repeated = [makeEntry(1), makeEntry(2), makeEntry(2)]
        await expectConflict(s.append(doc, repeated))
        const descending = [makeEntry(2), makeEntry(1)]
        await expectConflict(s.append(doc, descending))
        expect(await s.head(doc)).toBe(0)
        expect(await s.readLog(doc, 0)).toEqual([])
        expect(await s.history(doc, {})).toEqual([])
      })

      it('rejects a batch with a duplicate op id inside it, writing nothing', async () => {
        const s = await open()
        const doc = docName('dup-in-batch')
        const bad = [makeEntry(1, { opId: 'dup' }), makeEntry(2), makeEntry(3, { opId: 'dup' })]
        await expectConflict(s.append(doc, bad))
        expect(await s.head(doc)).toBe(0)
        expect(await s.readLog(doc, 0)).toEqual([])
        expect((await s.findOps(doc, ['dup', bad[1]!.opId])).size).toBe(0)
      })

      it('rejects a batch containing an op id already stored, writing nothing', async () => {
        const s = await open()
        const doc = docName('dup-stored')
        const good = makeEntries(1, 2)
        await s.append(doc, good)
        const fresh = makeEntry(3)
        const bad = [fresh, makeEntry(4, { opId: good[0]!.opId })]
        await expectConflict(s.append(doc, bad))
        await expectConflict(s.append(doc, [makeEntry(3, { opId: good[1]!.opId })]))
        expect(await s.head(doc)).toBe(2)
        expect(await s.readLog(doc, 0)).toEqual(good)
        const found = await s.findOps(doc, [fresh.opId, good[0]!.opId])
        expect(found.has(fresh.opId)).toBe(false)
        // The stored op keeps its original seq.
        expect(found.get(good[0]!.opId)).toEqual({ seq: 1, status: 'applied' })
      })

      it('accepts a valid batch after rejected ones', async () => {
        const s = await open()
        const doc = docName('after-reject')
        await expectConflict(s.append(doc, [makeEntry(1, { opId: 'x' }), makeEntry(2, { opId: 'x' })]))
        await expectConflict(s.append(doc, makeEntries(2, 3)))
        // The op id of a rejected batch is still free.
        const good = [makeEntry(1, { opId: 'x' }), makeEntry(2)]
        await s.append(doc, good)
        expect(await s.readLog(doc, 0)).toEqual(good)
        expect(await s.head(doc)).toBe(2)
      })
    })

    it('findOps reports seq and status of stored ops, and nothing for unknown ids', async () => {
      const s = await open()
      const doc = docName('findops')
      const entries = [
        makeEntry(1, { status: 'applied' }),
        makeEntry(2, { status: 'superseded' }),
        makeEntry(3, { status: 'conflict' }),
        makeEntry(4, { opId: 'op with spaces, "quotes" & ünïcode' }),
      ]
      await s.append(doc, entries)
      const found = await s.findOps(doc, [...entries.map((e) => e.opId), 'unknown-1', 'unknown-2'])
      expect(found.size).toBe(4)
      expect(found.get(entries[0]!.opId)).toEqual({ seq: 1, status: 'applied' })
      expect(found.get(entries[1]!.opId)).toEqual({ seq: 2, status: 'superseded' })
      expect(found.get(entries[2]!.opId)).toEqual({ seq: 3, status: 'conflict' })
      expect(found.get('op with spaces, "quotes" & ünïcode')).toEqual({ seq: 4, status: 'applied' })
      expect(found.has('unknown-1')).toBe(false)
      expect((await s.findOps(doc, [])).size).toBe(0)
      const one = await s.findOps(doc, [entries[1]!.opId])
      expect([...one.entries()]).toEqual([[entries[1]!.opId, { seq: 2, status: 'superseded' }]])
    })

    describe('snapshots', () => {
      it('saves and loads a snapshot exactly', async () => {
        const s = await open()
        const doc = docName('snap')
        const snap = makeSnapshot(7, { tricky: TRICKY_VALUE })
        await s.saveSnapshot(doc, snap)
        const loaded = await s.loadSnapshot(doc)
        expect(loaded).toEqual(snap)
        expect(JSON.stringify(loaded)).toBe(JSON.stringify(snap))
      })

      it('keeps the snapshot with the highest seq: a newer or equal one replaces it, an older one is ignored', async () => {
        const s = await open()
        const doc = docName('snap-order')
        await s.saveSnapshot(doc, makeSnapshot(5))
        await s.saveSnapshot(doc, makeSnapshot(10))
        expect((await s.loadSnapshot(doc))?.seq).toBe(10)
        expect(await s.loadSnapshot(doc)).toEqual(makeSnapshot(10))

        await s.saveSnapshot(doc, makeSnapshot(3))
        await s.saveSnapshot(doc, makeSnapshot(9))
        expect(await s.loadSnapshot(doc)).toEqual(makeSnapshot(10))

        const same = makeSnapshot(10, { replaced: 'same seq replaces' })
        await s.saveSnapshot(doc, same)
        expect(await s.loadSnapshot(doc)).toEqual(same)

        await s.saveSnapshot(doc, makeSnapshot(11))
        expect(await s.loadSnapshot(doc)).toEqual(makeSnapshot(11))
      })

      it('keeps snapshots apart from the log: saving one does not change head or log', async () => {
        const s = await open()
        const doc = docName('snap-log')
        await s.append(doc, makeEntries(1, 2))
        await s.saveSnapshot(doc, makeSnapshot(2))
        expect(await s.head(doc)).toBe(2)
        expect(seqs(await s.readLog(doc, 0))).toEqual([1, 2])
        await s.append(doc, makeEntries(3, 3))
        expect(await s.loadSnapshot(doc)).toEqual(makeSnapshot(2))
      })
    })

    describe('compaction', () => {
      it('drops entries up to the seq, returns how many, keeps later entries, head and op ids', async () => {
        const s = await open()
        const doc = docName('compact')
        const entries = makeEntries(1, 10, (seq) => ({ status: seq % 3 === 0 ? 'superseded' : 'applied' }))
        await s.append(doc, entries)
        await s.saveSnapshot(doc, makeSnapshot(4))
        expect(await s.compact(doc, 4)).toBe(4)
        expect(await s.readLog(doc, 0)).toEqual(entries.slice(4))
        expect(seqs(await s.readLog(doc, 2, 3))).toEqual([5, 6, 7])
        expect(await s.head(doc)).toBe(10)
        expect(await s.compact(doc, 4)).toBe(0)
        expect(await s.compact(doc, 2)).toBe(0)

        // findOps knows every op ever appended, compacted or not.
        const found = await s.findOps(doc, entries.map((e) => e.opId))
        expect(found.size).toBe(10)
        for (const e of entries) expect(found.get(e.opId)).toEqual({ seq: e.seq, status: e.status })

        await s.saveSnapshot(doc, makeSnapshot(7))
        expect(await s.compact(doc, 7)).toBe(3)
        expect(seqs(await s.readLog(doc, 0))).toEqual([8, 9, 10])
        expect(seqs(await s.history(doc, {}))).toEqual([10, 9, 8])
        expect(await s.loadSnapshot(doc)).toEqual(makeSnapshot(7))
      })

      it('continues after the head once compacted, and still rejects old seqs and old op ids', async () => {
        const s = await open()
        const doc = docName('compact-append')
        const entries = makeEntries(1, 5)
        await s.append(doc, entries)
        await s.saveSnapshot(doc, makeSnapshot(5))
        expect(await s.compact(doc, 5)).toBe(5)
        expect(await s.head(doc)).toBe(5)
        expect(await s.readLog(doc, 0)).toEqual([])

        // A compacted seq cannot be taken again, nor can the op id of a compacted entry.
        await expectConflict(s.append(doc, [makeEntry(1)]))
        await expectConflict(s.append(doc, [makeEntry(5)]))
        await expectConflict(s.append(doc, [makeEntry(6, { opId: entries[0]!.opId })]))
        expect(await s.head(doc)).toBe(5)

        const next = makeEntries(6, 7)
        await s.append(doc, next)
        expect(await s.head(doc)).toBe(7)
        expect(await s.readLog(doc, 0)).toEqual(next)
        expect(await s.readLog(doc, 3)).toEqual(next)
      })

      it('compacts everything when upto is beyond the head', async () => {
        const s = await open()
        const doc = docName('compact-all')
        await s.append(doc, makeEntries(1, 3))
        await s.saveSnapshot(doc, makeSnapshot(3))
        expect(await s.compact(doc, 1000)).toBe(3)
        expect(await s.readLog(doc, 0)).toEqual([])
        expect(await s.history(doc, {})).toEqual([])
        expect(await s.head(doc)).toBe(3)
      })
    })

    describe('history', () => {
      it('returns entries newest first, limited', async () => {
        const s = await open()
        const doc = docName('history')
        const entries = makeEntries(1, 8)
        await s.append(doc, entries)
        expect(await s.history(doc, {})).toEqual([...entries].reverse())
        expect(seqs(await s.history(doc, { limit: 3 }))).toEqual([8, 7, 6])
        expect(seqs(await s.history(doc, { limit: 1 }))).toEqual([8])
        expect(seqs(await s.history(doc, { limit: 100 }))).toEqual([8, 7, 6, 5, 4, 3, 2, 1])
      })

      it('returns at most 100 entries when no limit is given', async () => {
        const s = await open()
        const doc = docName('history-default')
        await s.append(doc, makeEntries(1, 130))
        const h = await s.history(doc, {})
        expect(h).toHaveLength(100)
        expect(h[0]!.seq).toBe(130)
        expect(h[99]!.seq).toBe(31)
        expect(seqs(await s.history(doc, { limit: 500 }))).toHaveLength(130)
      })

      it('filters by path prefix, segment by segment', async () => {
        const s = await open()
        const doc = docName('history-path')
        const paths: Path[] = [
          ['todos', 'a', 'title'], // 1
          ['todos', 'ab', 'title'], // 2: 'a' is a string prefix of 'ab' but not the same segment
          ['notes', 'a', 'title'], // 3
          ['todos', 'a', 'done'], // 4
          ['todos', 'a'], // 5
          ['todosX', 'a', 'title'], // 6
          ['list', 0, 'name'], // 7: number segment
          ['list', '0', 'qty'], // 8: same segment as a string
          ['list', 10, 'name'], // 9
          ['odd "seg"', 'a/b\\c', 'ü\u0000'], // 10
          ['todos', 'a', 'titles'], // 11
        ]
        const entries = paths.map((path, i) => makeEntry(i + 1, { path }))
        await s.append(doc, entries)
        const hist = async (path: Path, limit?: number) =>
          seqs(await s.history(doc, limit === undefined ? { path } : { path, limit }))

        expect(await hist(['todos'])).toEqual([11, 5, 4, 2, 1])
        expect(await hist(['todos', 'a'])).toEqual([11, 5, 4, 1])
        // A field's history has the write of its whole record (5) too: it wrote the field as well.
        expect(await hist(['todos', 'a', 'title'])).toEqual([5, 1])
        expect(await hist(['todos', 'a', 'title', 'deeper'])).toEqual([5, 1])
        expect(await hist(['notes'])).toEqual([3])
        expect(await hist(['todo'])).toEqual([])
        expect(await hist(['list', 0])).toEqual([8, 7])
        expect(await hist(['list', '0'])).toEqual([8, 7])
        expect(await hist(['list', 1])).toEqual([])
        expect(await hist(['list', 10, 'name'])).toEqual([9])
        expect(await hist(['odd "seg"', 'a/b\\c'])).toEqual([10])
        expect(await hist(['odd "seg"', 'a/b\\c', 'ü\u0000'])).toEqual([10])
        expect(await hist(['odd "seg"', 'a/b'])).toEqual([])
        expect(await hist([])).toEqual([11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1])
        expect(await s.history(doc, { path: ['todos', 'a'] })).toEqual([entries[10], entries[4], entries[3], entries[0]])

        // The limit applies to the matching entries: the newest `limit` of them.
        expect(await hist(['todos'], 2)).toEqual([11, 5])
        expect(await hist(['todos', 'a'], 3)).toEqual([11, 5, 4])
        expect(await hist(['notes'], 5)).toEqual([3])
      })

      it("has the writes of the path's ancestors (the record's creation, a collection replaced) with its own, newest first", async () => {
        const s = await open()
        const doc = docName('history-ancestors')
        const paths: Path[] = [
          ['cards'], // 1: the whole collection
          ['cards', 'c1'], // 2: the record created
          ['cards', 'c1', 'title'], // 3
          ['cards', 'c2', 'title'], // 4: another record
          ['cards', 'c1', 'votes'], // 5: a sibling field
          ['cards', 'c10'], // 6: 'c1' is a string prefix of 'c10', not an ancestor
          ['cards', 'c1', 'title'], // 7
        ]
        await s.append(doc, paths.map((path, i) => makeEntry(i + 1, { path })))
        const hist = async (path: Path, limit?: number) => seqs(await s.history(doc, limit === undefined ? { path } : { path, limit }))
        expect(await hist(['cards', 'c1', 'title'])).toEqual([7, 3, 2, 1])
        expect(await hist(['cards', 'c1', 'title'], 2)).toEqual([7, 3])
        expect(await hist(['cards', 'c1'])).toEqual([7, 5, 3, 2, 1])
        expect(await hist(['cards', 'c2', 'title'])).toEqual([4, 1])
        expect(await hist(['cards', 'c3', 'title'])).toEqual([1])
        expect(await hist(['cards'])).toEqual([7, 6, 5, 4, 3, 2, 1])
        expect(await hist([])).toEqual([7, 6, 5, 4, 3, 2, 1])
      })

      it('finds old matching entries behind many newer non-matching ones', async () => {
        const s = await open()
        const doc = docName('history-sparse')
        const entries = makeEntries(1, 150, (seq) => ({ path: seq <= 3 ? ['rare', `r${seq}`] : ['common', `c${seq}`] }))
        await s.append(doc, entries)
        expect(seqs(await s.history(doc, { path: ['rare'] }))).toEqual([3, 2, 1])
        expect(seqs(await s.history(doc, { path: ['rare'], limit: 2 }))).toEqual([3, 2])
      })
    })

    it('isolates documents: nothing leaks between them', async () => {
      const s = await open()
      // Names that trip up LIKE patterns and prefix matching.
      const a = docName('iso') + '/a_%'
      const b = docName('iso') + '/abc'
      const c = a + 'x'
      const sameIds = ['shared-1', 'shared-2', 'shared-3']
      const ea = makeEntries(1, 3, (seq) => ({ opId: sameIds[seq - 1]!, path: ['from', 'a'] }))
      const eb = makeEntries(1, 2, (seq) => ({ opId: sameIds[seq - 1]!, path: ['from', 'b'], status: 'conflict' }))
      await s.append(a, ea)
      // Op ids and seqs are per document.
      await s.append(b, eb)
      await s.append(c, [makeEntry(1, { path: ['from', 'c'] })])

      expect(await s.head(a)).toBe(3)
      expect(await s.head(b)).toBe(2)
      expect(await s.head(c)).toBe(1)
      expect(await s.readLog(a, 0)).toEqual(ea)
      expect(await s.readLog(b, 0)).toEqual(eb)
      expect(await s.history(b, { path: ['from'] })).toEqual([...eb].reverse())
      expect(await s.history(a, { path: ['from', 'b'] })).toEqual([])
      expect((await s.findOps(a, sameIds)).get('shared-3')).toEqual({ seq: 3, status: 'applied' })
      expect((await s.findOps(b, sameIds)).get('shared-1')).toEqual({ seq: 1, status: 'conflict' })
      expect((await s.findOps(b, sameIds)).has('shared-3')).toBe(false)

      await s.saveSnapshot(a, makeSnapshot(3))
      expect(await s.loadSnapshot(b)).toBeUndefined()
      expect(await s.loadSnapshot(c)).toBeUndefined()

      expect(await s.compact(a, 3)).toBe(3)
      expect(await s.readLog(a, 0)).toEqual([])
      expect(await s.readLog(b, 0)).toEqual(eb)
      expect(seqs(await s.readLog(c, 0))).toEqual([1])

      // A conflict in one document does not affect another.
      await expectConflict(s.append(b, [makeEntry(3, { opId: 'shared-2' })]))
      await s.append(a, [makeEntry(4, { opId: 'only-in-a' })])
      expect((await s.findOps(b, ['only-in-a'])).size).toBe(0)
      await s.append(b, [makeEntry(3, { opId: 'only-in-a' })])
      expect(await s.head(b)).toBe(3)
      expect(await s.head(a)).toBe(4)
    })

    it('lists documents that have entries or a snapshot, each once', async () => {
      const s = await open()
      const prefix = docName('list')
      const withLog = `${prefix}/log`
      const withSnap = `${prefix}/snap`
      const compacted = `${prefix}/compacted`
      const untouched = `${prefix}/untouched`
      const unicode = `${prefix}/ドキュメント 🗂`
      await s.append(withLog, makeEntries(1, 3))
      await s.append(withLog, makeEntries(4, 5))
      await s.saveSnapshot(withLog, makeSnapshot(5))
      await s.saveSnapshot(withSnap, makeSnapshot(1))
      await s.append(compacted, makeEntries(1, 2))
      await s.saveSnapshot(compacted, makeSnapshot(2))
      await s.compact(compacted, 2)
      await s.append(unicode, makeEntries(1, 1))
      await s.head(untouched)
      await s.readLog(untouched, 0)

      const docs = await s.listDocs()
      expect(new Set(docs).size).toBe(docs.length)
      const mine = docs.filter((d) => d.startsWith(`${prefix}/`)).sort()
      expect(mine).toEqual([withLog, withSnap, compacted, unicode].sort())
    })

    it('round-trips values exactly: unicode, escapes, nesting, nulls, numbers', async () => {
      const s = await open()
      const doc = docName('values') + ' ünï "côdé" 🎯'
      const entries = [
        makeEntry(1, { value: TRICKY_VALUE, before: null }),
        makeEntry(2, { value: null, before: TRICKY_VALUE }),
        makeEntry(3, { value: [TRICKY_VALUE, [TRICKY_VALUE]] }),
        makeEntry(4, { value: '👍 just a string with \u0000 inside' }),
        makeEntry(5, { value: 0.000001 }),
        makeEntry(6, { kind: 'delete', before: { gone: ['but', 'remembered'] } }),
        makeEntry(7, { path: ['emoji 🎉', 'ключ', 'a"b\\c\u0000'], value: { '': '', ' ': ' ' }, client: 'client ü' }),
      ]
      // Extra Change fields survive as well.
      entries[0] = { ...entries[0]!, user: 'user ✓', proposed: { p: [1, null] }, prev: 'prev', resolves: 'op-x' }
      await s.append(doc, entries)
      const read = await s.readLog(doc, 0)
      expect(read).toEqual(entries)
      // Same JSON text: same keys in the same order, same numbers, same strings.
      expect(read.map((e) => JSON.stringify(e))).toEqual(entries.map((e) => JSON.stringify(e)))
      expect((read[0]!.value as typeof TRICKY_VALUE).float).toBe(0.1 + 0.2)
      expect((read[0]!.value as typeof TRICKY_VALUE).tiny).toBe(5e-324)
      expect((read[0]!.value as typeof TRICKY_VALUE).nul).toBeNull()
      expect(read[5]!.kind).toBe('delete')
      expect('value' in read[5]!).toBe(false)
      const hist = await s.history(doc, { path: ['emoji 🎉', 'ключ'] })
      expect(hist).toEqual([entries[6]])
    })

    describe('several writers on one store', () => {
      it('lets exactly one of two racing appends for the same seq win', async () => {
        const a = await open()
        const b = await open()
        const doc = docName('race')
        const rounds = 25
        for (let round = 0; round < rounds; round++) {
          const [ha, hb] = await Promise.all([a.head(doc), b.head(doc)])
          expect(ha).toBe(round)
          expect(hb).toBe(round)
          const ea = makeEntry(round + 1, { client: 'node-a' })
          const eb = makeEntry(round + 1, { client: 'node-b' })
          const results = await Promise.allSettled([a.append(doc, [ea]), b.append(doc, [eb])])
          const won = results.filter((r) => r.status === 'fulfilled')
          const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
          expect(won).toHaveLength(1)
          expect(lost).toHaveLength(1)
          expect(lost[0]!.reason).toBeInstanceOf(AppendConflictError)
          const winner = results[0]!.status === 'fulfilled' ? ea : eb
          const loser = winner === ea ? eb : ea
          // Both handles see the winner, and only the winner.
          expect(await a.readLog(doc, round)).toEqual([winner])
          expect(await b.readLog(doc, round)).toEqual([winner])
          expect((await b.findOps(doc, [loser.opId])).size).toBe(0)
        }
        expect(await a.head(doc)).toBe(rounds)
        expect(await b.head(doc)).toBe(rounds)
      })

      it('never interleaves two racing batches', async () => {
        const a = await open()
        const b = await open()
        const doc = docName('race-batch')
        for (let round = 0; round < 10; round++) {
          const head = await a.head(doc)
          const ba = makeEntries(head + 1, head + 3, () => ({ client: 'node-a' }))
          const bb = makeEntries(head + 1, head + 2, () => ({ client: 'node-b' }))
          const results = await Promise.allSettled([a.append(doc, ba), b.append(doc, bb)])
          expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
          const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!
          expect(rejected.reason).toBeInstanceOf(AppendConflictError)
          const winner = results[0]!.status === 'fulfilled' ? ba : bb
          expect(await b.readLog(doc, head)).toEqual(winner)
          expect(await a.head(doc)).toBe(head + winner.length)
        }
      })

      it('keeps the log gapless when several writers keep racing', async () => {
        const writers = await Promise.all([open(), open(), open(), open()])
        const doc = docName('race-many')
        const target = 40
        const committed: LogEntry[] = []
        const failures: unknown[] = []
        await Promise.all(
          writers.map(async (w, i) => {
            for (;;) {
              const head = await w.head(doc)
              if (head >= target) return
              const e = makeEntry(head + 1, { client: `node-${i}` })
              try {
                await w.append(doc, [e])
                committed.push(e)
              } catch (err) {
                if (!(err instanceof AppendConflictError)) failures.push(err)
              }
            }
          }),
        )
        expect(failures).toEqual([])
        const log = await writers[0]!.readLog(doc, 0)
        expect(seqs(log)).toEqual(Array.from({ length: target }, (_, i) => i + 1))
        // Exactly the appends that resolved are in the log.
        expect([...log].sort((x, y) => x.opId.localeCompare(y.opId))).toEqual(
          [...committed].sort((x, y) => x.opId.localeCompare(y.opId)),
        )
        for (const w of writers) expect(await w.head(doc)).toBe(target)
      })

      it('lets exactly one of two racing appends with the same op id win', async () => {
        const a = await open()
        const b = await open()
        const doc = docName('race-op')
        await a.append(doc, makeEntries(1, 1))
        const ea = [makeEntry(2, { opId: 'same-op', client: 'node-a' })]
        const eb = [makeEntry(2, { opId: 'same-op', client: 'node-b' }), makeEntry(3, { client: 'node-b' })]
        const results = await Promise.allSettled([a.append(doc, ea), b.append(doc, eb)])
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        const winner = results[0]!.status === 'fulfilled' ? ea : eb
        expect(await b.readLog(doc, 1)).toEqual(winner)
        expect((await a.findOps(doc, ['same-op'])).get('same-op')).toEqual({ seq: 2, status: 'applied' })
      })
    })

    it('keeps everything across close and reopen', async () => {
      const doc = docName('reopen')
      const other = docName('reopen-other')
      const entries = makeEntries(1, 12, (seq) => ({ value: { n: seq, tricky: TRICKY_VALUE }, status: seq === 2 ? 'conflict' : 'applied' }))
      const snap = makeSnapshot(6, { tricky: TRICKY_VALUE })

      const first = await make()
      await first.append(doc, entries.slice(0, 8))
      await first.append(doc, entries.slice(8))
      await first.saveSnapshot(doc, snap)
      expect(await first.compact(doc, 6)).toBe(6)
      await first.saveSnapshot(other, makeSnapshot(1))
      await first.close()

      const second = await open()
      expect(await second.head(doc)).toBe(12)
      expect(await second.readLog(doc, 0)).toEqual(entries.slice(6))
      expect(JSON.stringify(await second.readLog(doc, 0))).toBe(JSON.stringify(entries.slice(6)))
      expect(await second.loadSnapshot(doc)).toEqual(snap)
      expect(await second.loadSnapshot(other)).toEqual(makeSnapshot(1))
      const found = await second.findOps(doc, entries.map((e) => e.opId))
      expect(found.size).toBe(12)
      expect(found.get(entries[1]!.opId)).toEqual({ seq: 2, status: 'conflict' })
      expect(seqs(await second.history(doc, { limit: 2 }))).toEqual([12, 11])
      expect(await second.listDocs()).toEqual(expect.arrayContaining([doc, other]))
      // The reopened store enforces the same rules.
      await expectConflict(second.append(doc, [makeEntry(13, { opId: entries[0]!.opId })]))
      await expectConflict(second.append(doc, [makeEntry(12)]))
      await second.append(doc, [makeEntry(13)])
      expect(await second.head(doc)).toBe(13)
    })
  })
}
