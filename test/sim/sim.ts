/**
 * Deterministic simulation of zync: N devices run the REAL SyncEngine (with MemoryOutboxStorage) against
 * the REAL DocHost/DocState (with MemoryStorage), over SimNetwork, on virtual time. One seed decides
 * everything: the weather (latency, lost and duplicated messages, batches the server refuses, failing
 * outbox writes), who edits what and when, partitions, disconnects, reloads, clock jumps, server
 * restarts and how the simulated users settle their conflicts. Some devices send small batches and
 * put records' fields in different lanes. After the weather clears and everyone has flushed,
 * `runSim` checks:
 * - every replica's state equals the server's;
 * - the server's log holds each op id once, and every op any device queued or saw acknowledged;
 * - the reference model (model.ts) agrees with every op's status and every field's value (except on
 *   records that are deleted and re-created or short-lived, and the `lists` collection written whole,
 *   where convergence and the rest still hold);
 * - each manual conflict was raised once on the device that wrote it (none if its own later write
 *   made it moot before it arrived), each app-function conflict ran the function once and wrote a
 *   resolution, and no inbox, outbox or dead-letter queue is left non-empty.
 */
import { deepEqual } from '../../src/core/diff'
import type { Path } from '../../src/core/path'
import { DocHost } from '../../src/server/doc-host'
import { MemoryStorage } from '../../src/server/storage/memory'
import { DOC, Device, ID_KEY, KIND, MAX_DRIFT, TEMPORARY, VOLATILE, newRecord, type DeviceWorld, type Field } from './device'
import { checkLog } from './model'
import { CALM, SimNetwork, SimServer, type Weather } from './network'
import { Rng, VirtualScheduler } from './scheduler'

export interface SimOptions {
  seed: number
  /** Devices (each may reload into new client ids). Default 8. */
  clients?: number
  /** Local edits in total over all devices. Default 2000. */
  ops?: number
  /** Records edited (few, so conflicts are frequent). Default 4. */
  entities?: number
  /** Print a line per notable event. */
  trace?: boolean
}

export interface SimStats {
  ops: number
  serverSeq: number
  conflictsRaised: number
  resolvedByUser: number
  resolverRuns: number
  superseded: number
  reloads: number
  partitions: number
  disconnects: number
  clockJumps: number
  /** Server restarts: every connection dies and the document is loaded again from storage. */
  restarts: number
  snapshots: number
  messages: number
  dropped: number
  duplicated: number
  connections: number
  virtualSeconds: number
  timers: number
  /** Wall time and CPU time of the run. */
  ms: number
  cpuMs: number
}

export interface SimResult {
  seed: number
  ok: boolean
  problems: string[]
  stats: SimStats
  /** Command that replays this run. */
  replay: string
  /** A digest of the final server state and log: equal for two runs of one seed. */
  fingerprint: string
}

export class Simulation implements DeviceWorld {
  readonly sched = new VirtualScheduler()
  readonly rng: Rng
  readonly net: SimNetwork
  readonly storage = new MemoryStorage()
  host!: DocHost
  readonly devices: Device[] = []
  healing = false
  /** 'sync:failed' events by error code (retries are normal under this weather). */
  readonly failures = new Map<string, number>()
  readonly stats: SimStats = {
    ops: 0,
    serverSeq: 0,
    conflictsRaised: 0,
    resolvedByUser: 0,
    resolverRuns: 0,
    superseded: 0,
    reloads: 0,
    partitions: 0,
    disconnects: 0,
    clockJumps: 0,
    restarts: 0,
    snapshots: 0,
    messages: 0,
    dropped: 0,
    duplicated: 0,
    connections: 0,
    virtualSeconds: 0,
    timers: 0,
    ms: 0,
    cpuMs: 0,
  }
  private readonly weather: Weather
  /** Server setting: clients further behind than this catch up from a snapshot. */
  private readonly snapshotEvery: number

  constructor(readonly o: Required<Omit<SimOptions, 'trace'>> & { trace: boolean }) {
    this.rng = new Rng(o.seed)
    const r = this.rng.fork(1)
    // Each seed gets its own climate: from a LAN to a bad mobile link.
    this.weather = {
      latency: [1, r.int(5, 400)],
      dup: r.chance(0.7) ? r.next() * 0.05 : 0,
      drop: r.chance(0.7) ? r.next() * 0.02 : 0,
      detect: [200, r.int(500, 15_000)],
      reconnect: [50, r.int(200, 5_000)],
      refuse: 0,
    }
    this.snapshotEvery = r.int(20, 500)
    // Drawn last, so the rest of each seed's climate stays what it was before refusals were modelled.
    if (r.chance(0.5)) this.weather.refuse = r.next() * 0.05
    this.net = new SimNetwork(this.sched, this.rng.fork(2), CALM)
  }

  trace(msg: string): void {
    if (this.o.trace) console.log(`[${((this.sched.now - 1_700_000_000_000) / 1000).toFixed(3)}s] ${msg}`)
  }

  async run(): Promise<SimResult> {
    const started = performance.now()
    const cpu = process.cpuUsage()
    this.sched.install()
    const problems: string[] = []
    // An exception thrown in a timer or a promise nobody awaits is a failure of this seed.
    const crashed = (err: unknown) => problems.push(`uncaught: ${(err as Error)?.stack ?? String(err)}`)
    process.on('uncaughtException', crashed)
    process.on('unhandledRejection', crashed)
    try {
      this.host = await this.loadHost()
      new SimServer(this.net, this.host)
      for (let i = 0; i < this.o.clients; i++) {
        const d = new Device(i, `u${i % 3}`, this.rng.fork(100 + i), this)
        this.devices.push(d)
        d.start()
      }
      await this.setup(problems)
      if (problems.length === 0) {
        await this.chaos()
        await this.heal(problems)
      }
      if (problems.length === 0) problems.push(...(await this.check()))
    } catch (err) {
      problems.push(`crashed: ${(err as Error)?.stack ?? String(err)}`)
    } finally {
      for (const d of this.devices) {
        try {
          await d.engine.destroy()
        } catch {
          // already gone
        }
      }
      this.sched.uninstall()
      process.off('uncaughtException', crashed)
      process.off('unhandledRejection', crashed)
    }
    Object.assign(this.stats, {
      serverSeq: this.host?.seq ?? 0,
      messages: this.net.stats.messages,
      snapshots: this.net.stats.snapshots,
      dropped: this.net.stats.dropped,
      duplicated: this.net.stats.duplicated,
      connections: this.net.stats.connections,
      virtualSeconds: Math.round((this.sched.now - 1_700_000_000_000) / 1000),
      timers: this.sched.steps,
      ms: Math.round(performance.now() - started),
      cpuMs: Math.round(process.cpuUsage(cpu).user / 1000 + process.cpuUsage(cpu).system / 1000),
    })
    for (const d of this.devices) {
      for (const n of d.raised.values()) this.stats.conflictsRaised += n
      for (const n of d.resolverRuns.values()) this.stats.resolverRuns += n
    }
    return {
      seed: this.o.seed,
      ok: problems.length === 0,
      problems,
      stats: this.stats,
      replay: `npm run fuzz -- --seed ${this.o.seed} --clients ${this.o.clients} --ops ${this.o.ops} --entities ${this.o.entities}`,
      fingerprint: this.host ? fingerprint(this.host.current().state, this.host.seq) : '',
    }
  }

  private allSettled(): boolean {
    const seq = this.host.seq
    return this.devices.every((d) => d.settled(seq))
  }

  /** Device 0 creates the records; everyone syncs up before the weather turns. */
  private async setup(problems: string[]): Promise<void> {
    const d0 = this.devices[0]!
    await this.sched.run(this.sched.now + 5_000, () => d0.engine.status().ready)
    const cards: Record<string, unknown> = {}
    for (let i = 0; i < this.o.entities; i++) cards[`r${i}`] = newRecord('')
    cards[VOLATILE] = newRecord('')
    d0.state = { ...d0.state, cards }
    d0.engine.notifyLocalChange()
    const ok = await this.sched.run(this.sched.now + 60_000, () => this.host.seq >= this.o.entities + 1 && this.allSettled())
    if (!ok) problems.push('setup did not settle within 60 s of virtual time')
  }

  private async chaos(): Promise<void> {
    this.net.weather = this.weather
    const rng = this.rng.fork(3)
    const meanGap = rng.int(5, 80)
    let remaining = this.o.ops
    let done = false
    const nextEdit = () => {
      if (remaining <= 0) {
        done = true
        return
      }
      const gap = Math.floor(-Math.log(1 - rng.next()) * meanGap)
      this.sched.after(gap, () => {
        const d = rng.pick(this.devices)
        if (d.edit()) {
          remaining--
          this.stats.ops++
        }
        nextEdit()
      })
    }
    nextEdit()
    const events = () => {
      if (done) return
      this.sched.after(rng.int(200, 6_000), () => {
        if (done) return
        this.event(rng)
        events()
      })
    }
    events()
    await this.sched.run(Number.MAX_SAFE_INTEGER, () => done)
  }

  /** One piece of bad luck. */
  private event(rng: Rng): void {
    const d = rng.pick(this.devices)
    const roll = rng.next()
    if (roll < 0.3) {
      this.stats.partitions++
      this.trace(`${d.clientId} partitioned`)
      this.net.partition(d.transport)
      this.sched.after(rng.int(300, 25_000), () => this.net.heal(d.transport.device))
    } else if (roll < 0.55) {
      if (d.offline || d.reloading) return
      this.stats.disconnects++
      this.trace(`${d.clientId} goes offline`)
      d.offline = true
      d.engine.disconnect()
      this.sched.after(rng.int(500, 40_000), () => {
        d.offline = false
        if (!d.reloading) d.engine.connect()
      })
    } else if (roll < 0.7) {
      void d.reload().catch((err: Error) => d.errors.push(`reload failed: ${err.stack ?? err}`))
    } else if (roll < 0.85) {
      // Someone changes the system clock: up to 10 minutes either way (the server clamps at 1 minute).
      this.stats.clockJumps++
      d.offset = rng.chance(0.5) ? rng.int(-600_000, 600_000) : 0
    } else if (roll < 0.97) {
      // A burst: the same device edits several fields in one tick (one capture, several ops).
      for (let i = rng.int(2, 6); i > 0; i--) if (d.edit()) this.stats.ops++
    } else {
      void this.restartServer().catch((err: Error) => d.errors.push(`server restart failed: ${err.stack ?? err}`))
    }
  }

  /**
   * The server process restarts (between two timers, so no request is half done): every connection
   * dies, and the new process loads the document from storage (snapshot and log) as it would after a
   * crash. Clients reconnect and catch up; nothing acknowledged may be missing.
   */
  private async restartServer(): Promise<void> {
    this.stats.restarts++
    this.trace('server restarts')
    for (const d of this.devices) d.transport.breakConnection()
    this.host = await this.loadHost()
    new SimServer(this.net, this.host)
  }

  private loadHost(): Promise<DocHost> {
    return DocHost.load(DOC, this.storage, { now: () => this.sched.now, maxDriftMs: MAX_DRIFT, snapshotEvery: this.snapshotEvery })
  }

  /** The weather clears, everyone comes back online and settles their conflicts. */
  private async heal(problems: string[]): Promise<void> {
    this.healing = true
    this.net.weather = CALM
    this.net.healAll()
    await this.sched.run(this.sched.now + 1_000, () => !this.devices.some((d) => d.reloading))
    for (const d of this.devices) {
      // Only devices the user took offline are told to connect: a connect() on a live engine would
      // force a fresh join and hide a replica that silently fell behind.
      if (d.offline && !d.reloading) d.engine.connect()
      d.offline = false
      if (!d.reloading) for (const c of d.engine.conflicts()) d.scheduleResolve(c.id)
    }
    const ok = await this.sched.run(this.sched.now + 30 * 60_000, () => this.allSettled())
    if (!ok) {
      const seq = this.host.seq
      for (const d of this.devices) {
        if (d.settled(seq)) continue
        const s = d.engine.status()
        problems.push(
          `${d.clientId} did not settle: connection ${s.connection}, seq ${s.seq}/${seq}, pending ${s.pending}, unpersisted ${s.unpersisted}, conflicts ${s.conflicts}, dead ${s.deadLetters}, syncing ${s.syncing}${s.error ? `, error ${s.error.code}` : ''}`,
        )
      }
    }
  }

  private async check(): Promise<string[]> {
    const problems: string[] = []
    const state = this.host.current().state
    const log = await this.storage.readLog(DOC, 0)
    if (log.length !== this.host.seq) problems.push(`log has ${log.length} entries, head is ${this.host.seq}`)
    const logged = new Map(log.map((e) => [e.opId, e]))

    // 1. Every replica equals the server.
    for (const d of this.devices) {
      if (!deepEqual(d.state, state)) problems.push(`${d.clientId} diverged from the server: ${firstDifference(d.state, state)}`)
      for (const e of d.errors) problems.push(`${d.clientId}: ${e}`)
      if (d.engine.deadLetters().length > 0) problems.push(`${d.clientId} has ${d.engine.deadLetters().length} dead letters`)
    }
    // 2. Nothing queued or acknowledged is missing; nothing applied twice (checkLog counts ids).
    for (const d of this.devices) {
      for (const id of d.queued) if (!logged.has(id)) problems.push(`${d.clientId}: queued op ${id} never reached the log`)
      for (const id of d.cancelled) if (logged.has(id)) problems.push(`${d.clientId}: cancelled op ${id} reached the log`)
      for (const id of [...d.acked, ...d.transport.acked]) if (!logged.has(id)) problems.push(`${d.clientId}: acknowledged op ${id} is not in the log`)
    }
    // 3. The reference model.
    problems.push(
      ...checkLog(log, state, {
        kindOf: (f) => KIND[f as Field] ?? 'lww',
        idKey: ID_KEY,
        maxDriftMs: MAX_DRIFT,
        // `lists` is written whole and dropped (device.ts editLists): convergence and the log-wide checks.
        volatile: (entity) => entity === `cards/${VOLATILE}` || entity.startsWith(`cards/${TEMPORARY}`) || entity === 'lists' || entity.startsWith('lists/'),
      }),
    )
    // 4. Conflicts: raised once on the writing device, unless its own later write made them moot first.
    const deviceOf = new Map<string, Device>()
    for (const d of this.devices) for (const c of d.clientIds) deviceOf.set(c, d)
    const laterOwnWrite = (e: (typeof log)[number], d: Device) => log.some((x) => x.seq > e.seq && pathEq(x.path, e.path) && d.clientIds.includes(x.client))
    for (const e of log) {
      if (e.status === 'superseded') this.stats.superseded++
      if (e.status !== 'conflict') continue
      const d = deviceOf.get(e.client)
      if (!d) {
        problems.push(`conflict ${e.opId} by unknown client ${e.client}`)
        continue
      }
      if (e.policy === 'manual') {
        const n = d.raised.get(e.opId) ?? 0
        if (n > 1) problems.push(`conflict ${e.opId} was raised ${n} times on ${d.clientId}`)
        if (n === 0 && !laterOwnWrite(e, d)) problems.push(`conflict ${e.opId} (seq ${e.seq}, ${e.path.join('.')}) was never raised on ${d.clientId}`)
      } else if (e.policy === 'custom') {
        const n = d.resolverRuns.get(e.opId) ?? 0
        if (n > 1) problems.push(`the app function ran ${n} times for conflict ${e.opId}`)
        if (n === 0 && !laterOwnWrite(e, d)) problems.push(`the app function never ran for conflict ${e.opId} (seq ${e.seq})`)
        if (n === 1 && !log.some((x) => x.resolves === e.opId)) problems.push(`no resolution op in the log for app-function conflict ${e.opId}`)
      } else problems.push(`seq ${e.seq}: conflict status under policy ${e.policy}`)
    }
    for (const d of this.devices) {
      for (const id of d.raised.keys()) {
        const e = logged.get(id)
        if (!e || e.status !== 'conflict' || !d.clientIds.includes(e.client)) problems.push(`${d.clientId} raised conflict ${id}, which is not a conflict of its own`)
      }
      for (const id of d.userResolved) if (!log.some((x) => x.resolves === id)) problems.push(`${d.clientId} resolved ${id} but no resolution op reached the log`)
    }
    return problems
  }
}

function pathEq(a: Path, b: Path): boolean {
  return a.length === b.length && a.every((x, i) => String(x) === String(b[i]))
}

function firstDifference(a: unknown, b: unknown, path = ''): string {
  if (deepEqual(a, b)) return ''
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k)
      if (d) return d
    }
  }
  return `${path || '(root)'}: replica ${JSON.stringify(a)?.slice(0, 300)} vs server ${JSON.stringify(b)?.slice(0, 300)}`
}

function fingerprint(state: unknown, seq: number): string {
  const s = JSON.stringify(state)
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return `${seq}:${(h >>> 0).toString(16)}`
}

export async function runSim(o: SimOptions): Promise<SimResult> {
  const sim = new Simulation({ seed: o.seed, clients: o.clients ?? 8, ops: o.ops ?? 2000, entities: o.entities ?? 4, trace: o.trace ?? false })
  return sim.run()
}
