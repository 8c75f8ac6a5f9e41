import Dexie, { type Table } from 'dexie'
import { isQuotaError, ZyncError } from '../core/errors'
import type { Change } from '../core/protocol'
import type { DocMeta, LoadedDoc, OutboxRow, OutboxStorage, SpilledTail, StorageBatch, StoredConflict } from '../core/storage'
import { CHUNK_ENTRIES, joinState, splitState, type StatePart } from './state-chunks'

/** Characters of JSON a saved tail may take (localStorage has about five million per origin, shared with every tab's spill). */
const TAIL_BYTES = 200_000

/**
 * A tab's heartbeat, or (with `by`) a claim: the rows `owner` wrote now belong to tab `by`. Adopting a
 * closed tab's rows writes one claim instead of rewriting every row (a reload with thousands of
 * pending edits took hundreds of milliseconds doing that); `load` and `adopt` read rows through them.
 */
interface Beat {
  key: string
  doc: string
  owner: string
  at: number
  by?: string
}

const beatKey = (doc: string, owner: string) => doc + '\u0000' + owner
const claimKey = (doc: string, owner: string) => doc + '\u0000' + owner + '\u0000by'

/** Who holds the rows each writer made, following claims. */
function ownerOf(beats: Beat[]): (owner: string) => string {
  const by = new Map<string, string>()
  for (const b of beats) if (b.by !== undefined) by.set(b.owner, b.by)
  return (o) => {
    // adopt points every claim straight at its holder; the bound only guards against a cycle.
    for (let i = 0; i < 32 && by.has(o); i++) o = by.get(o)!
    return o
  }
}

/** The meta as stored: a big confirmed state is in `parts` rows of its own (see state-chunks). */
interface StoredMeta extends DocMeta {
  /** How many `parts` rows hold the confirmed state (`confirmed` is then `{}`); absent: it is inline. */
  parts?: number
}

interface PartRow extends StatePart {
  doc: string
  i: number
}

class ZyncDb extends Dexie {
  outbox!: Table<OutboxRow, string>
  meta!: Table<StoredMeta, string>
  parts!: Table<PartRow, [string, number]>
  conflicts!: Table<StoredConflict, string>
  tabs!: Table<Beat, string>
  constructor(name: string) {
    super(name)
    this.version(1).stores({
      outbox: 'id, doc, [doc+owner], order',
      meta: 'doc',
      conflicts: 'id, doc',
      tabs: 'key, doc',
    })
    this.version(2).stores({ parts: '[doc+i]' })
  }
}

/**
 * The outbox in IndexedDB through Dexie. One database per origin (default name 'zync'), shared by
 * every tab and document. Each `write` is one readwrite transaction over the tables it touches.
 * A schema upgrade in another tab (versionchange) closes this connection; the next call reopens it.
 */
export class DexieOutboxStorage implements OutboxStorage {
  readonly kind = 'indexeddb'
  private db: ZyncDb
  private closed = false
  constructor(private readonly dbName = 'zync') {
    this.db = new ZyncDb(dbName)
    this.watch()
    inUse.set(dbName, (inUse.get(dbName) ?? 0) + 1)
  }

  private readonly resetListeners = new Set<() => void>()

  onReset(listener: () => void): () => void {
    this.resetListeners.add(listener)
    return () => this.resetListeners.delete(listener)
  }

  private watch(): void {
    this.db.on('versionchange', (ev: IDBVersionChangeEvent) => {
      // Another tab wants to upgrade (or delete the database): step aside, then reopen lazily on the next call.
      this.db.close()
      if (ev.newVersion === null) this.reset()
      return false
    })
    // Closed by the browser ("Clear site data", storage evicted): what was written is gone too.
    this.db.on('close', () => this.reset())
  }

  /** The database went away under the page: every store writes what it holds again (a reload lost it). */
  private reset(): void {
    queueMicrotask(() => {
      for (const l of this.resetListeners) l()
    })
  }

  private async ensureOpen(): Promise<ZyncDb> {
    if (!this.db.isOpen()) {
      if (this.db.hasBeenClosed()) {
        this.db = new ZyncDb(this.dbName)
        this.watch()
      }
      await this.db.open()
    }
    return this.db
  }

  async open(): Promise<void> {
    try {
      await this.ensureOpen()
    } catch (err) {
      this.close()
      throw new ZyncError('STORAGE_UNAVAILABLE', `[zync] IndexedDB is not available (${(err as Error).name ?? 'error'}): falling back to memory`, { cause: err })
    }
  }

  private spillPrefix(doc: string): string {
    return `zync:spill:${this.dbName}:${doc}:`
  }

  /** Synchronous, for a dying page: rows that had no time to reach IndexedDB go to localStorage. */
  spill(doc: string, owner: string, rows: OutboxRow[], conflicts: StoredConflict[] = []): void {
    const ls = localStore()
    if (!ls) return
    ls.setItem(this.spillPrefix(doc) + owner, JSON.stringify(conflicts.length > 0 ? { rows, conflicts } : rows))
  }

  private tailPrefix(doc: string): string {
    return `zync:tail:${this.dbName}:${doc}:`
  }

  /**
   * The changes a closing page applied after the confirmed state it wrote, under a key of their own: one
   * that does not fit (over TAIL_BYTES, or the quota) is dropped (the server has them), and it never
   * takes the room of the rows' spill, written first.
   */
  spillTail(doc: string, owner: string, tail?: SpilledTail): void {
    const ls = localStore()
    if (!ls) return
    const key = this.tailPrefix(doc) + owner
    const json = tail && tail.changes.length > 0 ? JSON.stringify(tail) : ''
    try {
      if (json && json.length <= TAIL_BYTES) ls.setItem(key, json)
      else ls.removeItem(key)
    } catch {
      ls.removeItem(key)
    }
  }

  /** The tails closing pages saved for `doc` (see spillTail), taken out of localStorage unless `keep`. */
  private takeTails(doc: string, keep: boolean): SpilledTail[] {
    const ls = localStore()
    if (!ls) return []
    const tails: SpilledTail[] = []
    for (const key of spillKeys(ls, this.tailPrefix(doc))) {
      const tail = readTail(ls.getItem(key))
      if (tail) tails.push(tail)
      if (!keep) ls.removeItem(key)
    }
    return tails
  }

  unspill(doc: string, owner: string): void {
    localStore()?.removeItem(this.spillPrefix(doc) + owner)
  }

  /**
   * Moves rows spilled by pages that died into the outbox. A spilled row whose id is there already
   * replaces it while the same tab still owns it: the spill is that page's last word on the row (an edit
   * folded into it after its last IndexedDB write; keeping the stored row lost that edit). A row another
   * tab has adopted since is kept as that tab has it.
   */
  private async importSpills(db: ZyncDb, doc: string): Promise<string[]> {
    const ls = localStore()
    if (!ls) return []
    const keys = spillKeys(ls, this.spillPrefix(doc))
    if (keys.length === 0) return []
    const spills = keys.map((k) => readSpill(ls, k, doc))
    const newer = await db.transaction('rw', db.outbox, db.conflicts, db.meta, async () => {
      await putSpilledConflicts(db, doc, spills.flatMap((x) => x.conflicts))
      return putSpilled(db, spills.flatMap((x) => x.rows))
    })
    for (const k of keys) ls.removeItem(k)
    return newer.map((r) => r.id)
  }

  async load(doc: string, adopt?: { owner: string; staleBefore: number }, readOnly = false): Promise<LoadedDoc> {
    const db = await this.ensureOpen()
    const ls = localStore()
    // Read only (a full disk): spills are read, not moved in, and claims are made in memory only.
    const spilledRows = readOnly && ls ? spillKeys(ls, this.spillPrefix(doc)).flatMap((k) => readSpill(ls, k, doc).rows) : []
    const spilled = readOnly ? [] : await this.importSpills(db, doc)
    // Kept while the disk is full: the state they continue cannot be written yet.
    const tails = this.takeTails(doc, readOnly)
    const liveByLock = adopt ? await liveOwnersByLocks(doc) : undefined
    return db.transaction(adopt && !readOnly ? 'rw' : 'r', [db.outbox, db.meta, db.parts, db.conflicts, db.tabs], async () => {
      const beats = await db.tabs.where('doc').equals(doc).toArray()
      const before = ownerOf(beats)
      const alive = adopt && readOnly ? liveOwners(beats, adopt.staleBefore, liveByLock) : undefined
      const holder = !adopt ? before : alive ? (o: string) => (alive.has(before(o)) ? before(o) : adopt.owner) : (await claimOrphans(db, doc, adopt.owner, adopt.staleBefore, liveByLock)).holder
      const byId = new Map((await db.outbox.where('doc').equals(doc).toArray()).map((r) => [r.id, r]))
      const unwritten: string[] = []
      for (const r of spilledRows) {
        if (!spillWins(r, byId.get(r.id))) continue
        byId.set(r.id, r)
        unwritten.push(r.id)
      }
      const rows = [...byId.values()].sort((a, b) => a.order - b.order)
      const unannounced = new Set([...spilled, ...unwritten])
      for (const r of rows) {
        const was = r.owner
        r.owner = holder(r.owner)
        if (adopt && r.owner === adopt.owner && was !== adopt.owner) unannounced.add(r.id)
      }
      const nextOrder = Math.max((await db.outbox.orderBy('order').last())?.order ?? 0, rows[rows.length - 1]?.order ?? 0)
      const meta = await readMeta(db, doc)
      const conflicts = await db.conflicts.where('doc').equals(doc).toArray()
      return { rows, ...(meta ? { meta } : {}), conflicts, nextOrder, ...(unannounced.size > 0 ? { unannounced: [...unannounced] } : {}), ...(unwritten.length > 0 ? { unwritten } : {}), ...(tails.length > 0 ? { tails } : {}) }
    })
  }

  async write(batch: StorageBatch): Promise<void> {
    try {
      const db = await this.ensureOpen()
      // Only the tables this batch writes: a burst of edits locks (and commits) the outbox alone.
      const tables = [...(batch.put?.length || batch.delete?.length ? [db.outbox] : []), ...(batch.meta ? [db.meta, db.parts] : []), ...(batch.putConflicts?.length || batch.deleteConflicts?.length ? [db.conflicts] : [])]
      if (tables.length === 0) return
      await db.transaction('rw', tables, async () => {
        // Rows go in parts too: IndexedDB clones a bulkPut's rows in the one task that calls it (a set()
        // that added 10,000 records was a 0.5 s task), and each part gets a task of its own.
        for (let i = 0; i < (batch.put?.length ?? 0); i += CHUNK_ENTRIES) await db.outbox.bulkPut(batch.put!.slice(i, i + CHUNK_ENTRIES))
        if (batch.delete?.length) await db.outbox.bulkDelete(batch.delete)
        if (batch.meta) await writeMeta(db, batch.meta)
        if (batch.putConflicts?.length) await db.conflicts.bulkPut(batch.putConflicts)
        if (batch.deleteConflicts?.length) await db.conflicts.bulkDelete(batch.deleteConflicts)
      })
    } catch (err) {
      if (isQuotaError(err)) throw new ZyncError('STORAGE_FULL', '[zync] IndexedDB quota exceeded: changes are kept in memory until space frees up', { cause: err })
      throw new ZyncError('STORAGE_UNAVAILABLE', `[zync] IndexedDB write failed: ${(err as Error).message}`, { cause: err, retryable: true })
    }
  }

  async orphanedDocs(except: string, staleBefore: number, endpoint?: string): Promise<string[]> {
    const db = await this.ensureOpen()
    // The (document, writer) pairs of every row, from the compound index alone.
    const pairs = (await db.outbox.orderBy('[doc+owner]').uniqueKeys()) as unknown as Array<[string, string]>
    const writersOf = new Map<string, string[]>()
    for (const [doc, writer] of pairs) if (doc !== except) (writersOf.get(doc) ?? writersOf.set(doc, []).get(doc)!).push(writer)
    const out: string[] = []
    for (const [doc, writers] of writersOf) {
      const liveByLock = await liveOwnersByLocks(doc)
      const beats = await db.tabs.where('doc').equals(doc).toArray()
      const alive = liveOwners(beats, staleBefore, liveByLock)
      const holder = ownerOf(beats)
      const orphaned = writers.filter((w) => !alive.has(holder(w)))
      // Dead letters wait for the app (retry or discard), not for a delivery. A document with rows made
      // for another server is left to a store of that server (a delivery sends all of its rows).
      let waiting = false
      let foreign = false
      for (const w of orphaned) {
        await db.outbox
          .where('[doc+owner]')
          .equals([doc, w])
          .each((r) => {
            if (r.dead) return
            waiting = true
            if (r.to !== undefined && r.to !== endpoint) foreign = true
          })
      }
      if (waiting && !foreign) out.push(doc)
    }
    return out
  }

  async heartbeat(doc: string, owner: string, now: number): Promise<void> {
    const db = await this.ensureOpen()
    holdTabLock(doc, owner)
    await db.tabs.put({ key: beatKey(doc, owner), doc, owner, at: now })
  }

  async adopt(doc: string, owner: string, staleBefore: number): Promise<OutboxRow[]> {
    const db = await this.ensureOpen()
    const liveByLock = await liveOwnersByLocks(doc)
    const ls = localStore()
    const taken: string[] = []
    const rows = await db.transaction('rw', [db.outbox, db.tabs, db.conflicts, db.meta], async () => {
      // What a closed page spilled is its last word on its rows: edits folded into a row after its last
      // IndexedDB write, rows that never got there. Taken in before its rows are claimed (a trial in
      // Chromium closed a tab mid-typing with others open: the adopting tab sent the row's older version
      // from IndexedDB, the spilled one came later under the same op id and was dropped as a duplicate,
      // and rows only in the spill waited for the next page load). Put as the writer's, they are adopted
      // with the rest.
      if (ls) {
        const beats = await db.tabs.where('doc').equals(doc).toArray()
        const alive = liveOwners(beats, staleBefore, liveByLock)
        const prefix = this.spillPrefix(doc)
        for (const key of spillKeys(ls, prefix)) {
          const writer = key.slice(prefix.length)
          if (writer === owner || alive.has(writer)) continue
          const spill = readSpill(ls, key, doc)
          await putSpilledConflicts(db, doc, spill.conflicts)
          await putSpilled(db, spill.rows)
          taken.push(key)
        }
      }
      const { orphaned } = await claimOrphans(db, doc, owner, staleBefore, liveByLock)
      const rows: OutboxRow[] = []
      // One index range per writer (anyOf over the compound index walks a cursor row by row: slower).
      for (const o of orphaned) for (const r of await db.outbox.where('[doc+owner]').equals([doc, o]).toArray()) rows.push({ ...r, owner })
      return rows
    })
    for (const k of taken) ls?.removeItem(k)
    return rows
  }

  async release(doc: string, owner: string): Promise<void> {
    const db = await this.ensureOpen()
    await db.tabs.delete(beatKey(doc, owner))
    releaseTabLock(doc, owner)
  }

  close(): void {
    this.db.close()
    if (this.closed) return
    this.closed = true
    inUse.set(this.dbName, inUse.get(this.dbName)! - 1)
  }
}

/**
 * Inside a readwrite transaction over meta and parts. A confirmed state too big for one part is written
 * one part per put: IndexedDB clones each put on the main thread, so the page gets a turn between parts
 * instead of one long task, and the transaction keeps the whole of it atomic. Parts left from a bigger
 * state before are deleted.
 */
async function writeMeta(db: ZyncDb, meta: DocMeta): Promise<void> {
  const parts = splitState(meta.confirmed)
  const split = parts.length > 1
  for (let i = 0; split && i < parts.length; i++) await db.parts.put({ doc: meta.doc, i, ...parts[i]! })
  await db.parts.where('[doc+i]').between([meta.doc, split ? parts.length : 0], [meta.doc, Dexie.maxKey]).delete()
  await db.meta.put(split ? { ...meta, confirmed: {}, parts: parts.length } : meta)
}

/** Inside a transaction over meta and parts: the meta with its confirmed state whole. */
async function readMeta(db: ZyncDb, doc: string): Promise<DocMeta | undefined> {
  const stored = await db.meta.get(doc)
  if (!stored?.parts) return stored
  const { parts: count, ...meta } = stored
  // One get per part, each cloned back in a task of its own (as writeMeta puts them).
  const parts: StatePart[] = []
  for (let i = 0; i < count; i++) {
    const part = await db.parts.get([doc, i])
    // Written in one transaction with the meta, so never missing; if one were, start from the server's state.
    if (!part) return undefined
    parts.push(part)
  }
  return { ...meta, confirmed: joinState(parts) }
}

/** Outbox storages of this page not closed yet (their stores not destroyed), per database name. */
const inUse = new Map<string, number>()

/**
 * Deletes what zync keeps on this device under `dbName` (default 'zync', the `dbName` option): the
 * outbox with its pending and dead edits, saved snapshots, conflicts and tab records (the IndexedDB
 * database), and edits closing pages spilled to localStorage. For signing out on a shared device:
 * `await store.sync.flush()` while online first (it delivers the open document's edits; anything
 * still unsent is deleted), then `await store.sync.destroy()` on every store, in every tab, then this.
 * Rejects with `BAD_REQUEST` while a store of this page still uses the database. A store still alive
 * in another tab does not hold the deletion up, but it keeps what it has in memory and writes it back:
 * sign every tab out (a BroadcastChannel message, say), each calling this after its destroy().
 */
export async function deleteLocalData(dbName = 'zync'): Promise<void> {
  if (inUse.get(dbName)) throw new ZyncError('BAD_REQUEST', `[zync] deleteLocalData: stores of this page still use "${dbName}"; await store.sync.destroy() on each first`)
  const ls = localStore()
  // Collected first: removing shifts the indexes key() reads.
  const keys: string[] = []
  for (let i = 0; ls && i < ls.length; i++) keys.push(ls.key(i)!)
  for (const k of keys) if (k.startsWith(`zync:spill:${dbName}:`) || k.startsWith(`zync:tail:${dbName}:`)) ls!.removeItem(k)
  await Dexie.delete(dbName)
}

/** The tabs (stores) alive: a heartbeat since `staleBefore`, and where Web Locks exist, the tab's lock held. */
function liveOwners(beats: Beat[], staleBefore: number, liveByLock: Set<string> | undefined): Set<string> {
  const alive = new Set(beats.filter((b) => b.by === undefined && b.at >= staleBefore).map((b) => b.owner))
  if (liveByLock) {
    // Web Locks know exactly which tabs are alive (a closed tab releases its lock at once).
    for (const o of [...alive]) if (!liveByLock.has(o)) alive.delete(o)
  }
  return alive
}

/**
 * Inside a readwrite transaction over outbox and tabs: gives `owner` the rows of every writer whose
 * holder is no longer alive, by writing one claim per writer (no row is rewritten). Returns those
 * writers and who holds each writer's rows now.
 */
async function claimOrphans(db: ZyncDb, doc: string, owner: string, staleBefore: number, liveByLock: Set<string> | undefined) {
  const beats = await db.tabs.where('doc').equals(doc).toArray()
  const alive = liveOwners(beats, staleBefore, liveByLock)
  alive.add(owner)
  const before = ownerOf(beats)
  // The writers of the doc's rows, from the [doc+owner] index alone: no row is read for this.
  const keys = (await db.outbox.where('[doc+owner]').between([doc, Dexie.minKey], [doc, Dexie.maxKey]).uniqueKeys()) as unknown as Array<[string, string]>
  const writers = new Set(keys.map((k) => k[1]))
  const orphaned = [...writers].filter((o) => !alive.has(before(o)))
  const orphans = new Set(orphaned)
  // One claim per writer, pointing straight at this tab. Claims whose writer has no rows left go, and
  // so does a dead tab's claim on rows this tab's id wrote (a client id used again) as it takes them back.
  const drop = beats.filter((b) => b.by !== undefined && (!writers.has(b.owner) || (b.owner === owner && orphans.has(owner))))
  if (drop.length > 0) await db.tabs.bulkDelete(drop.map((b) => b.key))
  const claims = orphaned.filter((o) => o !== owner).map((o): Beat => ({ key: claimKey(doc, o), doc, owner: o, at: 0, by: owner }))
  if (claims.length > 0) await db.tabs.bulkPut(claims)
  return { orphaned, holder: (o: string) => (orphans.has(o) ? owner : before(o)) }
}

function spillKeys(ls: Storage, prefix: string): string[] {
  const keys: string[] = []
  for (let i = 0; i < ls.length; i++) {
    const k = ls.key(i)
    if (k?.startsWith(prefix)) keys.push(k)
  }
  return keys
}

/** The rows and conflicts of `doc` in one spill key (none from a torn write; an array is rows alone). */
function readSpill(ls: Storage, key: string, doc: string): { rows: OutboxRow[]; conflicts: StoredConflict[] } {
  try {
    const parsed = JSON.parse(ls.getItem(key) ?? '[]') as OutboxRow[] | { rows?: unknown; conflicts?: unknown }
    const rows = Array.isArray(parsed) ? parsed : Array.isArray(parsed?.rows) ? (parsed.rows as OutboxRow[]) : []
    const conflicts = !Array.isArray(parsed) && Array.isArray(parsed?.conflicts) ? (parsed.conflicts as StoredConflict[]) : []
    return { rows: rows.filter((r) => r && typeof r.id === 'string' && r.doc === doc && r.op), conflicts: conflicts.filter((c) => c && typeof c.id === 'string' && c.doc === doc && typeof c.localMeta?.time === 'number') }
  } catch {
    return { rows: [], conflicts: [] } // a torn write: nothing usable in it
  }
}

/** A saved tail (see spillTail), or undefined from a torn write; its changes are checked by the engine. */
function readTail(json: string | null): SpilledTail | undefined {
  try {
    const t = JSON.parse(json ?? 'null') as { changes?: unknown; to?: unknown } | null
    if (!Array.isArray(t?.changes) || t.changes.length === 0) return undefined
    return { changes: t.changes as Change[], ...(typeof t.to === 'string' ? { to: t.to } : {}) }
  } catch {
    return undefined
  }
}

/**
 * Inside a readwrite transaction over conflicts and meta: puts spilled conflicts. One not stored goes in
 * unless it was resolved since (the document's resolved ids); one stored takes the spill's local side
 * when that is newer (the author's writes held in it), keeping what another tab stored of the rest.
 */
async function putSpilledConflicts(db: ZyncDb, doc: string, conflicts: StoredConflict[]): Promise<void> {
  if (conflicts.length === 0) return
  const resolved = new Set((await db.meta.get(doc))?.resolved ?? [])
  const stored = await db.conflicts.bulkGet(conflicts.map((c) => c.id))
  const put = conflicts.flatMap((c, i) => {
    const was = stored[i]
    if (!was) return resolved.has(c.id) ? [] : [c]
    return c.localMeta.time > was.localMeta.time ? [{ ...was, local: c.local, localMeta: c.localMeta }] : []
  })
  if (put.length > 0) await db.conflicts.bulkPut(put)
}

/**
 * Whether a spilled row takes the place of its stored copy. A row stored already is replaced by a newer
 * version (an edit folded in after its last IndexedDB write: its op's counter is higher) while its
 * writer still owns it; one another tab has written since is kept as that tab has it, and so is a stored
 * version newer than the spill (a write that landed after pagehide: replaced, a counter lost the
 * increment made in between). A row not stored goes in (one settled since would only be sent again: the
 * server drops a known op id).
 */
function spillWins(spilled: OutboxRow, stored: OutboxRow | undefined): boolean {
  return stored === undefined || (stored.owner === spilled.owner && spilled.op.n > stored.op.n)
}

/** Inside a readwrite transaction over the outbox: puts the spilled rows that win (spillWins); returns them. */
async function putSpilled(db: ZyncDb, rows: OutboxRow[]): Promise<OutboxRow[]> {
  if (rows.length === 0) return []
  const stored = await db.outbox.bulkGet(rows.map((r) => r.id))
  const put = rows.filter((r, i) => spillWins(r, stored[i]))
  if (put.length > 0) await db.outbox.bulkPut(put)
  return put
}

function localStore(): Storage | undefined {
  try {
    const ls = (globalThis as { localStorage?: Storage }).localStorage
    return ls ?? undefined
  } catch {
    return undefined // access denied (sandboxed frames, some privacy modes)
  }
}

// ---- Web Locks liveness ------------------------------------------------------------------------

type Locks = {
  request(name: string, opts: { mode: 'exclusive' }, cb: () => Promise<void>): Promise<void>
  query(): Promise<{ held?: Array<{ name?: string }> }>
}

const releasers = new Map<string, () => void>()

function locks(): Locks | undefined {
  const nav = (globalThis as { navigator?: { locks?: Locks } }).navigator
  return nav?.locks
}

/** Holds a Web Lock named after the tab for its lifetime, so others can tell it is alive. */
export function holdTabLock(doc: string, owner: string): void {
  const l = locks()
  if (!l) return
  const name = `zync:tab:${doc}:${owner}`
  if (releasers.has(name)) return
  void l.request(name, { mode: 'exclusive' }, () => new Promise<void>((resolve) => releasers.set(name, resolve)))
}

function releaseTabLock(doc: string, owner: string): void {
  const name = `zync:tab:${doc}:${owner}`
  releasers.get(name)?.()
  releasers.delete(name)
}

async function liveOwnersByLocks(doc: string): Promise<Set<string> | undefined> {
  const l = locks()
  if (!l) return undefined
  try {
    const q = await l.query()
    const prefix = `zync:tab:${doc}:`
    return new Set((q.held ?? []).map((h) => h.name ?? '').filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)))
  } catch {
    return undefined
  }
}
