// The demo's sync server: the reference server plus a trusting `authenticate` (names and colours for
// presence) and a seeded board. Used by scripts/start.mjs (through tsx) and the e2e tests.
// Relative imports on purpose: under plain tsx, 'zync/server' would resolve to the unbuilt dist/.
import { createStore } from 'zustand/vanilla'
import { sync } from '../src/index'
import { createSyncServer, type SyncServer, type SyncServerOptions, type ZyncUser } from '../src/server/index'

export interface DemoServerOptions {
  port?: number
  /** SQLite file; `':memory:'`-like in-memory storage when undefined. */
  file?: string
  /** Seed these documents with a few cards when they are empty. Default: none. */
  seed?: string[]
  logLevel?: SyncServerOptions['logLevel']
}

const text = (v: unknown, max: number): string | undefined => (typeof v === 'string' && v.length > 0 ? v.slice(0, max) : undefined)

/** Demo only: believes whatever name the browser claims. A real server verifies a token here. */
export function demoUser(auth: Record<string, unknown>): ZyncUser {
  const id = text(auth.userId, 64) ?? 'guest'
  const user: ZyncUser = { id, name: text(auth.name, 40) ?? id }
  const color = text(auth.color, 7)
  if (color && /^#[\da-f]{6}$/i.test(color)) user.color = color
  return user
}

export async function createDemoServer(o: DemoServerOptions = {}): Promise<SyncServer> {
  const server = await createSyncServer({
    port: o.port ?? 0,
    host: '127.0.0.1',
    storage: o.file ? { kind: 'sqlite', file: o.file } : { kind: 'memory' },
    authenticate: ({ auth }) => demoUser(auth),
    logLevel: o.logLevel ?? 'warn',
  })
  try {
    for (const doc of o.seed ?? []) await seedBoard(server, doc)
  } catch (err) {
    await server.close()
    throw err
  }
  return server
}

const SEED = [
  { id: 'welcome', title: 'Try it: rename me in both panes while one is offline', notes: 'Then switch it back online and pick a title in the dialog.', status: 'todo', priority: 'high', votes: 3 },
  { id: 'blog', title: 'Write the launch blog post', notes: 'Draft in the docs repo; ask Grace for a review.', status: 'todo', priority: 'medium', votes: 2 },
  { id: 'mobile', title: 'Offline mode for the mobile app', notes: '', status: 'todo', priority: 'low', votes: 5 },
  {
    id: 'onboarding',
    title: 'Design the onboarding checklist',
    notes: 'Three steps, each skippable. Reorder them in both panes while one is offline.',
    status: 'doing',
    priority: 'medium',
    votes: 1,
    checklist: [
      { id: 'welcome-screen', text: 'Welcome screen', done: true },
      { id: 'import-board', text: 'Import a board', done: false },
      { id: 'invite-team', text: 'Invite the team', done: false },
    ],
  },
  { id: 'flaky', title: 'Fix the flaky checkout test', notes: 'Fails about once in 50 runs on CI.', status: 'doing', priority: 'high', votes: 4 },
  { id: 'server', title: 'Set up the sync server', notes: 'SQLite for now; PostgreSQL when we scale out.', status: 'done', priority: 'low', votes: 2 },
]

/** Adds the sample cards to an empty document, as an ordinary zync client would. */
export async function seedBoard(server: SyncServer, doc: string): Promise<void> {
  if ((await server.doc(doc)).seq > 0) return
  const t0 = Date.now() - SEED.length * 60_000
  const store = createStore<{ cards: Record<string, unknown> }>()(
    sync(() => ({ cards: {} }), {
      name: doc,
      url: server.url,
      storage: 'memory',
      crossTab: false,
      auth: { userId: 'zync-demo', name: 'zync demo' },
      onWarning: () => {},
    }),
  )
  try {
    await store.sync.ready
    store.setState({ cards: Object.fromEntries(SEED.map((c, i) => [c.id, { ...c, createdAt: t0 + i * 60_000 }])) })
    await store.sync.flush({ timeout: 10_000 })
  } finally {
    await store.sync.destroy()
  }
}
