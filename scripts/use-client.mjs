// After tsup: marks zync/react's entry files (ESM and CommonJS) as client modules with a leading
// "use client" directive, so a React Server Component that imports them gets a clear error, and a
// bundler such as Next.js's treats them as client code. The source map gains one empty line first.
import { readFileSync, writeFileSync } from 'node:fs'

for (const file of ['dist/react/index.js', 'dist/react/index.cjs']) {
  const code = readFileSync(file, 'utf8')
  if (code.startsWith('"use client"')) continue
  writeFileSync(file, `"use client";\n${code}`)
  const mapFile = `${file}.map`
  const map = JSON.parse(readFileSync(mapFile, 'utf8'))
  map.mappings = `;${map.mappings}`
  writeFileSync(mapFile, JSON.stringify(map))
}
