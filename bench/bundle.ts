/**
 * Target 8a: bundle size. zync + zync/react are bundled from src with esbuild the way size-limit does
 * it in CI (.size-limit.json: minified, gzip level 9, peer dependencies left out, nanoid counted);
 * yjs, @liveblocks/client and replicache are bundled whole from node_modules with the same settings.
 */
import { build } from 'esbuild'
import { gzipSync } from 'node:zlib'
import { readFileSync, existsSync } from 'node:fs'
import type { Result } from './lib/report'
import { ROOT } from './lib/paths'

const root = ROOT
const LIMIT_KB = 8

async function size(contents: string, resolveDir: string, external: string[]): Promise<{ min: number; gzip: number; inputs: Array<[string, number]> }> {
  const r = await build({
    stdin: { contents, resolveDir, loader: 'ts' },
    bundle: true,
    minify: true,
    treeShaking: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'browser',
    jsx: 'automatic',
    loader: { '.css': 'empty' },
    external,
    logLevel: 'silent',
  })
  const out = r.outputFiles[0]!.contents
  const meta = Object.values(r.metafile.outputs)[0]!
  const inputs = Object.entries(meta.inputs).map(([k, v]) => [k, v.bytesInOutput] as [string, number])
  return { min: out.length, gzip: gzipSync(out, { level: 9 }).length, inputs }
}

const kb = (b: number) => b / 1000

export async function runBundle(): Promise<Result[]> {
  const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { peerDependencies: Record<string, string> }
  const peers = Object.keys(pkg.peerDependencies)
  const ours = await size("export * from './src/index.ts'\nexport * from './src/react/index.ts'\n", root, peers)
  const top = ours.inputs
    .filter(([k]) => k.startsWith('src/'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} kB`)
    .join(', ')
  const others: Array<{ name: string; value: string }> = []
  for (const name of ['yjs', '@liveblocks/client', 'replicache']) {
    if (!existsSync(`${root}/node_modules/${name}/package.json`)) {
      others.push({ name, value: 'not installed' })
      continue
    }
    const version = (JSON.parse(readFileSync(`${root}/node_modules/${name}/package.json`, 'utf8')) as { version: string }).version
    try {
      const s = await size(`export * from '${name}'\n`, root, [])
      others.push({ name: `${name} ${version}`, value: `${kb(s.gzip).toFixed(2)} kB min+gzip (${kb(s.min).toFixed(1)} kB min, whole package with its dependencies)` })
    } catch (err) {
      others.push({ name, value: `could not be bundled: ${(err as Error).message.split('\n')[0]}` })
    }
  }
  return [
    {
      target: '8a',
      scenario: 'bundle: zync + zync/react, own code (peers excluded)',
      zync: { median: kb(ours.gzip), unit: 'kB' },
      baseline: { name: others.map((o) => `${o.name.replace(/ [\d.]+$/, '')} ${o.value.split(' (')[0]}`).join('; '), median: NaN, unit: 'kB' },
      checks: [{ label: 'min+gzip', value: kb(ours.gzip), limit: LIMIT_KB, cmp: '<=', unit: 'kB' }],
      note: `${kb(ours.min).toFixed(1)} kB minified. Largest modules (minified): ${top}. CI checks the built dist with size-limit (.size-limit.json).`,
      extra: others,
    },
  ]
}
