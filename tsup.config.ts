import { defineConfig } from 'tsup'

const peers = [
  'react',
  'react-dom',
  'react/jsx-runtime',
  'zustand',
  'zustand/vanilla',
  'immer',
  'dexie',
  'socket.io-client',
  '@tanstack/react-query',
  'socket.io',
  'better-sqlite3',
  'pg',
  '@socket.io/redis-adapter',
  'redis',
  'prom-client',
  'zod',
]

const entry = {
  index: 'src/index.ts',
  'react/index': 'src/react/index.ts',
  'react-query/index': 'src/react-query/index.ts',
  'server/index': 'src/server/index.ts',
  // Not exported: these two entries put the modules that import dexie and socket.io-client in chunks of
  // their own, so an app's bundler drops them (and those peers, which are not side-effect free) when the
  // app imports only other things from 'zync', e.g. ZyncError in server code.
  'internal/dexie': 'src/adapters/dexie-storage.ts',
  'internal/socket-io': 'src/adapters/socket-io.ts',
}

export default defineConfig([
  {
    entry,
    format: ['esm'],
    dts: true,
    splitting: true,
    sourcemap: true,
    target: 'es2022',
    external: peers,
    outDir: 'dist',
    treeshake: true,
  },
  {
    // nanoid 5 is ESM only: bundled into the CommonJS build, so require('zync') also works on Node
    // versions without require(esm) (before 20.19).
    entry,
    format: ['cjs'],
    dts: true,
    splitting: true,
    sourcemap: true,
    target: 'es2022',
    external: peers,
    noExternal: ['nanoid'],
    outDir: 'dist',
    treeshake: true,
  },
  {
    entry: { 'server/cli': 'src/server/cli.ts' },
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    external: peers,
    outDir: 'dist',
    // The source's own shebang line is kept by the bundler: a banner would add a second one.
  },
])
