// Two browser contexts are two devices: their own IndexedDB, client id and socket.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { RESULTS_DIR, summarize, useE2E, type Client } from './browser'

const e2e = useE2E()

async function two(doc: string): Promise<[Client, Client]> {
  const [ca, cb] = await Promise.all([e2e.newContext(), e2e.newContext()])
  return Promise.all([e2e.open(ca, { name: 'Ana', doc }), e2e.open(cb, { name: 'Ben', doc })])
}

describe('collaboration between two browser contexts', () => {
  it('an edit in A appears in B in under 250 ms', async () => {
    const doc = await e2e.newDoc()
    const [a, b] = await two(doc)
    // A stamps the moment Enter is pressed in a title; B the moment the card's label shows the new title.
    await a.page.evaluate(() => {
      window.addEventListener('keydown', (e) => e.key === 'Enter' && ((window as unknown as { sentAt: number }).sentAt = performance.timeOrigin + performance.now()), true)
    })
    // Edit 0 warms up (first IndexedDB transaction, JIT); it is reported but held only to a second.
    const samples: number[] = []
    for (let i = 0; i <= 15; i++) {
      // One edit at a time, as a person makes them: the previous one is acknowledged and settled.
      await a.waitSynced()
      const title = `Latency probe ${i}`
      await b.page.evaluate((t) => {
        const w = window as unknown as { seenAt?: number }
        delete w.seenAt
        const el = document.querySelector('[data-card-id="blog"]')!
        const mo = new MutationObserver(() => {
          if (el.getAttribute('aria-label') === t) {
            w.seenAt = performance.timeOrigin + performance.now()
            mo.disconnect()
          }
        })
        mo.observe(el, { attributes: true, attributeFilter: ['aria-label'] })
      }, title)
      await a.setTitle('blog', title)
      const seen = await b.page.waitForFunction(() => (window as unknown as { seenAt?: number }).seenAt, undefined, { timeout: 5000 })
      const sentAt = await a.page.evaluate(() => (window as unknown as { sentAt: number }).sentAt)
      samples.push((await seen.jsonValue())! - sentAt)
    }
    const [warmup, ...steady] = samples as [number, ...number[]]
    const stats = summarize(steady)
    const round = (x: number) => Math.round(x * 10) / 10
    const report = { test: 'edit in context A visible in context B', unit: 'ms', warmup: round(warmup), ...stats, samples: steady.map(round) }
    mkdirSync(RESULTS_DIR, { recursive: true })
    writeFileSync(join(RESULTS_DIR, 'latency.json'), JSON.stringify(report, null, 2))
    process.stdout.write(`e2e latency A→B: median ${stats.median.toFixed(1)} ms, p95 ${stats.p95.toFixed(1)} ms, max ${stats.max.toFixed(1)} ms (n=${stats.n}; first edit ${warmup.toFixed(1)} ms)\n`)
    // Every edit under 250 ms (the first one also opens the path: under 1 s).
    expect(warmup).toBeLessThan(1000)
    expect(stats.max).toBeLessThan(250)
    expect(await b.cards()).toEqual(await a.cards())
  })

  it('offline on both sides: the title clash asks in a modal, disjoint fields and votes merge by themselves', async () => {
    const doc = await e2e.newDoc()
    const [a, b] = await two(doc)
    const votesBefore = (await a.cards()).mobile!.votes

    // A goes offline with the demo's switch (store.sync.disconnect()); B loses the network (navigator.onLine too).
    await a.switchOnline(false)
    await b.page.context().setOffline(true)
    await b.waitStatus((s) => s.connection === 'offline')

    await a.setTitle('welcome', 'Title from Ana')
    await b.setTitle('welcome', 'Title from Ben')
    await a.setNotes('blog', 'Notes from Ana')
    await b.setPriority('blog', 'high')
    await a.vote('mobile')
    await b.vote('mobile')
    await a.waitStatus((s) => s.pending === 3 && s.unpersisted === 0)
    await b.waitStatus((s) => s.pending === 3 && s.unpersisted === 0)
    expect(await e2e.serverCards(doc)).toMatchObject({ welcome: { title: expect.stringContaining('rename me') } })

    // B comes back first, so A's title is the one that races.
    await b.page.context().setOffline(false)
    await b.waitSynced()
    await a.switchOnline(true)
    await a.waitSynced()

    await expect.poll(() => a.dialog.isVisible()).toBe(true)
    const sections = a.dialog.locator('.zync-conflict')
    expect(await sections.count()).toBe(1)
    expect(await sections.first().textContent()).toMatch(/title/)
    expect(await a.conflictSide('local')).toBe('Title from Ana')
    expect(await a.conflictSide('remote')).toBe('Title from Ben')
    expect(await b.dialog.count()).toBe(0)
    expect((await b.status()).conflicts).toBe(0)

    // Disjoint fields of 'blog' merged without asking; concurrent votes both count.
    const merged = { blog: { notes: 'Notes from Ana', priority: 'high' }, mobile: { votes: votesBefore + 2 } }
    await a.waitCards((c, m) => c.blog?.notes === m.blog.notes && c.blog?.priority === m.blog.priority && c.mobile?.votes === m.mobile.votes, merged)
    await b.waitCards((c, m) => c.blog?.notes === m.blog.notes && c.blog?.priority === m.blog.priority && c.mobile?.votes === m.mobile.votes, merged)

    await a.dialog.getByRole('button', { name: 'Keep mine' }).click()
    await expect.poll(() => a.dialog.count()).toBe(0)
    await a.waitSynced()
    await b.waitCards((c) => c.welcome?.title === 'Title from Ana')
    const [ca, cb, server] = await Promise.all([a.cards(), b.cards(), e2e.serverCards(doc)])
    expect(ca).toEqual(cb)
    expect(server).toEqual(ca)
    expect(ca.welcome!.title).toBe('Title from Ana')
    expect(ca).toMatchObject(merged)
    expect(await b.dialog.count()).toBe(0)
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  it("shows the other context's avatar and what it edits, and drops it when that context closes", async () => {
    const doc = await e2e.newDoc()
    const [a, b] = await two(doc)
    const anaInB = b.page.locator('.pane-people').getByRole('img', { name: 'Ana' })
    await anaInB.waitFor({ state: 'visible', timeout: 5000 })
    expect(await a.page.locator('.pane-people').getByRole('img', { name: 'Ben' }).isVisible()).toBe(true)

    // Ana focuses the notes of one card: Ben sees her on that card and field.
    await a.card('flaky').locator('[data-field="notes"]').click()
    await expect.poll(() => b.card('flaky').locator('.card-editing').filter({ hasText: 'Ana is editing' }).count(), { timeout: 5000 }).toBe(1)
    expect(await b.card('flaky').getAttribute('data-viewed')).toBe('true')
    expect(await b.card('blog').getAttribute('data-viewed')).toBe(null)
    await a.card('flaky').locator('[data-field="notes"]').blur()
    await expect.poll(() => b.card('flaky').getAttribute('data-viewed'), { timeout: 5000 }).toBe(null)

    await a.page.context().close()
    await anaInB.waitFor({ state: 'detached', timeout: 5000 })
    expect(await b.page.locator('.pane-people').getByRole('img').count()).toBe(0)
  })
})
