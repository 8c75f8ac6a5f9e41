// `npm run bench` / `npm run bench:smoke`: bundles the bench and zync's source with esbuild, as tsup
// builds dist (no keepNames: tsx wraps every closure zync creates in a __name() call, which the shipped
// code does not pay), then runs the bundle with node. Peers and baselines (socket.io, yjs, ...) stay in
// node_modules, untouched. Arguments are passed on (--smoke, --only=4).
import { build } from 'esbuild'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const out = `${root}node_modules/.cache/zync-bench`
await build({
  entryPoints: { run: `${root}bench/run.ts`, server: `${root}bench/servers/server.ts` },
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Imports of packages stay imports; from node_modules/.cache they resolve to the root's node_modules.
  packages: 'external',
  logLevel: 'warning',
})
const child = spawn(process.execPath, [...process.execArgv, `${out}/run.mjs`, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, ZYNC_BENCH_ROOT: root, ZYNC_BENCH_SERVER: `${out}/server.mjs` },
})
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
