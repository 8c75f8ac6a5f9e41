// The bundle size-limit checks (.size-limit.json): zync and zync/react together, so chunks they
// share are counted once. Peer dependencies are left out by size-limit; nanoid counts.
export * from '../dist/index.js'
export * from '../dist/react/index.js'
