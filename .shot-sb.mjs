import { chromium } from 'playwright-core'
import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { extname, join } from 'node:path'
const root = '/tmp/sb-static'
const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.woff2': 'font/woff2' }
const srv = createServer(async (req, res) => { try { const p = join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname)); const f = p.endsWith('/') ? p + 'index.html' : p; const data = await readFile(f); res.writeHead(200, { 'content-type': types[extname(f)] ?? 'application/octet-stream' }); res.end(data) } catch { res.writeHead(404); res.end() } })
await new Promise((r) => srv.listen(0, '127.0.0.1', r))
const port = srv.address().port
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] })
const page = await b.newPage({ viewport: { width: Number(process.env.W ?? 900), height: Number(process.env.H ?? 300) } })
for (const id of process.argv.slice(2)) {
  await page.goto(`http://127.0.0.1:${port}/iframe.html?id=${id}&viewMode=story`)
  await page.waitForTimeout(800)
  await page.screenshot({ path: `/tmp/shots/${id}.png` })
}
await b.close(); srv.close()
