// An in-memory SyncApi for stories and React tests: deterministic states, no engine, no network.
import { ZyncError } from '../src/core/errors'
import type {
  Conflict,
  PendingOperation,
  Presence,
  Resolution,
  SyncApi,
  SyncEventName,
  SyncEvents,
  SyncStatus,
} from '../src/core/types'

export interface FixtureOptions {
  /** Overrides of the status; `pending` and `conflicts` follow the lists unless given here. */
  status?: Partial<SyncStatus>
  conflicts?: Conflict[]
  presence?: Presence[]
  /** The outbox, or how many generic ops to put in it. */
  pending?: PendingOperation[] | number
  /** Milliseconds `resolve()` waits before settling. Default 0 (settles synchronously). */
  resolveDelay?: number
}

export interface FixtureStore {
  sync: SyncApi
  /** Every `resolve()` call, in order. */
  resolutions: Array<{ id: string; resolution: Resolution }>
  setStatus(patch: Partial<SyncStatus>): void
  setConflicts(conflicts: Conflict[]): void
  setPresence(peers: Presence[]): void
  setPending(pending: PendingOperation[] | number): void
  /** Back to the options it was created with (stories call it before each render). */
  reset(): void
  /** Fires a `store.sync.on(...)` event. */
  emit<K extends SyncEventName>(event: K, payload: SyncEvents[K]): void
}

const T0 = Date.UTC(2025, 0, 15, 9, 30)

export function makeOps(n: number): PendingOperation[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `op-${i + 1}`,
    path: ['todos', `t${i + 1}`, 'title'],
    op: 'replace' as const,
    value: `Task ${i + 1}`,
    priority: 'medium' as const,
    createdAt: T0 + i * 1000,
    attempts: 0,
    persisted: true,
    inFlight: false,
  }))
}

let conflictSeq = 0
export function makeConflict(p: Partial<Conflict> & Pick<Conflict, 'base' | 'local' | 'remote'>): Conflict {
  const entity = p.entity ?? 'docs/welcome'
  const field = p.field ?? 'title'
  return {
    id: p.id ?? `c${++conflictSeq}`,
    path: p.path ?? [...entity.split('/'), field],
    entity,
    field,
    localMeta: { clientId: 'me', userId: 'u1', time: T0 + 60_000 },
    // Ben Carter of makePeers: a store with conflicts has him present (createFixtureStore), so the modal names him.
    remoteMeta: { clientId: 'peer', userId: 'u2', time: T0 + 30_000 },
    policy: 'manual',
    createdAt: T0 + 90_000,
    ...p,
  }
}

const PEOPLE = [
  ['Ana Souza', '#4f46e5'],
  ['Ben Carter', '#0f766e'],
  ['Chloé Martin', '#be185d'],
  ['Dmitri Ivanov', '#f59e0b'],
  ['Eun-ji Park', '#7c3aed'],
  ['Farah Khan', '#15803d'],
  ['Gabriel Silva', '#b45309'],
  ['Hana Sato', '#0369a1'],
  ['Ivan Petrov', '#e11d48'],
  ['Jade Wilson', '#38bdf8'],
  ['Kofi Mensah', '#4d7c0f'],
  ['Lea Müller', '#c026d3'],
] as const

/** `n` peers; the first is this client when `withSelf`. `focus` puts every other peer on one field. */
export function makePeers(
  n: number,
  opts: { withSelf?: boolean; focus?: { entityId: string; field: string } } = {},
): Presence[] {
  return Array.from({ length: n }, (_, i) => {
    const [name, color] = PEOPLE[i % PEOPLE.length]!
    const self = !!opts.withSelf && i === 0
    return {
      clientId: `client-${i + 1}`,
      user: { id: `u${i + 1}`, name, color },
      state: opts.focus && !self ? { focus: opts.focus } : {},
      updatedAt: T0,
      self,
    }
  })
}

export const sampleError = new ZyncError('DISCONNECTED', '[zync] cannot reach the sync server; retrying in 8 s', {
  retryable: true,
})

/** An error the user should know of while connected: this device's storage is full. */
export const storageError = new ZyncError('STORAGE_FULL', '[zync] local storage failed: the browser’s storage for this site is full')

/** An in-memory object implementing SyncApi for deterministic visual and behavioural states. */
let fixtureSeq = 0
export function createFixtureStore(opts: FixtureOptions = {}): FixtureStore {
  let conflicts = opts.conflicts ?? []
  let peers = opts.presence ?? (opts.conflicts?.length ? makePeers(2, { withSelf: true }) : [])
  let pending = typeof opts.pending === 'number' ? makeOps(opts.pending) : (opts.pending ?? [])
  const overrides: Partial<SyncStatus> = { ...opts.status }
  const statusListeners = new Set<(s: SyncStatus) => void>()
  const presenceListeners = new Set<(p: Presence[]) => void>()
  const events = new Map<string, Set<(payload: never) => void>>()

  const build = (): SyncStatus => ({
    connection: 'online',
    unpersisted: 0,
    lanes: { critical: 0, high: 0, medium: pending.length, low: 0 },
    deadLetters: 0,
    syncing: false,
    ready: true,
    readOnly: false,
    attempts: 0,
    seq: 42,
    lastSyncedAt: T0,
    ...overrides,
    pending: overrides.pending ?? pending.length,
    conflicts: conflicts.length,
  })
  let status = build()
  const notify = () => {
    status = build()
    for (const l of [...statusListeners]) l(status)
  }
  const emit = (event: string, payload: unknown) => {
    for (const fn of [...(events.get(event) ?? [])]) (fn as (p: unknown) => void)(payload)
    for (const fn of [...(events.get('*') ?? [])]) (fn as (p: unknown) => void)({ type: event, ...(payload as object) })
  }
  // As the engine does: subscribePresence's listeners, and the 'presence:change' event.
  const notifyPresence = () => {
    for (const l of [...presenceListeners]) l(peers)
    emit('presence:change', { peers })
  }

  const fixture: FixtureStore = {
    resolutions: [],
    reset() {
      conflicts = opts.conflicts ?? []
      peers = opts.presence ?? (opts.conflicts?.length ? makePeers(2, { withSelf: true }) : [])
      pending = typeof opts.pending === 'number' ? makeOps(opts.pending) : (opts.pending ?? [])
      for (const k of Object.keys(overrides) as Array<keyof SyncStatus>) delete overrides[k]
      Object.assign(overrides, opts.status)
      fixture.resolutions.length = 0
      // A new document each time: what one story put off ("Decide later", Dismiss) shows in the next.
      Object.assign(fixture.sync, { name: `fixture-${++fixtureSeq}` })
      notify()
      notifyPresence()
    },
    setStatus(patch) {
      Object.assign(overrides, patch)
      for (const k of Object.keys(patch) as Array<keyof SyncStatus>) if (patch[k] === undefined) delete overrides[k]
      notify()
    },
    setConflicts(next) {
      conflicts = next
      notify()
    },
    setPresence(next) {
      peers = next
      notifyPresence()
    },
    setPending(next) {
      pending = typeof next === 'number' ? makeOps(next) : next
      notify()
    },
    emit: emit as FixtureStore['emit'],
    sync: {
      ready: Promise.resolve(),
      // A document of its own: conflicts put off in one fixture's dialog stay shown in every other's.
      name: `fixture-${++fixtureSeq}`,
      clientId: 'client-1',
      status: () => status,
      subscribe(l) {
        statusListeners.add(l)
        return () => statusListeners.delete(l)
      },
      on(event: string, fn: (payload: never) => void) {
        const set = events.get(event) ?? new Set()
        events.set(event, set)
        set.add(fn)
        return () => set.delete(fn)
      },
      flush: async () => {},
      pendingOperations: () => pending,
      isDirty: () => pending.length > 0 || (overrides.pending ?? 0) > 0,
      conflicts: () => conflicts,
      async resolve(id, resolution) {
        if (opts.resolveDelay) await new Promise((r) => setTimeout(r, opts.resolveDelay))
        const conflict = conflicts.find((c) => c.id === id)
        if (!conflict) throw new ZyncError('CONFLICT_NOT_FOUND', `[zync] no open conflict ${id}`)
        fixture.resolutions.push({ id, resolution })
        conflicts = conflicts.filter((c) => c !== conflict)
        notify()
        const value =
          resolution === 'local' ? conflict.local : resolution === 'remote' ? conflict.remote : resolution.value
        emit('sync:resolved', { conflict, resolution, value })
      },
      history: async () => [],
      deadLetters: () => [],
      retry: async () => {},
      discard: async () => {},
      withPriority: (_p, fn) => fn(),
      presence: () => peers,
      setPresence(state) {
        const i = peers.findIndex((p) => p.self)
        const mine: Presence = {
          clientId: 'client-1',
          user: { id: 'me', name: 'Me' },
          ...peers[i],
          state: state ?? {},
          updatedAt: Date.now(),
          self: true,
        }
        peers = state === null ? peers.filter((p) => !p.self) : i < 0 ? [mine, ...peers] : peers.with(i, mine)
        notifyPresence()
      },
      subscribePresence(l) {
        presenceListeners.add(l)
        return () => presenceListeners.delete(l)
      },
      connect: () => fixture.setStatus({ connection: 'online' }),
      disconnect: () => fixture.setStatus({ connection: 'offline' }),
      destroy: async () => {
        statusListeners.clear()
        presenceListeners.clear()
        events.clear()
      },
    } as SyncApi,
  }
  return fixture
}

/** A story `beforeEach`: puts the story's fixture store back to its initial state, so replays start fresh. */
export function resetStore({ args }: { args: { store?: unknown } }): void {
  const store = args.store as Partial<FixtureStore> | undefined
  store?.reset?.()
}

/** Conflict sets the stories and tests share. */
export const samples = {
  oneField: (): Conflict[] => [
    makeConflict({
      id: 'title',
      entity: 'docs/q3-plan',
      field: 'title',
      base: 'Quarterly planning notes',
      local: 'Q3 planning notes (draft)',
      remote: 'Quarterly planning notes, final version',
    }),
  ],
  manyFields: (): Conflict[] => [
    makeConflict({ id: 'mf-title', entity: 'tasks/42', field: 'title', base: 'Ship the beta', local: 'Ship the public beta', remote: 'Ship the beta on Friday' }),
    makeConflict({ id: 'mf-status', entity: 'tasks/42', field: 'status', base: 'todo', local: 'in-progress', remote: 'blocked' }),
    makeConflict({ id: 'mf-estimate', entity: 'tasks/42', field: 'estimate', base: 3, local: 5, remote: 8 }),
    makeConflict({ id: 'mf-done', entity: 'tasks/42', field: 'done', base: null, local: true, remote: false }),
  ],
  longText: (): Conflict[] => [
    makeConflict({
      id: 'long',
      entity: 'docs/onboarding',
      field: 'body',
      base:
        'Welcome to the team! During your first week you will meet your buddy, set up your laptop and read the engineering handbook. ' +
        'On Wednesday there is a short walkthrough of the architecture, followed by lunch with the platform group. ' +
        'By Friday you should have shipped a small change to production, with help from your buddy if needed.',
      local:
        'Welcome to the team! During your first week you will meet your onboarding buddy, set up your laptop and skim the engineering handbook. ' +
        'On Wednesday there is a short walkthrough of the architecture, followed by lunch with the platform group. ' +
        'By Friday you should have shipped a small change to production, with help from your buddy if needed.',
      remote:
        'Welcome to the team! During your first week you will meet your buddy, set up your laptop and read the engineering handbook. ' +
        'On Thursday there is a long walkthrough of the architecture and the data model, followed by lunch with the platform group. ' +
        'By Friday you should have shipped a small change to production.',
    }),
  ],
  nestedObject: (): Conflict[] => [
    makeConflict({
      id: 'nested',
      entity: 'users/ana',
      field: 'settings',
      base: { theme: 'light', locale: 'en-US', notifications: { email: true, push: false } },
      local: { theme: 'dark', locale: 'en-US', notifications: { email: true, push: true } },
      remote: { theme: 'light', locale: 'pt-BR', notifications: { email: false, push: false }, timezone: 'America/Sao_Paulo' },
    }),
  ],
  array: (): Conflict[] => [
    makeConflict({
      id: 'tags',
      entity: 'tasks/42',
      field: 'tags',
      base: ['design', 'q3'],
      local: ['design', 'q3', 'urgent'],
      remote: ['design', 'roadmap'],
    }),
  ],
  /** An id-keyed array: both edited item 1; mine added an item, theirs dropped one. */
  checklist: (): Conflict[] => [
    makeConflict({
      id: 'checklist',
      entity: 'cards/launch',
      field: 'checklist',
      idKey: 'id',
      base: [
        { id: 'a', text: 'Write the announcement', done: false },
        { id: 'b', text: 'Update the docs', done: false },
      ],
      local: [
        { id: 'a', text: 'Write the announcement', done: true },
        { id: 'b', text: 'Update the docs', done: false },
        { id: 'c', text: 'Tell support', done: false },
      ],
      remote: [{ id: 'a', text: 'Write the blog post', done: false }],
    }),
  ],
}
