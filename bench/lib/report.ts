/** Result rows, the console table and docs/BENCHMARKS.md. */
import { cpus, totalmem } from 'node:os'
import { readFileSync } from 'node:fs'
import { fromRoot } from './paths'

export type Cmp = '<=' | '>='

export interface Check {
  /** What is compared, e.g. 'p50 ratio' or 'ops/s'. */
  label: string
  value: number
  limit: number
  cmp: Cmp
  /** How to print value and limit: 'x' (ratio), 'ms', 'ops/s', 'kB'. */
  unit: string
}

export interface Figure {
  /** Printed figure, e.g. median with unit. */
  median: number
  p99?: number
  unit: string
}

export interface Result {
  target: string
  scenario: string
  zync: Figure
  baseline?: Figure & { name: string }
  ratio?: number
  checks: Check[]
  note?: string
  /** Extra figures reported beside (e.g. SQLite, 50 readers, peers' bundle sizes). */
  extra?: Array<{ name: string; value: string }>
}

export function pass(c: Check): boolean {
  return c.cmp === '<=' ? c.value <= c.limit : c.value >= c.limit
}

export function fmt(v: number | undefined, unit: string): string {
  if (v === undefined || Number.isNaN(v)) return 'n/a'
  if (unit === 'x') return `${v.toFixed(2)}x`
  if (unit === 'µs') return `${v < 10 ? v.toFixed(2) : v.toFixed(1)} µs`
  if (unit === 'ms') return `${v < 10 ? v.toFixed(3) : v.toFixed(1)} ms`
  if (unit === 'ops/s') return `${Math.round(v).toLocaleString('en-US')} ops/s`
  if (unit === 'kB') return `${v.toFixed(2)} kB`
  if (unit === 'B') return `${Math.round(v).toLocaleString('en-US')} B`
  return `${v} ${unit}`
}

function figure(f: Figure | undefined): string {
  if (!f) return ''
  return f.p99 !== undefined ? `${fmt(f.median, f.unit)} (p99 ${fmt(f.p99, f.unit)})` : fmt(f.median, f.unit)
}

function checkText(c: Check): string {
  return `${c.label} ${fmt(c.value, c.unit)} ${c.cmp === '<=' ? '≤' : '≥'} ${fmt(c.limit, c.unit)}`
}

export function rows(results: Result[]): string[][] {
  return results.map((r) => [
    r.target,
    r.scenario,
    figure(r.zync),
    r.baseline ? (Number.isNaN(r.baseline.median) ? r.baseline.name : `${r.baseline.name}: ${figure(r.baseline)}`) : '',
    r.ratio !== undefined ? fmt(r.ratio, 'x') : '',
    r.checks.map(checkText).join('; '),
    r.checks.every(pass) ? 'pass' : 'MISS',
  ])
}

const HEAD = ['#', 'scenario', 'zync', 'baseline', 'ratio', 'target', 'result']

export function printTable(results: Result[]): void {
  const body = rows(results)
  const w = HEAD.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)))
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join(' | ')
  console.log(line(HEAD))
  console.log(w.map((n) => '-'.repeat(n)).join('-|-'))
  for (const r of body) console.log(line(r))
  const extras = results.filter((r) => r.extra?.length)
  for (const r of extras) for (const e of r.extra!) console.log(`  [${r.target}] ${e.name}: ${e.value}`)
}

function version(pkg: string): string {
  try {
    return JSON.parse(readFileSync(fromRoot(`node_modules/${pkg}/package.json`), 'utf8')).version as string
  } catch {
    return 'not installed'
  }
}

export const PACKAGES = ['zustand', 'immer', 'dexie', 'fake-indexeddb', 'socket.io', 'socket.io-client', 'yjs', 'y-websocket', 'ws', 'better-sqlite3', 'tinybench', 'esbuild', '@liveblocks/client', 'replicache']

export function machine() {
  const c = cpus()
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    zync: version('..'),
    packages: Object.fromEntries(PACKAGES.map((p) => [p, version(p)])),
  }
}

/**
 * How many CPUs' worth of work the machine does at once, measured: a fixed spin timed in one worker
 * thread, then in as many threads as there are cores at once. On a VM the reported cores can share one
 * CPU's time: then the client and server processes of the network scenarios do not overlap, and a
 * throughput is bound by their CPU per op added together.
 */
export async function parallelism(): Promise<number> {
  const { Worker } = await import('node:worker_threads')
  const spin = `let x = 0; const t0 = performance.now(); for (let i = 0; i < 2e8; i++) x = (x + i) % 1000003; require('node:worker_threads').parentPort.postMessage(performance.now() - t0 + x * 0)`
  const run = (n: number): Promise<number[]> => Promise.all(Array.from({ length: n }, () => new Promise<number>((resolve, reject) => {
    const w = new Worker(spin, { eval: true })
    w.once('message', (ms: number) => void w.terminate().then(() => resolve(ms)))
    w.once('error', reject)
  })))
  const [one] = await run(1)
  const many = await run(cpus().length)
  // Each worker did the same work: with n CPUs' worth it takes as long as alone.
  return (cpus().length * one!) / Math.max(...many)
}

function mdRow(cells: string[]): string {
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`
}

export function markdown(results: Result[], meta: ReturnType<typeof machine> & { parallelism?: { start: number; end: number }; date: string; durationS: number; loadAverage: { start: number; end: number } }, notes: string[], causes: Record<string, string[]> = {}): string {
  const out: string[] = []
  out.push('# Benchmarks')
  out.push('')
  out.push('Generated by `npm run bench` (bench/run.ts); do not edit by hand. Every figure is compared with a baseline measured in the same run on the same machine, so read the ratios, not the absolute times. Raw figures: bench/results.json.')
  out.push('')
  out.push('## Machine')
  out.push('')
  out.push(`- CPU: ${meta.cpu}, ${meta.cores} cores, ${meta.memoryGb} GB`)
  out.push(`- Node ${meta.node} on ${meta.platform}`)
  if (meta.parallelism) out.push(`- Measured parallelism: ${meta.parallelism.start.toFixed(2)} CPUs' worth of work at once at the start and ${meta.parallelism.end.toFixed(2)} at the end, on ${meta.cores} cores (a fixed spin in ${meta.cores} threads at once against one alone; it moves from second to second here, as neighbours take CPU time). Below the core count, the processes of a network scenario (client, server) partly take turns instead of overlapping, so a throughput tends towards the sum of their CPU per op`)
  out.push(`- Run: ${meta.date}, ${meta.durationS.toFixed(0)} s, 1-minute load average ${meta.loadAverage.start.toFixed(1)} at the start and ${meta.loadAverage.end.toFixed(1)} at the end (the machine is shared)`)
  out.push(`- Versions: ${Object.entries(meta.packages).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  out.push('')
  out.push('## Results')
  out.push('')
  out.push(mdRow(HEAD))
  out.push(mdRow(HEAD.map(() => '---')))
  for (const r of rows(results)) out.push(mdRow(r.map((c, i) => (i === 6 ? (c === 'pass' ? 'pass' : '**miss**') : c))))
  out.push('')
  const extras = results.filter((r) => r.extra?.length || r.note)
  if (extras.length) {
    out.push('## Details')
    out.push('')
    for (const r of extras) {
      out.push(`- **${r.target}. ${r.scenario}.**${r.note ? ` ${r.note}` : ''}`)
      for (const e of r.extra ?? []) out.push(`  - ${e.name}: ${e.value}`)
    }
    out.push('')
  }
  const missed = results.filter((r) => !r.checks.every(pass) && causes[r.target])
  if (missed.length) {
    out.push('## Why the missed targets are missed')
    out.push('')
    out.push('From CPU profiles of the bench processes and per-stage timings (client and server stamping one monotonic clock); the text is bench/causes.ts.')
    out.push('')
    for (const r of missed) {
      out.push(`- **${r.target}. ${r.scenario}.**`)
      for (const line of causes[r.target]!) out.push(`  - ${line}`)
    }
    out.push('')
  }
  if (notes.length) {
    out.push('## How each figure is measured')
    out.push('')
    for (const n of notes) out.push(`- ${n}`)
    out.push('')
  }
  return out.join('\n')
}
