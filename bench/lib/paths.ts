import { fileURLToPath } from 'node:url'

/**
 * The repository root. `npm run bench` runs an esbuild bundle of the bench from node_modules/.cache
 * (bench/launch.mjs), where `import.meta.url` no longer points into bench/: the launcher passes the
 * root in ZYNC_BENCH_ROOT. Run from source (`node --import tsx bench/run.ts`), it is found from here.
 */
export const ROOT = process.env.ZYNC_BENCH_ROOT ?? fileURLToPath(new URL('../..', import.meta.url))

/** A path under the repository root. */
export const fromRoot = (p: string): string => `${ROOT.replace(/\/$/, '')}/${p}`
