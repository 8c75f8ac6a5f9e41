// Who each pane is, read from the URL:
//   ?server=http://127.0.0.1:4000   sync server (else the URL scripts/start.mjs injected, else this host, port 4000)
//   ?doc=demo-board                  document id
//   ?pane=single&name=Ana&db=...     one client per page (the e2e tests use it); else two panes side by side
// In split mode each window takes the first free "seat" (Web Locks), kept across reloads of that tab, so
// a second window joins as two more people with their own IndexedDB databases.

export interface PaneUser {
  id: string
  name: string
  color: string
}

export interface PaneConfig {
  key: string
  /** What the pane stands for, e.g. "laptop". */
  device: string
  dbName: string
  clientId: string
  user: PaneUser
}

export interface DemoConfig {
  serverUrl: string
  doc: string
  mode: 'split' | 'single'
  /** 1 for the first window, 2 for the next... (split mode). */
  seat: number
  panes: PaneConfig[]
}

const PEOPLE: Array<[PaneUser, PaneUser]> = [
  [
    { id: 'ada', name: 'Ada', color: '#6366f1' },
    { id: 'grace', name: 'Grace', color: '#0d9488' },
  ],
  [
    { id: 'alan', name: 'Alan', color: '#ea580c' },
    { id: 'barbara', name: 'Barbara', color: '#db2777' },
  ],
  [
    { id: 'edsger', name: 'Edsger', color: '#16a34a' },
    { id: 'frances', name: 'Frances', color: '#9333ea' },
  ],
  [
    { id: 'ken', name: 'Ken', color: '#0284c7' },
    { id: 'margaret', name: 'Margaret', color: '#ca8a04' },
  ],
]
const PALETTE = ['#6366f1', '#0d9488', '#ea580c', '#db2777', '#16a34a', '#9333ea', '#0284c7', '#ca8a04']

const rand = () => Math.random().toString(36).slice(2, 8)
const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'guest'

function hashColor(s: string): string {
  let h = 0
  for (const ch of s) h = (h * 31 + ch.charCodeAt(0)) >>> 0
  return PALETTE[h % PALETTE.length]!
}

declare global {
  interface Window {
    /** Set by scripts/start.mjs when the sync server is not on port 4000. */
    __ZYNC_SERVER__?: string
  }
}

type Locks = { request(name: string, opts: { ifAvailable?: boolean }, cb: (lock: unknown) => unknown): Promise<unknown> }
const locks = (): Locks | undefined => (navigator as unknown as { locks?: Locks }).locks

/** Tries to take a Web Lock and hold it for the page's lifetime. */
function hold(name: string): Promise<boolean> {
  const l = locks()
  if (!l) return Promise.resolve(true)
  return new Promise((resolve) => {
    l.request(name, { ifAvailable: true }, (lock) => {
      resolve(lock !== null)
      return lock === null ? undefined : new Promise(() => {})
    }).catch(() => resolve(true))
  })
}

function session(key: string, value?: string): string | null {
  try {
    if (value !== undefined) sessionStorage.setItem(key, value)
    return sessionStorage.getItem(key)
  } catch {
    return null
  }
}

async function takeSeat(): Promise<number> {
  const kept = Number(session('zync-demo:seat'))
  if (Number.isInteger(kept) && kept >= 1) {
    void hold(`zync-demo:seat:${kept}`)
    return kept
  }
  for (let seat = 1; seat < 50; seat++) {
    if (await hold(`zync-demo:seat:${seat}`)) {
      session('zync-demo:seat', String(seat))
      return seat
    }
  }
  return 50
}

export async function loadConfig(search = location.search): Promise<DemoConfig> {
  const q = new URLSearchParams(search)
  const serverUrl = q.get('server') ?? window.__ZYNC_SERVER__ ?? `${location.protocol}//${location.hostname}:4000`
  const doc = q.get('doc') ?? 'demo-board'
  if (q.get('pane') === 'single') {
    const name = q.get('name') ?? 'Guest'
    const id = slug(name)
    const dbName = q.get('db') ?? `zync-demo-${id}`
    return {
      serverUrl,
      doc,
      mode: 'single',
      seat: 1,
      panes: [{ key: 'single', device: 'browser', dbName, clientId: `${id}-${rand()}`, user: { id, name, color: q.get('color') ?? hashColor(id) } }],
    }
  }
  const seat = await takeSeat()
  const [left, right] = PEOPLE[seat - 1] ?? [
    { id: `guest-${seat}a`, name: `Guest ${seat}A`, color: hashColor(`${seat}a`) },
    { id: `guest-${seat}b`, name: `Guest ${seat}B`, color: hashColor(`${seat}b`) },
  ]
  const suffix = seat === 1 ? '' : `-${seat}`
  return {
    serverUrl,
    doc,
    mode: 'split',
    seat,
    panes: [
      { key: 'left', device: 'laptop', dbName: `zync-demo-left${suffix}`, clientId: `left-${rand()}`, user: left },
      { key: 'right', device: 'tablet', dbName: `zync-demo-right${suffix}`, clientId: `right-${rand()}`, user: right },
    ],
  }
}

/** The Online switch of a pane, kept per tab across reloads (so a reload while offline stays offline). */
export function offlineFlag(dbName: string, value?: boolean): boolean {
  const key = `zync-demo:offline:${dbName}`
  return session(key, value === undefined ? undefined : value ? '1' : '0') === '1'
}
