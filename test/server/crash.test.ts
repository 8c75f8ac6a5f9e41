// Crash durability: kill -9 the server right after it acknowledged writes, restart it on the same
// storage, and every acknowledged op is there. 20 kills per backend, against real child processes.
import path from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { setAt } from '../../src/core/patch'
import type { Change, JoinResponse, OpResult } from '../../src/core/protocol'
import { PostgresStorage } from '../../src/server/storage/postgres'
import { SqliteStorage } from '../../src/server/storage/sqlite'
import type { ServerStorage } from '../../src/server/storage/types'
import { ask, connectRaw, dropPgSchemas, makeOp, startCli, tempDir, uniqueName } from './helpers'

const KILLS = 20
const DOC = 'crash-doc'

/** The document as a restarted server hands it to a new client: snapshot (if any) plus changes. */
function stateOf(join: Extract<JoinResponse, { ok: true }>): Record<string, unknown> {
  let state: Record<string, unknown> = join.snapshot ? join.snapshot.state : {}
  for (const c of join.changes as Change[]) if (c.status === 'applied') state = setAt(state, c.path, c.value, c.kind === 'delete')
  return state
}

async function crashLoop(name: string, args: string[], open: () => Promise<ServerStorage>) {
  const acked: string[] = []
  let unacked = 0
  const started = Date.now()
  for (let round = 0; round <= KILLS; round++) {
    const p = await startCli(args)
    const sock = await connectRaw(p.url)
    try {
      const join = await ask<JoinResponse>(sock, 'zync:join', { v: 2, doc: DOC, client: `c${round}`, since: 0 })
      if (!join.ok) throw new Error(JSON.stringify(join))
      // Everything acknowledged before any of the previous kills survived the restart.
      const items = (stateOf(join).items ?? {}) as Record<string, unknown>
      const missing = acked.filter((id) => !(id in items))
      expect(missing, `round ${round}: acknowledged ops lost`).toEqual([])
      if (round === KILLS) break

      // Stream batches, 4 in flight, and kill -9 inside the callback of the k-th acknowledgement.
      const killAfter = 1 + ((round * 7) % 9)
      const client = `c${round}`
      let n = 0
      await new Promise<void>((resolve) => {
        let acks = 0
        let killed = false
        const sendOne = () => {
          if (killed) return
          const ops = Array.from({ length: 5 }, () => ++n).map((i) => makeOp(client, i, ['items', `${client}-${i}`], { round, i }))
          for (const o of ops) o.path = ['items', o.id]
          sock.timeout(10_000).emit('zync:ops', { doc: DOC, ops }, (err: Error | null, res?: { ok: boolean; results: OpResult[] }) => {
            if (killed) return void (unacked += ops.length)
            if (err || !res?.ok) throw new Error(`unexpected answer before the kill: ${String(err ?? JSON.stringify(res))}`)
            for (const r of res.results) if (r.ok) acked.push(r.id)
            if (++acks >= killAfter) {
              killed = true
              p.proc.kill('SIGKILL')
              resolve()
            } else sendOne()
          })
        }
        for (let i = 0; i < 4; i++) sendOne()
      })
      expect((await p.exited).signal).toBe('SIGKILL')
    } finally {
      sock.disconnect()
      await p.kill()
    }
  }
  // And storage agrees: every acknowledged op id recorded once, the log gapless.
  const s = await open()
  try {
    const found = await s.findOps(DOC, acked)
    expect(found.size).toBe(acked.length)
    const head = await s.head(DOC)
    const log = await s.readLog(DOC, 0)
    expect(log.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1))
    expect(new Set(log.map((e) => e.opId)).size).toBe(log.length)
  } finally {
    await s.close()
  }
  const ms = Date.now() - started
  console.log(`${name}: ${KILLS} kill -9s, ${acked.length} acknowledged ops all recovered, ${unacked} in flight at kills; ${ms} ms`)
  return ms
}

describe('crash durability (kill -9 right after acknowledgements)', () => {
  const dir = tempDir('zync-crash-')
  const pgUrl = inject('pgUrl')
  const schema = uniqueName('zync_crash')
  afterAll(async () => {
    dir.remove()
    await dropPgSchemas(pgUrl, schema)
  })

  it(`SQLite: ${KILLS} kills, no acknowledged op lost`, async () => {
    const file = path.join(dir.dir, 'crash.db')
    const ms = await crashLoop('SQLite', ['--port', '0', '--data', file, '--log-level', 'warn'], async () => {
      const s = new SqliteStorage({ file })
      await s.init()
      return s
    })
    expect(ms).toBeLessThan(60_000)
  }, 90_000)

  it(`PostgreSQL: ${KILLS} kills, no acknowledged op lost`, async () => {
    const ms = await crashLoop('PostgreSQL', ['--port', '0', '--postgres', pgUrl, '--schema', schema, '--log-level', 'warn'], async () => {
      const s = new PostgresStorage({ connectionString: pgUrl, schema })
      await s.init()
      return s
    })
    expect(ms).toBeLessThan(60_000)
  }, 90_000)
})
