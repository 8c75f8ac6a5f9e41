import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'
import { fileURLToPath } from 'node:url'

const r = (p: string) => fileURLToPath(new URL(p, import.meta.url))

// The demo imports the package by its public names; these map them to the sources (no build step).
export default defineConfig({
  root: r('.'),
  plugins: [react()],
  resolve: {
    alias: [
      { find: /^zync\/react$/, replacement: r('../src/react/index.ts') },
      { find: /^zync\/styles\.css$/, replacement: r('../src/react/styles.css') },
      { find: /^zync$/, replacement: r('../src/index.ts') },
    ],
  },
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1' },
  build: { outDir: r('../dist-demo'), emptyOutDir: true, sourcemap: true },
})
