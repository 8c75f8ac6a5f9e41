// Types for `import 'zync/styles.css'`: a side-effect import of the components' stylesheet, which
// TypeScript checks for declarations too (TS2882 without them).
export {}
