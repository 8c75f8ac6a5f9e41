// The outbox in real IndexedDB: reloads, tabs of one device, and a server that goes away.
import { describe, expect, it } from 'vitest'
import { useE2E } from './browser'

const e2e = useE2E()

/** Every op id the clients sent, with how many times it reached the server. */
function sends(ids: string[]): number[] {
  return ids.map((id) => e2e.sent.get(id) ?? 0)
}

describe('durability in a real browser', () => {
  it('ops made offline survive a reload in IndexedDB and are delivered exactly once', async () => {
    const doc = await e2e.newDoc()
    const seq0 = (await e2e.server.doc(doc)).seq
    const observer = await e2e.open(await e2e.newContext(), { name: 'Olga', doc })
    const a = await e2e.open(await e2e.newContext(), { name: 'Ana', doc })
    const votes0 = (await a.cards()).mobile!.votes

    await a.switchOnline(false)
    await a.setTitle('blog', 'Renamed offline')
    const added = await a.addCard('Done', 'Made offline')
    await a.vote('mobile')
    await a.vote('mobile')
    await a.setStatus('flaky', 'done')
    // Rename, new card (its record, then its 'manual' title as an op of its own), both votes (one op:
    // concurrent increments coalesce), status.
    await a.waitStatus((s) => s.pending === 5 && s.unpersisted === 0)
    const before = await a.pendingIds()
    expect(before).toHaveLength(5)
    expect((await e2e.server.doc(doc)).seq).toBe(seq0)

    await a.page.reload()
    await a.waitStatus((s) => s.ready)
    expect(await a.onlineSwitch.getAttribute('aria-checked')).toBe('false')
    expect((await a.status()).connection).toBe('offline')
    expect(await a.pendingIds()).toEqual(before)
    expect((await a.cards())[added]?.title).toBe('Made offline')
    expect(await a.page.locator('.outbox-list li').count()).toBe(5)

    await a.switchOnline(true)
    await a.waitSynced()
    await observer.waitCards((c, v) => c.blog?.title === 'Renamed offline' && c.mobile?.votes === v && c.flaky?.status === 'done', votes0 + 2)
    expect((await observer.cards())[added]?.title).toBe('Made offline')

    // Exactly once: one log entry per op, each op sent once, votes counted once.
    const head = (await e2e.server.doc(doc)).seq
    expect(head).toBe(seq0 + 5)
    const log = (await e2e.server.history(doc)).filter((c) => c.seq > seq0)
    expect(log.map((c) => c.opId).sort()).toEqual([...before].sort())
    expect(log.every((c) => c.status === 'applied')).toBe(true)
    expect(sends(before)).toEqual([1, 1, 1, 1, 1])
    expect((await e2e.serverCards(doc)).mobile!.votes).toBe(votes0 + 2)
    expect(await a.cards()).toEqual(await observer.cards())
    expect(a.errors).toEqual([])
  })

  it('two tabs of one context share edits offline through BroadcastChannel and send each op once', async () => {
    const doc = await e2e.newDoc()
    const seq0 = (await e2e.server.doc(doc)).seq
    const observer = await e2e.open(await e2e.newContext(), { name: 'Olga', doc })
    const device = await e2e.newContext()
    const t1 = await e2e.open(device, { name: 'Ana', doc, db: 'ana-laptop' })
    const t2 = await e2e.open(device, { name: 'Ana', doc, db: 'ana-laptop' })
    const votes0 = (await t1.cards()).mobile!.votes

    await device.setOffline(true)
    await t1.waitStatus((s) => s.connection === 'offline')
    await t2.waitStatus((s) => s.connection === 'offline')

    await t1.setTitle('blog', 'Edited in tab 1')
    await t2.waitCards((c) => c.blog?.title === 'Edited in tab 1', undefined, 3000)
    await t2.setNotes('flaky', 'Edited in tab 2')
    await t1.waitCards((c) => c.flaky?.notes === 'Edited in tab 2', undefined, 3000)
    await t1.vote('mobile')
    await t2.waitCards((c, v) => c.mobile?.votes === v, votes0 + 1, 3000)
    const added = await t2.addCard('To do', 'Added in tab 2')
    await t1.waitCards((c, id) => c[id]?.title === 'Added in tab 2', added, 3000)
    expect((await e2e.server.doc(doc)).seq).toBe(seq0)

    // The device's five pending ops, the same in both tabs (each tab sends its own: tab 1 two, tab 2 three,
    // the new card's record and its 'manual' title being two).
    const ids = await t1.pendingIds()
    expect(ids).toHaveLength(5)
    expect(new Set(ids).size).toBe(5)
    expect((await t2.pendingIds()).sort()).toEqual([...ids].sort())
    expect((await t1.status()).pending).toBe(5)
    expect((await t2.status()).pending).toBe(5)

    await device.setOffline(false)
    await Promise.all([t1.waitSynced(), t2.waitSynced()])
    await observer.waitCards(
      (c, o) => c.blog?.title === 'Edited in tab 1' && c.flaky?.notes === 'Edited in tab 2' && c.mobile?.votes === o.votes && c[o.added]?.title === 'Added in tab 2',
      { votes: votes0 + 1, added },
    )
    expect((await e2e.server.doc(doc)).seq).toBe(seq0 + 5)
    expect(sends(ids)).toEqual([1, 1, 1, 1, 1])
    const cards = await observer.cards()
    expect(await t1.cards()).toEqual(cards)
    expect(await t2.cards()).toEqual(cards)
    expect(cards.mobile!.votes).toBe(votes0 + 1)
    expect([...t1.errors, ...t2.errors]).toEqual([])
  })

  it('signing out: deleteLocalData() removes the device\'s unsent edits and saved document, refuses while a store uses them, and is not blocked by another tab', async () => {
    const doc = await e2e.newDoc()
    const seq0 = (await e2e.server.doc(doc)).seq
    const title0 = (await e2e.serverCards(doc)).blog!.title
    const device = await e2e.newContext()
    const t1 = await e2e.open(device, { name: 'Sam', doc, db: 'shared-kiosk' })
    const t2 = await e2e.open(device, { name: 'Sam', doc, db: 'shared-kiosk' })
    await device.setOffline(true)
    await t1.waitStatus((s) => s.connection === 'offline')
    await t1.setTitle('blog', 'Private draft')
    await t1.waitStatus((s) => s.pending === 1 && s.unpersisted === 0)
    const [draft] = await t1.pendingIds()
    const signOut = (page: typeof t1.page) =>
      page.evaluate(async () => {
        const z = window.zyncDemo!
        const db = z.config.panes[0]!.dbName
        const early = await z.deleteLocalData(db).then(
          () => 'deleted',
          (e: { code?: string }) => e.code,
        )
        for (const b of Object.values(z.boards)) await b.sync.destroy()
        await z.deleteLocalData(db)
        return early
      })
    // The other tab still has its store open: the deletion does not wait for it.
    expect(await signOut(t1.page)).toBe('BAD_REQUEST')
    // Every tab signs out: a store left alive would write what it holds back.
    expect(await signOut(t2.page)).toBe('BAD_REQUEST')
    await t1.page.close()
    await t2.page.close()
    // The next user of the device: nothing of the draft, nothing pending, nothing sent.
    await device.setOffline(false)
    const next = await e2e.open(device, { name: 'Kim', doc, db: 'shared-kiosk' })
    expect((await next.status()).pending).toBe(0)
    expect((await next.cards()).blog!.title).toBe(title0)
    expect(e2e.sent.get(draft!) ?? 0).toBe(0)
    expect((await e2e.server.doc(doc)).seq).toBe(seq0)
    expect(next.errors).toEqual([])
  })

  it('clients reconnect and catch up after the server restarts mid-session', async () => {
    const doc = await e2e.newDoc()
    const a = await e2e.open(await e2e.newContext(), { name: 'Ana', doc })
    const b = await e2e.open(await e2e.newContext(), { name: 'Ben', doc })
    await a.setTitle('blog', 'Before the restart')
    await b.waitCards((c) => c.blog?.title === 'Before the restart')

    const port = e2e.server.port
    const restarted = e2e.restartServer(1500)
    await a.waitStatus((s) => s.connection !== 'online')
    await b.waitStatus((s) => s.connection !== 'online')
    // Edits while the server is down wait in the outbox.
    await a.setNotes('flaky', 'Written while the server was down')
    await b.setPriority('server', 'high')
    await b.vote('mobile')
    await restarted
    expect(e2e.server.port).toBe(port)

    await Promise.all([a.waitSynced(20_000), b.waitSynced(20_000)])
    await a.waitCards((c) => c.server?.priority === 'high')
    await b.waitCards((c) => c.flaky?.notes === 'Written while the server was down')
    const [ca, cb, server] = await Promise.all([a.cards(), b.cards(), e2e.serverCards(doc)])
    expect(ca).toEqual(cb)
    expect(server).toEqual(ca)
    expect(ca.blog!.title).toBe('Before the restart')

    // Both made an edit after the restart too: the live stream works again.
    await b.setTitle('welcome', 'After the restart')
    await a.waitCards((c) => c.welcome?.title === 'After the restart')
    const log = await e2e.server.history(doc)
    expect(new Set(log.map((c) => c.opId)).size).toBe(log.length)
    expect([...a.errors, ...b.errors]).toEqual([])
  })
})
