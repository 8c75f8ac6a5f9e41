// A model trial and a Next.js trial: npm 11 can skip better-sqlite3's install script (a
// dependency not in allowScripts), leaving the package without its native module. zync-server then
// failed with the driver's list of every path it had tried; it now says what happened and the fix.
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'

vi.mock('better-sqlite3', () => ({
  default: class {
    constructor() {
      throw new Error('Could not locate the bindings file. Tried:\n → /app/node_modules/better-sqlite3/build/better_sqlite3.node\n → /app/node_modules/better-sqlite3/build/Release/better_sqlite3.node')
    }
  },
}))

const dir = mkdtempSync(path.join(os.tmpdir(), 'zync-unbuilt-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('SQLite storage with better-sqlite3 installed but not built', () => {
  it('refuses to start with a typed error that names the cause and the commands that fix it', async () => {
    const { createStorage } = await import('../../src/server/storage')
    const err = await createStorage({ kind: 'sqlite', file: path.join(dir, 'zync.db') }).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'ZyncError', code: 'STORAGE_UNAVAILABLE' })
    expect((err as Error).message).toMatch(/native module was not built .*npm install-scripts approve better-sqlite3 && npm rebuild better-sqlite3/)
    expect((err as Error).message).not.toMatch(/Tried:/)
  })
})
