/**
 * A simulated device (a browser profile) and its user: what it edits, how it settles its conflicts,
 * what it records for the checks in sim.ts. Its storage survives reloads; each reload is a new engine
 * with a new client id, as the zustand middleware does by default.
 */
import { SyncEngine, type EngineHost } from '../../src/core/engine'
import type { ZyncError } from '../../src/core/errors'
import { getAt, setAt } from '../../src/core/patch'
import type { Path } from '../../src/core/path'
import { PolicyTable, type ConflictResolver, type ConflictsConfig } from '../../src/core/policies'
import type { Conflict, Priority } from '../../src/core/types'
import { MemoryOutboxStorage } from '../../src/adapters/memory-storage'
import type { FieldKind } from './model'
import { SimTransport, type SimNetwork } from './network'
import type { Rng, VirtualScheduler } from './scheduler'

/** What a device needs from the simulation around it. */
export interface DeviceWorld {
  readonly sched: VirtualScheduler
  readonly net: SimNetwork
  readonly healing: boolean
  readonly failures: Map<string, number>
  readonly stats: { reloads: number; resolvedByUser: number }
  trace(msg: string): void
}

export const DOC = 'sim'
export const ID_KEY = 'id'
export const MAX_DRIFT = 60_000
const FIELDS = ['title', 'votes', 'tags', 'note', 'body', 'owner', 'status', 'items', 'links', 'steps', 'meta'] as const
export type Field = (typeof FIELDS)[number]
const WEIGHTS: Record<Field, number> = { title: 3, votes: 2, tags: 2, note: 2, body: 1, owner: 1, status: 1, items: 3, links: 1, steps: 2, meta: 2 }
export const KIND: Record<Field, FieldKind> = {
  title: 'lww',
  votes: 'counter',
  tags: 'set',
  note: 'manual',
  body: 'custom',
  owner: 'local',
  status: 'remote',
  items: 'ids',
  links: 'ids:remote',
  steps: 'ids:manual',
  meta: 'obj',
}
const TAGS = ['red', 'green', 'blue', 'urgent', 'later', 'bug']
/** A record that is deleted and re-created during the run (the r* records always exist). */
export const VOLATILE = 'volatile'
/** Prefix of short-lived records: created, edited, deleted for good. */
export const TEMPORARY = 'tmp-'

export function newRecord(title: string): Record<string, unknown> {
  return { title, votes: 0, tags: [], note: '', body: 0, owner: '', status: 'todo', items: [], links: [], steps: [], meta: {} }
}

/** The app rule for 'body': the larger number wins (deterministic on every device). */
export const keepLarger: ConflictResolver = ({ local, remote }) => Math.max(typeof local === 'number' ? local : 0, typeof remote === 'number' ? remote : 0)

export const SIM_CONFLICTS: ConflictsConfig = {
  default: 'lww',
  idKey: ID_KEY,
  paths: {
    'cards.*.votes': 'counter',
    'cards.*.tags': 'set',
    'cards.*.note': 'manual',
    'cards.*.body': keepLarger,
    'cards.*.owner': 'local',
    'cards.*.status': 'remote',
    'cards.*.links': 'remote',
    'cards.*.steps': 'manual',
  },
}

function weighted(rng: Rng): Field {
  let total = 0
  for (const f of FIELDS) total += WEIGHTS[f]
  let x = rng.next() * total
  for (const f of FIELDS) {
    x -= WEIGHTS[f]
    if (x < 0) return f
  }
  return 'title'
}

class FlakyStorage extends MemoryOutboxStorage {
  constructor(private readonly fails: () => boolean) {
    super()
  }

  override async write(batch: Parameters<MemoryOutboxStorage['write']>[0]): Promise<void> {
    if (this.fails()) throw new DOMException('simulated: the quota has been exceeded', 'QuotaExceededError')
    return super.write(batch)
  }
}

/** Per device (by index): the default batch size, or a few ops per batch. */
const BATCH_SIZES: ReadonlyArray<number | undefined> = [undefined, 1, 2, 3, undefined, 7, 1, 2]
const LANES: readonly Priority[] = ['critical', 'high', 'medium', 'low']
/** A lane per record and field, so one record's ops can sit in different lanes. */
const laneOf = ({ path }: { path: Path }): Priority => LANES[(String(path[1] ?? '').length * 7 + String(path[2] ?? '').length) % LANES.length]!

/** One browser profile: its storage survives reloads, each reload is a new engine and client id. */
export class Device {
  engine!: SyncEngine
  transport!: SimTransport
  state: Record<string, unknown> = { cards: {} }
  /**
   * The profile's IndexedDB stand-in. In stormy weather a write fails now and then (as a full disk or a
   * quota would), at the rate the server refuses batches: nothing of it is stored, the engine keeps
   * the rows in memory and retries.
   */
  readonly storage: MemoryOutboxStorage = new FlakyStorage(() => {
    const rate = this.sim.net.weather.refuse
    return rate > 0 && this.rng.chance(rate)
  })
  readonly clientIds: string[] = []
  /** Conflict id → times 'sync:conflict' fired on this device. */
  readonly raised = new Map<string, number>()
  /** Conflict id → times the app function ran for it here. */
  readonly resolverRuns = new Map<string, number>()
  /** Conflicts this device's user settled through resolve(). */
  readonly userResolved = new Set<string>()
  /** Every op id this device queued. */
  readonly queued = new Set<string>()
  /** Op ids this device dropped before sending (sync:cancelled): none may reach the log. */
  readonly cancelled = new Set<string>()
  readonly acked = new Set<string>()
  readonly errors: string[] = []
  reloading = false
  offline = false
  offset = 0
  private edits = 0
  private incarnation = 0

  constructor(
    readonly index: number,
    readonly user: string,
    readonly rng: Rng,
    private readonly sim: DeviceWorld,
  ) {}

  get clientId(): string {
    return this.clientIds[this.clientIds.length - 1]!
  }

  start(): void {
    const clientId = `d${this.index}${this.incarnation > 0 ? `r${this.incarnation}` : ''}`
    this.incarnation++
    this.clientIds.push(clientId)
    this.state = { cards: {} }
    const host: EngineHost = {
      read: () => this.state,
      apply: (patches) => {
        let next = this.state
        for (const p of patches) next = setAt(next, p.path, p.value, p.remove === true)
        this.state = next
      },
    }
    this.transport = new SimTransport(clientId, this.user, this.sim.net, `d${this.index}`)
    const engine = new SyncEngine({
      doc: DOC,
      clientId,
      user: { id: this.user },
      transport: this.transport,
      storage: this.storage,
      policies: new PolicyTable(SIM_CONFLICTS),
      host,
      now: () => this.sim.sched.now + this.offset,
      monotonic: () => this.sim.sched.now,
      random: this.rng.next,
      crossTab: false,
      watchNetwork: false,
      autoConnect: !this.offline,
      presence: { ttl: 3_600_000 },
      // Small batches and mixed lanes on some devices: the pump's choice of rows (lanes first, each
      // record's ops in order, a batch taken before the whole outbox is walked) under every fault.
      ...(BATCH_SIZES[this.index % BATCH_SIZES.length] !== undefined ? { batchSize: BATCH_SIZES[this.index % BATCH_SIZES.length]! } : {}),
      ...(this.index % 2 === 1 ? { priority: laneOf } : {}),
      onWarning: (m) => this.errors.push(`warning: ${m}`),
    })
    this.engine = engine
    engine.events.on('sync:queued', ({ ops }) => {
      for (const op of ops) this.queued.add(op.id)
    })
    // An edit put back to the server's value while it waited is dropped, never sent (undone rows).
    engine.events.on('sync:cancelled', ({ ids }) => {
      for (const id of ids) {
        this.queued.delete(id)
        this.cancelled.add(id)
      }
    })
    engine.events.on('sync:acked', ({ ids }) => {
      for (const id of ids) this.acked.add(id)
    })
    engine.events.on('sync:conflict', ({ conflict }) => {
      this.raised.set(conflict.id, (this.raised.get(conflict.id) ?? 0) + 1)
      this.sim.trace(`${clientId} conflict ${conflict.id} at ${conflict.path.join('.')}`)
      this.scheduleResolve(conflict.id)
    })
    engine.events.on('sync:resolved', ({ conflict, resolution }) => {
      if (conflict.policy === 'custom' && typeof resolution === 'object') this.resolverRuns.set(conflict.id, (this.resolverRuns.get(conflict.id) ?? 0) + 1)
    })
    engine.events.on('sync:failed', ({ error }) => {
      const f = this.sim.failures
      f.set(error.code, (f.get(error.code) ?? 0) + 1)
    })
    engine.events.on('sync:dead-letter', ({ deadLetter }) => this.errors.push(`dead letter ${deadLetter.id}: ${deadLetter.error.code} ${deadLetter.error.message}`))
    void engine.ready.then(() => {
      // Conflicts loaded from storage after a reload still need their user.
      for (const c of engine.conflicts()) this.scheduleResolve(c.id)
    })
  }

  async reload(): Promise<void> {
    if (this.reloading) return
    this.reloading = true
    this.sim.stats.reloads++
    const old = this.engine
    this.sim.trace(`${this.clientId} reloads`)
    await old.destroy()
    this.start()
    await this.engine.ready
    this.reloading = false
  }

  /** The simulated user looks at the inbox a little later and decides. */
  scheduleResolve(id: string): void {
    const delay = this.sim.healing ? this.rng.int(1, 200) : this.rng.int(50, 8000)
    this.sim.sched.after(delay, () => this.resolve(id))
  }

  private resolve(id: string): void {
    if (this.reloading) {
      this.sim.sched.after(100, () => this.resolve(id))
      return
    }
    const engine = this.engine
    const c = engine.conflicts().find((x: Conflict) => x.id === id)
    if (!c) return
    const roll = this.rng.next()
    const mine = roll < 0.35 ? 'local' : roll < 0.7 ? 'remote' : undefined
    const resolution = mine ?? { value: Array.isArray(c.local) || Array.isArray(c.remote) ? unionById(c.remote, c.local) : `${this.clientId}:settled:${++this.edits}` }
    this.userResolved.add(id)
    this.sim.stats.resolvedByUser++
    engine.resolve(id, resolution).catch((err: ZyncError) => this.errors.push(`resolve(${id}) failed: ${err.code} ${err.message}`))
  }

  /** One local edit of a random field of a random record, as an app would make it (immutably). */
  edit(): boolean {
    if (this.reloading) return false
    const cards = (this.state.cards ?? {}) as Record<string, Record<string, unknown>>
    const roll = this.rng.next()
    const temporary = Object.keys(cards).filter((id) => id.startsWith(TEMPORARY)).sort()
    if (roll < 0.03 && (roll < 0.02 || temporary.length > 0)) {
      // Record-level writes racing with field writes: the volatile record is deleted or created anew;
      // a short-lived record is created, or one is deleted for good (nothing touches it afterwards).
      let next: Record<string, unknown>
      if (roll < 0.01) {
        const { [VOLATILE]: old, ...rest } = cards
        next = old ? rest : { ...cards, [VOLATILE]: newRecord(`${this.clientId}:${++this.edits}`) }
      } else if (roll < 0.02) next = { ...cards, [`${TEMPORARY}${this.clientId}-${++this.edits}`]: newRecord('short-lived') }
      else {
        const { [this.rng.pick(temporary)]: _gone, ...rest } = cards
        next = rest
      }
      this.state = { ...this.state, cards: next }
      this.engine.notifyLocalChange()
      return true
    }
    if (roll >= 0.03 && roll < 0.05) return this.editLists()
    const ids = Object.keys(cards)
    if (ids.length === 0) return false
    const rec = this.rng.pick(ids.sort())
    const field = weighted(this.rng)
    const path: Path = ['cards', rec, field]
    const cur = getAt(this.state, path)
    const k = ++this.edits
    const tag = `${this.clientId}:${k}`
    let next: unknown
    switch (field) {
      case 'title':
      case 'note':
      case 'owner':
        next = tag
        break
      case 'status':
        next = `${this.rng.pick(['todo', 'doing', 'done'])}:${tag}`
        break
      case 'body':
        next = this.rng.int(0, 10_000)
        break
      case 'votes':
        next = (typeof cur === 'number' ? cur : 0) + this.rng.pick([1, 1, 2, 3, -1, -2])
        break
      case 'tags': {
        const set = Array.isArray(cur) ? (cur as string[]) : []
        const t = this.rng.pick(TAGS)
        next = set.includes(t) ? set.filter((x) => x !== t) : [...set, t]
        break
      }
      case 'meta': {
        // An object below the field: set or drop one of a few keys (concurrent edits merge by key).
        const obj = cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>) : {}
        const key = this.rng.pick(['a', 'b', 'c', 'd'])
        // Sometimes the whole field goes, so that devices also create it again (an add, base {}).
        if (cur !== undefined && Object.keys(obj).length <= 1 && this.rng.next() < 0.2) next = undefined
        else if (key in obj && this.rng.next() < 0.25) {
          const { [key]: _dropped, ...rest } = obj
          next = rest
        } else next = { ...obj, [key]: tag }
        break
      }
      case 'items':
      case 'links':
      case 'steps': {
        const items = Array.isArray(cur) ? (cur as Array<{ id: string; text: string }>) : []
        const roll = this.rng.next()
        if (items.length === 0 || roll < 0.35) {
          const at = this.rng.int(0, items.length)
          next = [...items.slice(0, at), { id: `i.${tag}`, text: tag }, ...items.slice(at)]
        } else if (roll < 0.6) {
          const at = this.rng.int(0, items.length - 1)
          next = items.map((x, i) => (i === at ? { ...x, text: tag } : x))
        } else if (roll < 0.8) {
          // Move one element (drag and drop).
          const from = this.rng.int(0, items.length - 1)
          const rest = items.filter((_, i) => i !== from)
          const to = this.rng.int(0, rest.length)
          next = [...rest.slice(0, to), items[from]!, ...rest.slice(to)]
        } else {
          const at = this.rng.int(0, items.length - 1)
          next = items.filter((_, i) => i !== at)
        }
        break
      }
    }
    this.state = setAt(this.state, path, next, next === undefined)
    this.engine.notifyLocalChange()
    return true
  }

  /**
   * The `lists` collection, written whole now and then (created as one object, dropped, switched to a
   * string and back) while other devices add records to it and edit their fields: whole top-level-key
   * writes racing with writes inside the records under the key.
   */
  private editLists(): boolean {
    const lists = this.state.lists
    const tag = `${this.clientId}:${++this.edits}`
    const roll = this.rng.next()
    const isObject = lists !== null && typeof lists === 'object' && !Array.isArray(lists)
    if (!isObject) {
      this.state = { ...this.state, lists: { [`l${this.rng.int(0, 2)}`]: { name: tag, n: 0 } } }
    } else if (roll < 0.15) {
      const { lists: _dropped, ...rest } = this.state
      this.state = rest
    } else if (roll < 0.25) {
      this.state = { ...this.state, lists: 'archived' }
    } else {
      const records = lists as Record<string, Record<string, unknown>>
      const ids = Object.keys(records).sort()
      const id = roll < 0.45 || ids.length === 0 ? `l${this.rng.int(0, 3)}` : this.rng.pick(ids)
      const path: Path = records[id] ? ['lists', id, this.rng.next() < 0.5 ? 'name' : 'n'] : ['lists', id]
      const value = path.length === 2 ? { name: tag, n: 0 } : path[2] === 'name' ? tag : this.rng.int(0, 1000)
      this.state = setAt(this.state, path, value, false)
    }
    this.engine.notifyLocalChange()
    return true
  }

  /** Settled: connected, nothing pending or open, and at the server's seq. */
  settled(serverSeq: number): boolean {
    if (this.reloading) return false
    const s = this.engine.status()
    return s.ready && s.connection === 'online' && s.pending === 0 && s.unpersisted === 0 && s.conflicts === 0 && !s.syncing && s.seq === serverSeq
  }
}

/** A user's merge of two id-keyed arrays: theirs, then what only mine has. */
function unionById(remote: unknown, local: unknown): unknown[] {
  const r = Array.isArray(remote) ? (remote as Array<{ id: string }>) : []
  const l = Array.isArray(local) ? (local as Array<{ id: string }>) : []
  const have = new Set(r.map((x) => x.id))
  return [...r, ...l.filter((x) => !have.has(x.id))]
}
