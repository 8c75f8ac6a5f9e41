// Vitest globalSetup of the e2e project: builds the demo once (a static build is faster and steadier
// in the browser than the dev server) and hands its folder to the test files: `inject('demoDir')`.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    demoDir: string
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const outDir = mkdtempSync(join(tmpdir(), 'zync-demo-e2e-'))
  const started = Date.now()
  await build({
    configFile: fileURLToPath(new URL('../../demo/vite.config.ts', import.meta.url)),
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true, sourcemap: true, minify: false },
  })
  process.stdout.write(`e2e: demo built in ${Date.now() - started} ms\n`)
  project.provide('demoDir', outDir)
  return () => rmSync(outDir, { recursive: true, force: true })
}
