// Below socket.io: raw engine.io / WebSocket garbage (malformed packets, binary placeholders, frames
// over the limit), hostile HTTP requests, per-socket rate limits and slow consumers. The server must
// survive all of it and keep serving everyone else.
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Socket } from 'socket.io-client'
import WebSocket from 'ws'
import { createSyncServer, type SyncServer, type SyncServerOptions } from '../../src/server/index'
import type { Logger } from '../../src/server/logger'
import { makeBoard, waitFor } from '../helpers'
import { decodeChangesMessage, decodeOpsResponse, encodeOpsRequest } from '../../src/core/wire'
import { MemoryStorage } from '../../src/server/storage/memory'
import type { LogEntry } from '../../src/server/storage/types'
import { ask, connectRaw, makeOp, sleep } from './helpers'

const base: SyncServerOptions = {
  port: 0,
  storage: { kind: 'memory' },
  logLevel: 'silent',
  authenticate: ({ auth }) => {
    if (typeof auth.token !== 'string' || !auth.token.startsWith('t-')) throw new Error('bad token')
    return { id: auth.token.slice(2) }
  },
}

const servers: SyncServer[] = []
const sockets: Socket[] = []
afterAll(async () => {
  for (const s of sockets) s.disconnect()
  for (const s of servers) await s.close()
})
async function server(opts: Partial<SyncServerOptions> = {}) {
  const s = await createSyncServer({ ...base, ...opts })
  servers.push(s)
  return s
}
async function client(url: string, token = 't-alice') {
  const s = await connectRaw(url, { auth: { token } })
  sockets.push(s)
  return s
}

interface Raw {
  ws: WebSocket
  messages: Array<string | Buffer>
  closed: Promise<{ code: number }>
  open(): boolean
}

/** A WebSocket speaking engine.io/socket.io by hand, connected to the main namespace. */
async function rawWs(url: string, token = 't-mallory'): Promise<Raw> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`)
  const messages: Array<string | Buffer> = []
  ws.on('message', (d: Buffer, isBinary: boolean) => {
    const m = isBinary ? d : d.toString()
    if (m === '2') ws.send('3') // engine.io ping -> pong
    messages.push(m)
  })
  ws.on('error', () => {})
  const closed = new Promise<{ code: number }>((resolve) => ws.on('close', (code: number) => resolve({ code })))
  await once(ws, 'open')
  await waitFor(() => messages.some((m) => typeof m === 'string' && m.startsWith('0{')), 5000, 'engine.io open')
  ws.send('40' + JSON.stringify({ token }))
  await waitFor(() => messages.some((m) => typeof m === 'string' && m.startsWith('40{')), 5000, 'namespace connect')
  return { ws, messages, closed, open: () => ws.readyState === WebSocket.OPEN }
}

describe('transport settings a peer can observe', () => {
  it('a client offering per-message deflate gets none (it costs ~10x for small messages)', async () => {
    const s = await server()
    const raw = await rawWs(s.url, 't-carol')
    // ws offers permessage-deflate by default; the server's answer is in the negotiated extensions.
    expect((raw.ws as unknown as { _extensions: Record<string, unknown> })._extensions).toEqual({})
    expect(raw.ws.extensions).toBe('')
    raw.ws.close()
  })

  it('the handshake sets a 10 s ping and a 10 s timeout: a silent peer is dropped within ~20 s, not ~45 s', async () => {
    const s = await server()
    const raw = await rawWs(s.url, 't-carol')
    const open = raw.messages.find((m): m is string => typeof m === 'string' && m.startsWith('0{'))!
    expect(JSON.parse(open.slice(1))).toMatchObject({ pingInterval: 10_000, pingTimeout: 10_000 })
    raw.ws.close()
  })
})

describe('raw engine.io / WebSocket garbage', () => {
  let s: SyncServer
  let bystander: Socket
  const heard: unknown[] = []
  beforeAll(async () => {
    s = await server()
    bystander = await client(s.url, 't-bob')
    bystander.on('zync:changes', (m) => heard.push(m))
    expect((await ask(bystander, 'zync:join', { v: 2, doc: 'wire', client: 'cb', since: 0 })).ok).toBe(true)
  })

  const hostileOp = JSON.stringify({ doc: 'wire', ops: [{ id: 'x', client: 'cm', n: 1, hlc: '001700000000000:000000:cm', op: 'add', path: ['a'], value: 1, base: {} }] })
  const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n)
  const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)

  // [name, frames to send]: every frame after the namespace is connected.
  const FRAMES: Array<[string, Array<string | Buffer>]> = [
    ['event packet without payload', ['42']],
    ['truncated JSON', ['42["zync:ops"']],
    ['empty array', ['42[]']],
    ['event name is a number', ['42[1]']],
    ['event name is null', ['42[null]']],
    ['event name is an object with toString (CVE-2023-32695)', ['42[{"toString":"zync:ops"}]']],
    ['event name is an array', ['42[["zync:ops"]]']],
    ['payload is a string', ['42"zync:ops"']],
    ['payload is an object', ['42{}']],
    ['reserved event disconnect', ['42["disconnect"]']],
    ['reserved event newListener', ['42["newListener","zync:ops"]']],
    ['client-sent error event (CVE-2024-38355)', ['42["error","boom"]']],
    ['event named __proto__', ['42["__proto__",{}]']],
    ['ack for an unknown id', ['4399999[]']],
    ['ack without id', ['43']],
    ['huge ack id', ['43999999999999999999999999[]']],
    ['connect error packet from a client', ['44{"message":"x"}']],
    ['binary event with a missing attachment', ['451-["zync:ops",{"_placeholder":true,"num":0}]']],
    ['placeholder num __proto__ (CVE-2022-2421)', ['451-["zync:ops",{"_placeholder":true,"num":"__proto__"}]', Buffer.from([1])]],
    ['placeholder num out of range (CVE-2022-2421)', ['451-["zync:ops",{"_placeholder":true,"num":99}]', Buffer.from([1])]],
    ['placeholder num is an object (CVE-2022-2421)', ['451-["zync:ops",{"_placeholder":true,"num":{"toString":"0"}}]', Buffer.from([1])]],
    ['attachment count absurd', ['4599999999999-["zync:ops",{}]']],
    ['binary frame without a binary event', [Buffer.from([0xde, 0xad, 0xbe, 0xef])]],
    ['unknown packet type 9', ['49["x"]']],
    ['unknown engine.io packet type', ['9hello']],
    ['empty text frame', ['']],
    ['engine.io close then data', ['1', '42["zync:ops",{}]']],
    ['message to a namespace never joined', ['42/admin,["zync:ops",{}]']],
    ['connect to a namespace that does not exist', ['40/admin,']],
    ['namespace disconnect then data', ['41', '42["zync:ops",{}]']],
    ['array nested 100,000 deep', ['420["zync:ops",' + deepArray(100_000) + ']']],
    ['object nested 100,000 deep', ['420["zync:ops",' + deepObject(100_000) + ']']],
    ['event with a trailing non-function argument', ['420["zync:ops",' + hostileOp + ',"extra"]']],
    ['invalid UTF-8 in a text-like binary frame', [Buffer.from([0x34, 0x32, 0xff, 0xfe, 0x5b])]],
    ['ten thousand empty events', Array.from({ length: 10_000 }, () => '42["zync:nope"]')],
  ]

  it(`survives ${FRAMES.length} kinds of malformed packets`, async () => {
    expect(FRAMES.length).toBeGreaterThanOrEqual(30)
    const outcomes: string[] = []
    for (const [name, frames] of FRAMES) {
      const r = await rawWs(s.url)
      for (const f of frames) if (r.open()) r.ws.send(f)
      await Promise.race([r.closed, sleep(60)])
      outcomes.push(`${name}: ${r.open() ? 'kept' : 'closed'}`)
      r.ws.terminate()
      // After each: the server answers a fresh client, and the bystander is still connected.
      expect((await fetch(`${s.url}/healthz`)).status, name).toBe(200)
      expect(bystander.connected, name).toBe(true)
    }
    expect(outcomes.filter((o) => o.endsWith('closed')).length).toBeGreaterThan(0)
    const probe = await client(s.url)
    expect((await ask(probe, 'zync:join', { v: 2, doc: 'wire', client: 'cp', since: 0 })).ok).toBe(true)
    const w = await ask<{ ok: boolean; results: Array<{ ok: boolean }> }>(probe, 'zync:ops', { doc: 'wire', ops: [makeOp('cp', 1, ['after'], 'garbage')] })
    expect(w.results[0]!.ok).toBe(true)
    await waitFor(() => heard.length > 0, 5000, 'bystander hears later changes')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  }, 60_000)

  it('answers a well-formed raw request with a typed error, including binary payloads', async () => {
    const r = await rawWs(s.url)
    r.ws.send('420["zync:ops",{"doc":"wire","ops":[]}]')
    r.ws.send('421["zync:nope",{}]')
    r.ws.send('451-2["zync:ops",{"_placeholder":true,"num":0}]')
    r.ws.send(Buffer.from('{"doc":"wire"}'))
    r.ws.send('423["zync:join",{"v":2,"doc":"wire","client":"cm","since":0},"extra"]')
    await waitFor(() => ['430', '431', '432', '433'].every((p) => r.messages.some((m) => typeof m === 'string' && m.startsWith(p))), 5000, 'four answers')
    const answer = (id: number) => JSON.parse((r.messages.find((m) => typeof m === 'string' && m.startsWith(`43${id}`)) as string).slice(3))[0]
    expect(answer(0)).toMatchObject({ ok: false, code: 'BAD_REQUEST', retryable: false })
    expect(answer(1)).toMatchObject({ ok: false, code: 'UNKNOWN_EVENT' })
    expect(answer(2)).toMatchObject({ ok: false, code: 'BAD_REQUEST', message: '[zync] a message must be a plain object' })
    expect(answer(3)).toMatchObject({ ok: false, code: 'BAD_REQUEST' })
    r.ws.terminate()
  })

  it('closes a frame over maxPayload (and only that connection)', async () => {
    const small = await server({ limits: { maxPayload: 64 * 1024 } })
    const other = await client(small.url)
    const r = await rawWs(small.url)
    r.ws.send('42["zync:ops",' + JSON.stringify('x'.repeat(200_000)) + ']')
    const { code } = await r.closed
    expect(code).toBe(1009) // message too big
    // socket.io-client, same: the connection drops, the server stays.
    const big = await client(small.url)
    const gone = new Promise<string>((resolve) => big.once('disconnect', resolve))
    big.emit('zync:ops', { doc: 'x', ops: [makeOp('c', 1, ['a'], 'y'.repeat(100_000))] })
    expect(await gone).toMatch(/transport (close|error)/)
    expect(other.connected).toBe(true)
    expect((await ask(other, 'zync:join', { v: 2, doc: 'x', client: 'co', since: 0 })).ok).toBe(true)
  })

  it('survives hostile HTTP: old protocol, bad transport, unknown sid, oversized polling body, foreign origin', async () => {
    const u = s.url
    expect((await fetch(`${u}/socket.io/?EIO=3&transport=polling`)).status).toBe(400)
    expect((await fetch(`${u}/socket.io/?EIO=4&transport=carrier-pigeon`)).status).toBe(400)
    expect((await fetch(`${u}/socket.io/?EIO=4&transport=polling&sid=nope`)).status).toBe(400)
    expect((await fetch(`${u}/socket.io/?EIO=4&transport=polling`, { method: 'POST', body: '42["x"]' })).status).toBe(400)
    expect((await fetch(`${u}/socket.io/?EIO=4&transport=polling`, { headers: { origin: 'https://evil.example' } })).status).toBe(403)
    // A real polling session, then a body over maxHttpBufferSize (CVE-2020-36048).
    const hs = await (await fetch(`${u}/socket.io/?EIO=4&transport=polling`)).text()
    const sid = (JSON.parse(hs.slice(1)) as { sid: string }).sid
    const big = await fetch(`${u}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: 'x'.repeat(5_000_000) }).catch(() => undefined)
    expect(big === undefined || big.status === 413 || big.status === 400).toBe(true)
    // A cross-site WebSocket is refused at the handshake.
    const ws = new WebSocket(`${u.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, { headers: { origin: 'https://evil.example' } })
    ws.on('error', () => {})
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }]
    expect([400, 403]).toContain(res.statusCode) // engine.io answers every refused upgrade with 400
    ws.terminate()
    expect((await fetch(`${u}/nope`)).status).toBe(404)
    expect((await fetch(`${u}/healthz`)).status).toBe(200)
    expect(bystander.connected).toBe(true)
  })
})

describe('per-socket rate limits', () => {
  it('limits ops, bytes, messages and presence per second, retryably, without touching other sockets', async () => {
    const s = await server({ limits: { opsPerSecond: 100, bytesPerSecond: 100_000, messagesPerSecond: 50, presencePerSecond: 5 } })
    const calm = await client(s.url, 't-calm')
    // The join answer names the limits a client paces itself to.
    expect(await ask(calm, 'zync:join', { v: 2, doc: 'rl', client: 'calm', since: 0 })).toMatchObject({ ok: true, opsPerSecond: 100, messagesPerSecond: 50 })

    type A = { ok: boolean; code?: string; retryable?: boolean }
    const opsHog = await client(s.url, 't-ops')
    await ask(opsHog, 'zync:join', { v: 2, doc: 'rl', client: 'oh', since: 0 })
    const batch = (c: string, from: number, k: number, size = 1) => ({ doc: 'rl', ops: Array.from({ length: k }, (_, i) => makeOp(c, from + i, ['o', `${c}${from + i}`], 'v'.repeat(size))) })
    expect((await ask<A>(opsHog, 'zync:ops', batch('oh', 1, 150))).ok).toBe(true)
    // Refused, saying when the same request would be admitted: 150 ops at 100/s with 50 left, ~1 s.
    const refused = await ask<A & { retryAfter?: number }>(opsHog, 'zync:ops', batch('oh', 151, 150))
    expect(refused).toMatchObject({ ok: false, code: 'RATE_LIMITED', retryable: true })
    expect(refused.retryAfter).toBeGreaterThan(800)
    expect(refused.retryAfter).toBeLessThanOrEqual(1000)

    const bytesHog = await client(s.url, 't-bytes')
    await ask(bytesHog, 'zync:join', { v: 2, doc: 'rl', client: 'bh', since: 0 })
    const answers: A[] = []
    for (let i = 0; i < 4; i++) answers.push(await ask<A>(bytesHog, 'zync:ops', batch('bh', i + 1, 1, 90_000)))
    expect(answers.slice(0, 2).every((a) => a.ok)).toBe(true)
    expect(answers.some((a) => a.code === 'RATE_LIMITED' && a.retryable)).toBe(true)

    const chatty = await client(s.url, 't-chatty')
    const many = await Promise.all(Array.from({ length: 150 }, () => ask<A>(chatty, 'zync:history', { doc: 'rl', limit: 1 })))
    expect(many.filter((a) => a.code === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(40)

    // Unknown events count against the same limit, and over it get the same typed answer (and metric).
    const prober = await client(s.url, 't-prober')
    const probes = await Promise.all(Array.from({ length: 150 }, () => ask<A>(prober, 'admin:probe', {})))
    expect(probes.filter((a) => a.code === 'UNKNOWN_EVENT').length).toBeGreaterThanOrEqual(40)
    expect(probes.filter((a) => a.code === 'RATE_LIMITED' && a.retryable).length).toBeGreaterThanOrEqual(40)
    expect(probes.every((a) => a.code === 'UNKNOWN_EVENT' || a.code === 'RATE_LIMITED')).toBe(true)

    const waver = await client(s.url, 't-waver')
    await ask(waver, 'zync:join', { v: 2, doc: 'rl', client: 'wv', since: 0 })
    const waves = await Promise.all(Array.from({ length: 10 }, (_, i) => ask<A>(waver, 'zync:presence', { doc: 'rl', state: { i } })))
    expect(waves.filter((a) => a.ok).length).toBe(5)
    expect(waves.filter((a) => a.code === 'RATE_LIMITED').length).toBe(5)

    // The calm socket was never limited by the others.
    const fine = await ask<{ ok: boolean; results: Array<{ ok: boolean }> }>(calm, 'zync:ops', batch('calm', 1, 10))
    expect(fine.ok && fine.results.every((r) => r.ok)).toBe(true)
    const metrics = await s.metrics()
    expect(metrics).toMatch(/zync_ops_rejected_total\{code="RATE_LIMITED"\} \d+/)
  })
})

describe('what a socket may make the server hold or compute', () => {
  // Found by an auth trial: joins of fresh document ids had no bound (8 sockets of one user loaded 432k
  // documents in 40 s, 1.1 GB, other users' p99 2.5 s), and history requests of 1000 entries were priced
  // as one message each (the server stopped answering /healthz).
  type A = { ok: boolean; code?: string; retryable?: boolean; retryAfter?: number; message?: string }
  it('bounds the documents a socket joins per second and at once; rejoining one it has is free', async () => {
    const s = await server({ limits: { joinsPerSecond: 10, docsPerSocket: 25 } })
    const c = await client(s.url, 't-joiner')
    const join = (doc: string) => ask<A>(c, 'zync:join', { v: 2, doc, client: 'j', since: 0 })
    const first = await Promise.all(Array.from({ length: 30 }, (_, i) => join(`j${i}`)))
    // A burst of two seconds' worth, then refused with when to come back.
    expect(first.filter((a) => a.ok).length).toBe(20)
    const refused = first.filter((a) => !a.ok)
    expect(refused.every((a) => a.code === 'RATE_LIMITED' && a.retryable && a.retryAfter! > 0 && a.retryAfter! <= 1000)).toBe(true)
    expect((await join('j0')).ok).toBe(true)
    await new Promise((r) => setTimeout(r, 1100))
    const more = await Promise.all(Array.from({ length: 10 }, (_, i) => join(`k${i}`)))
    // 25 at once at most: leave one to join another.
    expect(more.filter((a) => a.ok).length).toBe(5)
    expect(more.filter((a) => !a.ok).every((a) => a.code === 'RATE_LIMITED' && /docsPerSocket 25/.test(a.message!))).toBe(true)
    c.emit('zync:leave', { doc: 'j1' })
    await new Promise((r) => setTimeout(r, 50))
    expect((await join('k9')).ok).toBe(true)
    expect(s.io.of('/').adapter.rooms.get('doc:k9')?.size).toBe(1)
  })

  it('prices history requests by the entries asked for', async () => {
    const s = await server({ limits: { historyPerSecond: 1000 } })
    const c = await client(s.url, 't-reader')
    await ask(c, 'zync:join', { v: 2, doc: 'hist', client: 'r', since: 0 })
    const big = await Promise.all(Array.from({ length: 4 }, () => ask<A>(c, 'zync:history', { doc: 'hist', limit: 1000 })))
    expect(big.filter((a) => a.ok).length).toBe(2)
    expect(big.filter((a) => a.code === 'RATE_LIMITED' && a.retryable).length).toBe(2)
    const other = await client(s.url, 't-other')
    await ask(other, 'zync:join', { v: 2, doc: 'hist', client: 'o', since: 0 })
    const small = await Promise.all(Array.from({ length: 20 }, () => ask<A>(other, 'zync:history', { doc: 'hist', limit: 100 })))
    expect(small.every((a) => a.ok)).toBe(true)
  })

  it('a store refused a join for the rate waits the time the server names, then joins', async () => {
    const s = await server({ limits: { joinsPerSecond: 1 } })
    const c = await client(s.url, 't-store')
    // Two seconds' worth spent on this socket's connection by other joins first.
    expect((await ask<A>(c, 'zync:join', { v: 2, doc: 'x1', client: 'x', since: 0 })).ok).toBe(true)
    expect((await ask<A>(c, 'zync:join', { v: 2, doc: 'x2', client: 'x', since: 0 })).ok).toBe(true)
    const store = makeBoard({ name: 'x3', socket: c as never })
    try {
      await waitFor(() => store.sync.status().error?.code === 'RATE_LIMITED', 3000, 'refused once')
      await waitFor(() => store.sync.status().connection === 'online', 3000, 'joined after retryAfter')
    } finally {
      await store.sync.destroy()
    }
  })
})

describe('requests in progress per socket', () => {
  it('refuses requests beyond maxPending while earlier ones are still being processed', async () => {
    // authorize() takes 200 ms: requests pile up on the server.
    const s = await server({ limits: { maxPending: 5 }, authorize: () => new Promise((r) => setTimeout(() => r(true), 200)) })
    const c = await client(s.url)
    const answers = await Promise.all(Array.from({ length: 12 }, () => ask<{ ok: boolean; code?: string }>(c, 'zync:history', { doc: 'slowauth' })))
    expect(answers.filter((a) => a.ok).length).toBe(5)
    expect(answers.filter((a) => a.code === 'RATE_LIMITED').length).toBe(7)
    expect((await ask<{ ok: boolean }>(c, 'zync:history', { doc: 'slowauth' })).ok).toBe(true)
  })
})

describe('slow consumers', () => {
  it('disconnects a client that stops reading, with a reason, instead of buffering without bound', async () => {
    const lines: Array<Record<string, unknown>> = []
    const log = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push({ level, msg, ...fields })
    const logger: Logger = { debug: () => {}, info: log('info'), warn: log('warn'), error: log('error') }
    const s = await server({ logger, limits: { maxBufferedPackets: 50, maxBufferedBytes: 512 * 1024, bytesPerSecond: 1e9, opsPerSecond: 1e6 } })
    const slow = await rawWs(s.url, 't-slow')
    slow.ws.send('420["zync:join",{"v":2,"doc":"flood","client":"cs","since":0}]')
    await waitFor(() => slow.messages.some((m) => typeof m === 'string' && m.startsWith('430')), 5000, 'slow joined')
    // Stop reading: the kernel buffers fill, then the server's queue for this socket grows.
    ;(slow.ws as unknown as { _socket: { pause(): void } })._socket.pause()

    const writer = await client(s.url, 't-writer')
    expect((await ask(writer, 'zync:join', { v: 2, doc: 'flood', client: 'cw', since: 0 })).ok).toBe(true)
    let n = 0
    const started = Date.now()
    while (!lines.some((l) => l.msg === 'dropping slow consumer') && Date.now() - started < 20_000) {
      const r = await ask<{ ok: boolean }>(writer, 'zync:ops', { doc: 'flood', ops: Array.from({ length: 20 }, () => makeOp('cw', ++n, ['rows', `r${n}`], 'z'.repeat(5000))) })
      expect(r.ok).toBe(true)
    }
    const drop = lines.find((l) => l.msg === 'dropping slow consumer')
    expect(drop, 'slow consumer never dropped').toBeDefined()
    expect(drop).toMatchObject({ level: 'warn', user: 'slow' })
    expect(String(drop!.reason)).toMatch(/too slow/)
    expect(await s.metrics()).toMatch(/zync_disconnects_total\{reason="slow consumer"\} 1/)
    // The writer was never affected, and the server queue for the slow socket is gone.
    expect(writer.connected).toBe(true)
    await waitFor(() => [...s.io.of('/').sockets.values()].every((x) => (x.data as { user: { id: string } }).user.id !== 'slow'), 5000, 'slow socket gone')
    ;(slow.ws as unknown as { _socket: { resume(): void } })._socket.resume()
    await slow.closed
    console.log(`slow consumer dropped after ${n} ops (${((n * 5000) / 1e6).toFixed(1)} MB broadcast) in ${Date.now() - started} ms`)
  }, 30_000)
})

describe('coalesced broadcasts', () => {
  it('writers landing together reach a reader in few messages, in seq order, each change once, at most 2000 per message, each ack after its changes', async () => {
    // The first append waits until the server has received all three batches, so they commit in one
    // turn of the event loop (as concurrent writers' batches do when they land together).
    let open: () => void = () => {}
    const gate = new Promise<void>((r) => (open = r))
    class Gated extends MemoryStorage {
      override async append(d: string, entries: LogEntry[]) {
        if (d === 'coalesce') await gate
        return super.append(d, entries)
      }
    }
    const s = await server({ storage: new Gated(), limits: { opsPerSecond: 1e6, bytesPerSecond: 1e9, messagesPerSecond: 1e6 } })
    let received = 0
    s.io.on('connection', (sock) => sock.onAny((event: string) => event === 'zync:ops' && ++received === 3 && open()))
    const doc = 'coalesce'
    const reader = await client(s.url, 't-reader')
    const messages: Array<{ seqs: number[] }> = []
    reader.on('zync:changes', (raw: unknown) => {
      const m = decodeChangesMessage(raw)
      messages.push({ seqs: m.changes.map((c) => c.seq) })
    })
    expect((await ask(reader, 'zync:join', { v: 2, doc, client: 'cr', since: 0 })).ok).toBe(true)
    const writers = await Promise.all(['t-w1', 't-w2', 't-w3'].map((t) => client(s.url, t)))
    for (const [i, w] of writers.entries()) expect((await ask(w, 'zync:join', { v: 2, doc, client: `cw${i}`, since: 0 })).ok).toBe(true)
    // Each writer: one batch of 1000 ops, all sent in the same turn. Every writer records how many
    // changes of its own batch it had heard when its ack arrived.
    const heardAtAck = await Promise.all(
      writers.map(async (w, i) => {
        const mine = new Set<number>()
        w.on('zync:changes', (raw: unknown) => {
          for (const c of decodeChangesMessage(raw).changes) if (c.client === `cw${i}`) mine.add(c.seq)
        })
        const ops = Array.from({ length: 1000 }, (_, k) => makeOp(`cw${i}`, k + 1, ['rows', `w${i}-${k}`], k))
        const r = await ask<{ ok: boolean; results: Array<{ ok: boolean }> }>(w, 'zync:ops', { doc, ops })
        expect(r.results.every((x) => x.ok)).toBe(true)
        return mine.size
      }),
    )
    expect(heardAtAck).toEqual([1000, 1000, 1000])
    await waitFor(() => messages.flatMap((m) => m.seqs).length === 3000, 5000, 'reader heard every change')
    const seqs = messages.flatMap((m) => m.seqs)
    expect(seqs).toEqual(Array.from({ length: 3000 }, (_, k) => k + 1))
    for (const m of messages) expect(m.seqs.length).toBeLessThanOrEqual(2000)
    // 3000 changes committed in one turn: one message at the 2000 cap, then the rest.
    expect(messages.map((m) => m.seqs.length)).toEqual([2000, 1000])
  })

  it("a lone zync writer gets its own changes in its ack, not in a broadcast; the others get the broadcast", async () => {
    const s = await server()
    const doc = 'lone'
    const reader = await client(s.url, 't-reader')
    const writer = await client(s.url, 't-writer')
    const heard = { reader: [] as number[], writer: [] as number[] }
    reader.on('zync:changes', (raw: unknown) => heard.reader.push(...decodeChangesMessage(raw).changes.map((c) => c.seq)))
    writer.on('zync:changes', (raw: unknown) => heard.writer.push(...decodeChangesMessage(raw).changes.map((c) => c.seq)))
    for (const [sock, c] of [[reader, 'cr'], [writer, 'cw']] as const) expect((await ask(sock, 'zync:join', { v: 2, doc, client: c, since: 0 })).ok).toBe(true)
    const ops = [makeOp('cw', 1, ['rows', 'a'], 1), makeOp('cw', 2, ['rows', 'b'], 2)]
    // Compact (as the zync client sends): the answer carries the changes.
    const raw = (await writer.timeout(5000).emitWithAck('zync:ops', encodeOpsRequest({ doc, ops }))) as unknown
    const answer = decodeOpsResponse(raw, ops.map((o) => o.id))
    expect(answer).toMatchObject({ ok: true, seq: 2 })
    if (!answer.ok) throw new Error('refused')
    expect(answer.changes?.map((c) => [c.seq, c.client, c.path, c.value])).toEqual([
      [1, 'cw', ['rows', 'a'], 1],
      [2, 'cw', ['rows', 'b'], 2],
    ])
    await waitFor(() => heard.reader.length === 2, 5000, 'reader heard the broadcast')
    expect(heard.reader).toEqual([1, 2])
    // Object form (a raw client): the answer has no changes; the author hears the broadcast.
    const plain = await ask<{ ok: boolean; changes?: unknown }>(writer, 'zync:ops', { doc, ops: [makeOp('cw', 3, ['rows', 'c'], 3)] })
    expect(plain.ok).toBe(true)
    expect(plain.changes).toBeUndefined()
    await waitFor(() => heard.writer.length === 1, 5000, 'writer heard its object-form change')
    expect(heard.writer).toEqual([3])
  })
})
