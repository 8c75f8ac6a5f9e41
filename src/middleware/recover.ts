/**
 * Delivery of edits whose store is gone. A store destroyed (a board left in a multi-document app) or a
 * page closed before its edits were sent leaves them in the device's IndexedDB outbox under another
 * document. Nothing would send them until that document is opened again, maybe never. So a store that
 * comes online looks for such documents (`OutboxStorage.orphanedDocs`) and delivers each through a
 * short-lived engine of its own: it adopts the rows (as a tab adopts a closed tab's), joins the
 * document, sends them, and stops when they are acknowledged, refused for good, or after
 * RECOVERY_MS. Conflicts the server raises for them are stored as the document's (its inbox shows them
 * when it is opened); refused rows stay as its dead letters.
 */
import type { SyncEngine } from '../core/engine'
import { isRefusal } from '../core/errors'
import type { OutboxStorage } from '../core/storage'

/** How long one document's delivery may take before the next is tried (the rows stay, for next time). */
const RECOVERY_MS = 60_000

/** One recovery at a time per page (a scan, then one document after the other). */
let running: Promise<void> | undefined
/** Documents being delivered in this page, by database: never two engines for one. */
const delivering = new Map<unknown, Set<string>>()

export interface RecoveryContext {
  /** The database's name (or the storage object the app passed): documents are told apart per database. */
  key: unknown
  storage: OutboxStorage
  /** The document of the store that asks (its rows are its own). */
  except: string
  /** The server this store syncs with: only edits made for it are delivered. */
  endpoint: string | undefined
  /** A row's holder is alive while its heartbeat is younger than this (ms). */
  tabTimeout: number
  /** An engine for another document, on this store's server and identity, showing nothing. */
  make: (doc: string) => SyncEngine
}

/** Asked while a recovery ran: it scans again when done (a store destroyed meanwhile left rows). */
let again: RecoveryContext | undefined

/** Stores that are online, each able to run a recovery: a store destroyed with edits left asks one. */
const online = new Set<() => void>()

/** While online, `recover` may be asked to deliver what a destroyed store left. Returns the unregistration. */
export function whileOnline(recover: () => void): () => void {
  online.add(recover)
  return () => online.delete(recover)
}

/** A store was destroyed with edits unsent: one online store of the page delivers them now. */
export function orphansLeft(): void {
  for (const recover of online) return recover()
}

/** Starts delivering other documents' orphaned edits in the background (after the one under way, if any). */
export function recoverOrphans(ctx: RecoveryContext): Promise<void> | undefined {
  if (!ctx.storage.orphanedDocs) return undefined
  if (running) {
    again = ctx
    return running
  }
  const task = (async () => {
    const docs = await ctx.storage.orphanedDocs!(ctx.except, Date.now() - ctx.tabTimeout, ctx.endpoint)
    for (const doc of docs) {
      const mine = delivering.get(ctx.key) ?? delivering.set(ctx.key, new Set()).get(ctx.key)!
      if (mine.has(doc)) continue
      mine.add(doc)
      const engine = ctx.make(doc)
      try {
        await deliver(engine)
      } finally {
        await engine.destroy().catch(() => {})
        mine.delete(doc)
      }
    }
  })()
    .catch(() => {})
    .finally(() => {
      running = undefined
      const next = again
      again = undefined
      if (next) void recoverOrphans(next)
    })
  running = task
  return task
}

/** Until every row is acknowledged (or dead-lettered), the server refuses for good, or RECOVERY_MS. */
async function deliver(engine: SyncEngine): Promise<void> {
  await engine.ready
  await new Promise<void>((resolve) => {
    let unsubscribe = () => {}
    const done = () => {
      clearTimeout(timer)
      unsubscribe()
      resolve()
    }
    const timer = setTimeout(done, RECOVERY_MS)
    ;(timer as { unref?: () => void }).unref?.()
    unsubscribe = engine.subscribe((s) => {
      if (isRefusal(s)) done()
    })
    engine.flush().then(done, done)
  })
}
