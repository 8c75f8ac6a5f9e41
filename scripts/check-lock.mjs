// Checks that package-lock.json names every optional dependency of every locked package (such as
// rollup's native build for each platform). npm ci refuses a lockfile that lacks one, and a registry
// that serves only some platforms' builds lets npm install write such a lockfile without a word.
import { readFileSync } from 'node:fs'

const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'))
const missing = []
for (const [key, pkg] of Object.entries(lock.packages)) {
  for (const name of Object.keys(pkg.optionalDependencies ?? {})) {
    // Resolved as node does: the package's own node_modules, then each enclosing one up to the root.
    const found = key.split('/node_modules/').map((_, i, parts) => `${parts.slice(0, parts.length - i).join('/node_modules/')}/node_modules/${name}`.replace(/^\//, ''))
    if (!found.concat(`node_modules/${name}`).some((k) => lock.packages[k])) missing.push(`${name} (optional dependency of ${key || 'the root'})`)
  }
}
if (missing.length) {
  console.error(`package-lock.json lacks ${missing.length} optional package(s), so npm ci would refuse it:\n  ${missing.join('\n  ')}`)
  process.exit(1)
}
console.log(`package-lock.json: every optional dependency is locked (${Object.keys(lock.packages).length} entries)`)
