/**
 * A bench server in its own process, so its CPU does not share the clients' event loop.
 * argv: kind (zync | socketio | yjs) and, for zync, storage (memory | sqlite).
 * IPC: sends { type: 'ready', port }; answers { type: 'stats' } with bytes on the wire (all TCP
 * connections, both directions) and { type: 'heap' } with heapUsed after a full GC (needs --expose-gc).
 */
import { createServer, type Server as HttpServer } from 'node:http'
import type { Socket as NetSocket } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'

const kind = process.argv[2] ?? 'zync'
const storageKind = process.argv[3] ?? 'memory'
let cleanup: () => Promise<void> | void = () => {}

async function start(): Promise<HttpServer> {
  if (kind === 'zync') {
    const { createSyncServer } = await import('../../src/server/index')
    const dir = storageKind === 'sqlite' ? mkdtempSync(join(tmpdir(), 'zync-bench-')) : undefined
    const server = await createSyncServer({
      port: 0,
      host: '127.0.0.1',
      storage: dir ? { kind: 'sqlite', file: join(dir, 'bench.db') } : { kind: 'memory' },
      logLevel: 'silent',
      // The defaults (5,000 ops and 2,000 messages per second per socket, which zync clients pace
      // themselves to) would throttle a throughput bench and the round-trip ones (3: ~4,000 trips/s).
      limits: { opsPerSecond: 1e9, messagesPerSecond: 1e9, bytesPerSecond: 1e12, maxPayload: 64_000_000 },
    })
    cleanup = async () => {
      await server.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
    }
    return server.httpServer
  }
  if (kind === 'socketio') {
    const { Server } = await import('socket.io')
    const http = createServer()
    const io = new Server(http, { perMessageDeflate: false, httpCompression: false, maxHttpBufferSize: 64_000_000 })
    io.on('connection', (socket) => {
      // The bare round trip: take a message, acknowledge it.
      socket.on('op', (_payload: unknown, ack?: (r: unknown) => void) => ack?.({ ok: true }))
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    cleanup = () => new Promise<void>((r) => io.close(() => r()))
    return http
  }
  if (kind === 'yjs') {
    const { WebSocketServer } = await import('ws')
    const { setupWSConnection } = await import('y-websocket/bin/utils')
    const http = createServer()
    const wss = new WebSocketServer({ server: http })
    wss.on('connection', (conn, req) => setupWSConnection(conn, req, { gc: true }))
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    cleanup = () => new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate()
      wss.close(() => http.close(() => r()))
    })
    return http
  }
  throw new Error(`[bench] unknown server kind ${kind}`)
}

const http = await start()
const sockets = new Set<NetSocket>()
let closedBytes = 0
http.on('connection', (s: NetSocket) => {
  sockets.add(s)
  s.on('close', () => {
    sockets.delete(s)
    closedBytes += s.bytesRead + s.bytesWritten
  })
})

process.on('message', async (m: { type: string }) => {
  if (m.type === 'stats') {
    let bytes = closedBytes
    for (const s of sockets) bytes += s.bytesRead + s.bytesWritten
    process.send!({ type: 'stats', bytes, connections: sockets.size })
  } else if (m.type === 'heap') {
    const gc = (globalThis as { gc?: () => void }).gc
    for (let i = 0; i < 3; i++) {
      gc?.()
      await new Promise((r) => setTimeout(r, 20))
    }
    process.send!({ type: 'heap', heapUsed: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss, connections: sockets.size })
  } else if (m.type === 'close') {
    await cleanup()
    process.exit(0)
  }
})
// A bench that dies (timeout, Ctrl-C) must not leave its servers behind.
process.on('disconnect', () => process.exit(0))
process.send!({ type: 'ready', port: (http.address() as AddressInfo).port })
