// End-to-end harness: Debian's Chromium through playwright-core, a real zync server, and the demo
// (built once by global-setup.ts) served from 127.0.0.1. `useE2E()` registers the hooks of one test
// file; failed tests leave a screenshot of every open page in test-results/.
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { extname, join, normalize, sep } from 'node:path'
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, inject } from 'vitest'
import type { SyncServer } from 'zync/server'
import type { Card } from '../../demo/board'
import { createDemoServer, seedBoard } from '../../demo/server'
import { sentOpIds } from '../helpers'

export const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
}

export const RESULTS_DIR = join(import.meta.dirname, '..', '..', 'test-results')

// ---- static server for the built demo --------------------------------------------------------

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
  '.json': 'application/json',
  '.png': 'image/png',
}

export async function serveDir(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const root = normalize(dir + sep)
  const server: Server = createServer((req, res) => {
    let file = normalize(join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)))
    if (!file.startsWith(root)) {
      res.writeHead(403).end()
      return
    }
    let found = false
    try {
      found = statSync(file).isFile()
    } catch {
      found = false
    }
    if (!found) file = join(root, 'index.html')
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' })
    createReadStream(file).pipe(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

// ---- one client page --------------------------------------------------------------------------

export interface ClientStatus {
  connection: string
  pending: number
  unpersisted: number
  conflicts: number
  seq: number
  ready: boolean
}

/** One demo page in `?pane=single` mode: a single zync client, driven through its UI. */
export class Client {
  readonly errors: string[] = []
  constructor(
    readonly page: Page,
    readonly name: string,
  ) {
    page.on('pageerror', (err) => this.errors.push(String(err?.stack ?? err)))
  }

  get pane() {
    return this.page.locator('.pane')
  }
  card(id: string) {
    return this.page.locator(`[data-card-id="${id}"]`)
  }
  get dialog() {
    return this.page.getByRole('alertdialog')
  }
  get onlineSwitch() {
    return this.page.getByRole('switch', { name: 'Online' })
  }

  /** A side of the conflict dialog ('base' | 'local' | 'remote') as text, deleted words left out. */
  async conflictSide(side: 'base' | 'local' | 'remote'): Promise<string> {
    return this.dialog.locator(`[data-side="${side}"] .zync-value`).first().evaluate((el) => {
      const copy = el.cloneNode(true) as HTMLElement
      for (const d of copy.querySelectorAll('del')) d.remove()
      return (copy.textContent ?? '').replace(/\s+/g, ' ').trim()
    })
  }

  async setTitle(id: string, text: string): Promise<void> {
    const f = this.card(id).locator('[data-field="title"]')
    await f.click()
    await f.fill(text)
    await f.press('Enter')
  }
  async setNotes(id: string, text: string): Promise<void> {
    const f = this.card(id).locator('[data-field="notes"]')
    await f.click()
    await f.fill(text)
    await f.press('Control+Enter')
  }
  async setPriority(id: string, value: Card['priority']): Promise<void> {
    await this.card(id).getByLabel('Priority').selectOption(value)
  }
  async setStatus(id: string, value: Card['status']): Promise<void> {
    await this.card(id).getByLabel('Status').selectOption(value)
  }
  async vote(id: string): Promise<void> {
    await this.card(id).getByRole('button', { name: /^Vote/ }).click()
  }
  /** Adds a card through the column's composer; returns its id. */
  async addCard(column: 'To do' | 'In progress' | 'Done', title: string): Promise<string> {
    const col = this.page.getByRole('group', { name: column })
    await col.getByRole('button', { name: 'Add card' }).click()
    const input = col.getByRole('textbox', { name: `New card in ${column}` })
    await input.fill(title)
    await input.press('Enter')
    await input.press('Escape')
    const id = await this.page.waitForFunction((t) => Object.values(window.zyncDemo!.boards.single!.getState().cards).find((c) => c.title === t)?.id, title)
    return (await id.jsonValue()) as string
  }

  /** Flips the pane's Online switch (store.sync.disconnect() / connect()). */
  async switchOnline(on: boolean): Promise<void> {
    if ((await this.onlineSwitch.getAttribute('aria-checked')) !== String(on)) await this.onlineSwitch.click()
    if (!on) await this.waitStatus((s) => s.connection === 'offline')
  }

  async cards(): Promise<Record<string, Card>> {
    return this.page.evaluate(() => window.zyncDemo!.boards.single!.getState().cards)
  }
  async status(): Promise<ClientStatus> {
    return this.page.evaluate(() => {
      const s = window.zyncDemo!.boards.single!.sync.status()
      return { connection: s.connection, pending: s.pending, unpersisted: s.unpersisted, conflicts: s.conflicts, seq: s.seq, ready: s.ready }
    })
  }
  async pendingIds(): Promise<string[]> {
    return this.page.evaluate(() => window.zyncDemo!.boards.single!.sync.pendingOperations().map((p) => p.id))
  }

  /**
   * Waits until `check(status, arg)` holds in the page. `check` is sent as source, so it may use only
   * its parameters (pass what it needs as `arg`).
   */
  async waitStatus<A>(check: (s: ClientStatus, arg: A) => boolean, arg?: A, timeout = 10_000): Promise<void> {
    await this.page.waitForFunction(
      ([src, a]) => {
        const s = window.zyncDemo?.boards.single?.sync.status()
        return !!s && (new Function(`return (${src})`)() as (s: unknown, a: unknown) => boolean)(s, a)
      },
      [check.toString(), arg] as const,
      { timeout, polling: 20 },
    )
  }
  /** Online, nothing pending, everything persisted. */
  waitSynced(timeout = 15_000): Promise<void> {
    return this.waitStatus((s) => s.connection === 'online' && s.pending === 0 && s.unpersisted === 0 && s.ready, undefined, timeout)
  }
  /** Waits until `check(cards, arg)` holds in the page; `check` may use only its parameters. */
  async waitCards<A>(check: (cards: Record<string, Card>, arg: A) => boolean, arg?: A, timeout = 10_000): Promise<void> {
    await this.page.waitForFunction(
      ([src, a]) => {
        const b = window.zyncDemo?.boards.single
        return !!b && (new Function(`return (${src})`)() as (c: unknown, a: unknown) => boolean)(b.getState().cards, a)
      },
      [check.toString(), arg] as const,
      { timeout, polling: 'raf' },
    )
  }
  /** Waits for the demo to have created its store (before IndexedDB is loaded). */
  async waitStore(): Promise<void> {
    await this.page.waitForFunction(() => !!window.zyncDemo?.boards.single)
  }
}

// ---- one test file's environment --------------------------------------------------------------

export interface ClientOptions {
  name: string
  doc: string
  /** IndexedDB database; tabs of one context that share it act as one device. Default per name. */
  db?: string
  /** Wait until the client is online and caught up. Default true. */
  online?: boolean
}

export interface E2E {
  readonly browser: Browser
  /** The demo app, e.g. http://127.0.0.1:41234/ */
  readonly appUrl: string
  readonly server: SyncServer
  /** How many times clients sent each op id to the server (counted on the wire, before dedupe). */
  readonly sent: Map<string, number>
  newContext(options?: BrowserContextOptions): Promise<BrowserContext>
  open(context: BrowserContext, o: ClientOptions): Promise<Client>
  /** A fresh document id, seeded with the demo's sample cards unless `seed` is false. */
  newDoc(seed?: boolean): Promise<string>
  /** The server's current state of a document. */
  serverCards(doc: string): Promise<Record<string, Card>>
  /** Stops the server and starts a new one on the same port and SQLite file. */
  restartServer(downFor?: number): Promise<void>
  /**
   * Makes the server's durable writes take `delay()` ms (undefined: back to normal), so a client
   * can go away after its op was received and before it was acknowledged.
   */
  slowWrites(delay: (() => number) | undefined): void
}

let docCounter = 0

export function useE2E(): E2E {
  let browser: Browser | undefined
  let app: { url: string; close(): Promise<void> } | undefined
  let server: SyncServer | undefined
  let dataDir = ''
  const contexts = new Set<BrowserContext>()
  const sent = new Map<string, number>()

  const countSends = (s: SyncServer) => {
    s.io.on('connection', (socket) => {
      socket.onAny((event: string, payload: unknown) => {
        if (event !== 'zync:ops') return
        for (const id of sentOpIds(payload)) sent.set(id, (sent.get(id) ?? 0) + 1)
      })
    })
  }
  const file = () => join(dataDir, 'zync.db')

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'zync-e2e-'))
    ;[browser, app, server] = await Promise.all([chromium.launch(CHROMIUM), serveDir(inject('demoDir')), createDemoServer({ port: 0, file: file() })])
    countSends(server)
  })

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') {
      mkdirSync(RESULTS_DIR, { recursive: true })
      const base = `${ctx.task.file?.name.split('/').pop() ?? 'e2e'}-${ctx.task.name}`.replace(/[^\w.-]+/g, '_').slice(0, 120)
      let i = 0
      for (const c of contexts)
        for (const p of c.pages()) {
          const path = join(RESULTS_DIR, `${base}-${++i}.png`)
          await p.screenshot({ path, fullPage: true }).catch(() => {})
          process.stdout.write(`e2e: failure screenshot ${path}\n`)
        }
    }
    await Promise.allSettled([...contexts].map((c) => c.close()))
    contexts.clear()
  })

  afterAll(async () => {
    await Promise.allSettled([...contexts].map((c) => c.close()))
    await Promise.allSettled([browser?.close(), app?.close(), server?.close()])
    rmSync(dataDir, { recursive: true, force: true })
  })

  return {
    get browser() {
      return browser!
    },
    get appUrl() {
      return app!.url
    },
    get server() {
      return server!
    },
    sent,
    async newContext(options = {}) {
      const c = await browser!.newContext({ viewport: { width: 1100, height: 900 }, ...options })
      contexts.add(c)
      c.on('close', () => contexts.delete(c))
      return c
    },
    async open(context, o) {
      const q = new URLSearchParams({ pane: 'single', server: server!.url, doc: o.doc, name: o.name })
      if (o.db) q.set('db', o.db)
      const page = await context.newPage()
      const client = new Client(page, o.name)
      await page.goto(`${app!.url}?${q}`)
      await client.waitStore()
      if (o.online !== false) await client.waitSynced()
      return client
    },
    async newDoc(seed = true) {
      const doc = `e2e-${process.pid}-${++docCounter}`
      if (seed) await seedBoard(server!, doc)
      return doc
    },
    async serverCards(doc) {
      return ((await server!.doc(doc)).current().state.cards ?? {}) as Record<string, Card>
    },
    async restartServer(downFor = 300) {
      const port = server!.port
      await server!.close()
      await new Promise((r) => setTimeout(r, downFor))
      server = await createDemoServer({ port, file: file() })
      countSends(server)
    },
    slowWrites(delay) {
      const storage = server!.storage as { append: SyncServer['storage']['append']; __append?: SyncServer['storage']['append'] }
      storage.__append ??= storage.append.bind(storage)
      const append = storage.__append
      storage.append = delay ? async (doc, entries) => (await new Promise((r) => setTimeout(r, delay())), append(doc, entries)) : append
    },
  }
}

/** Median, 95th percentile and max of a list of numbers. */
export function summarize(xs: number[]): { n: number; median: number; p95: number; max: number } {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!
  return { n: s.length, median: at(0.5), p95: at(0.95), max: s[s.length - 1]! }
}
