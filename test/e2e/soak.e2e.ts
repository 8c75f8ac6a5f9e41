// Reload soak: a stream of edits with reloads at random moments (before the outbox write, while a
// batch is in flight, after the ack, before IndexedDB is loaded). ZYNC_SOAK_SEED replays a run.
import { describe, expect, it } from 'vitest'
import { useE2E } from './browser'

const e2e = useE2E()

function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Edit {
  kind: 'add' | 'vote'
  title?: string
  /** Seen persisted in IndexedDB (or acknowledged) before the reload: must arrive, exactly once. */
  durable: boolean
}

const RELOADS = 50

describe('reload soak', () => {
  it(`${RELOADS} reloads at random moments during a stream of edits: nothing lost, nothing duplicated`, async () => {
    const seed = Number(process.env.ZYNC_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31))
    const rnd = prng(seed)
    process.stdout.write(`e2e soak: seed ${seed} (ZYNC_SOAK_SEED=${seed} replays it)\n`)

    const doc = await e2e.newDoc()
    const observer = await e2e.open(await e2e.newContext(), { name: 'Olga', doc })
    const a = await e2e.open(await e2e.newContext(), { name: 'Ana', doc, db: 'soak' })
    const votes0 = (await a.cards()).mobile!.votes
    // Slow commits on the server widen the window in which a reload lands between "received" and
    // "acknowledged": the next page sends those ops again and the server must apply them once.
    e2e.slowWrites(() => Math.floor(rnd() * 80))
    const edits: Edit[] = []
    let n = 0
    let early = 0
    const started = Date.now()

    for (let r = 0; r < RELOADS; r++) {
      // A burst of 1-4 edits, run in the page as a user's clicks would be. Votes need the card, which
      // exists once IndexedDB is loaded; new cards may be added before that.
      const kinds = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => (rnd() < 0.4 ? 'vote' : 'add'))
      const titles = kinds.map((k) => (k === 'add' ? `soak ${n++}` : ''))
      const done = await a.page.evaluate(
        ({ kinds, titles }) => {
          const b = window.zyncDemo!.boards.single!
          const ready = b.sync.status().ready
          return kinds.map((k, i) => {
            if (k === 'vote') {
              if (!ready || !b.getState().cards.mobile) return false
              b.getState().vote('mobile')
            } else b.getState().addCard('todo', titles[i]!)
            return true
          })
        },
        { kinds, titles },
      )
      const burst: Edit[] = []
      kinds.forEach((k, i) => done[i] && burst.push({ kind: k as Edit['kind'], ...(k === 'add' ? { title: titles[i] } : {}), durable: false }))
      edits.push(...burst)
      if (!(await a.status()).ready) early += burst.length

      // The moment of the reload: half the time once the burst is in IndexedDB, the other half at once
      // or after a random few ms, while its write may still be under way. Either way it must arrive.
      if (rnd() < 0.5) {
        await a.waitStatus((s) => s.ready && s.unpersisted === 0)
        for (const e of burst) e.durable = true
      }
      await new Promise((res) => setTimeout(res, Math.floor(rnd() * 60)))
      await a.page.reload()
      await a.waitStore()
    }
    const soakMs = Date.now() - started
    e2e.slowWrites(undefined)

    await a.waitSynced(30_000)
    const expected = { titles: edits.filter((e) => e.title).map((e) => e.title!), votes: votes0 + edits.filter((e) => e.kind === 'vote').length }
    await observer.waitCards((c, x) => {
      const have = new Set(Object.values(c).map((card) => card.title))
      return x.titles.every((t) => have.has(t)) && (c.mobile?.votes ?? 0) >= x.votes
    }, expected, 20_000)
    await observer.waitSynced()
    // Let any straggler (a row adopted from the previous page instance) land before comparing.
    await a.waitSynced(30_000)
    await observer.waitStatus((s, seq) => s.seq === seq, (await e2e.server.doc(doc)).seq, 10_000)

    const server = await e2e.serverCards(doc)
    const titles = Object.values(server)
      .map((c) => c.title)
      .filter((t) => t.startsWith('soak '))
    const issuedTitles = new Set(edits.filter((e) => e.kind === 'add').map((e) => e.title))
    const durableTitles = edits.filter((e) => e.kind === 'add' && e.durable).map((e) => e.title!)
    const votes = server.mobile!.votes - votes0
    const issuedVotes = edits.filter((e) => e.kind === 'vote').length
    const durableVotes = edits.filter((e) => e.kind === 'vote' && e.durable).length
    const log = await e2e.server.history(doc, { limit: 100_000 })
    const resent = [...e2e.sent.values()].filter((c) => c > 1).length
    process.stdout.write(
      `e2e soak: ${RELOADS} reloads in ${soakMs} ms, ${edits.length} edits (${edits.filter((e) => e.durable).length} durable before their reload, ${early} made before IndexedDB was loaded); ` +
        `arrived: ${titles.length}/${issuedTitles.size} cards, ${votes}/${issuedVotes} votes; ${resent} ops resent on the wire and deduplicated\n`,
    )

    // Nothing duplicated: each card once, no op applied twice, votes never more than were cast.
    expect(new Set(titles).size).toBe(titles.length)
    expect(titles.every((t) => issuedTitles.has(t))).toBe(true)
    expect(new Set(log.map((c) => c.opId)).size).toBe(log.length)
    expect(votes).toBeLessThanOrEqual(issuedVotes)
    // Nothing lost: every edit arrived, also those whose IndexedDB write the reload cut short (they are
    // spilled to localStorage on pagehide) and those made before IndexedDB was loaded.
    expect(titles).toEqual(expect.arrayContaining(durableTitles))
    expect(votes).toBeGreaterThanOrEqual(durableVotes)
    expect([...titles].sort()).toEqual([...issuedTitles].sort())
    expect(votes).toBe(issuedVotes)
    // Everyone agrees.
    expect(await a.cards()).toEqual(server)
    expect(await observer.cards()).toEqual(server)
    expect([...a.errors, ...observer.errors]).toEqual([])
  })
})
