// zync/styles.css in Chromium under both OS colour schemes: an app's own --zync-* rules win in either
// theme (zync's values have no specificity). A designer's trial found the OS dark values outranking an
// app's :root overrides, so its brand colours showed only on light-mode machines.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { CHROMIUM } from './browser'

const css = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'react', 'styles.css'), 'utf8')
let browser: Browser
beforeAll(async () => {
  browser = await chromium.launch(CHROMIUM)
})
afterAll(() => browser?.close())

/** --zync-accent where a component sits, under the OS scheme, the html/body/inner data-theme and the app's own CSS. */
async function accent(scheme: 'light' | 'dark', appCss: string, themes: { html?: string; body?: string; inner?: string } = {}): Promise<string> {
  const ctx = await browser.newContext({ colorScheme: scheme })
  try {
    const page = await ctx.newPage()
    const attr = (t?: string) => (t ? ` data-theme="${t}"` : '')
    await page.setContent(`<html${attr(themes.html)}><head><style>${css}</style><style>${appCss}</style></head><body${attr(themes.body)}><div${attr(themes.inner)}><span id="c"></span></div></body></html>`)
    return (await page.evaluate(() => getComputedStyle(document.getElementById('c')!).getPropertyValue('--zync-accent'))).trim()
  } finally {
    await ctx.close()
  }
}

it("an app's --zync-* overrides win under the OS dark scheme, on :root, on its own [data-theme='dark'] and in its own media query", async () => {
  expect(await accent('dark', ':root { --zync-accent: #ff0000 }')).toBe('#ff0000')
  expect(await accent('light', ':root { --zync-accent: #ff0000 }')).toBe('#ff0000')
  expect(await accent('dark', "[data-theme='dark'] { --zync-accent: #00ff00 }", { html: 'dark' })).toBe('#00ff00')
  expect(await accent('dark', '@media (prefers-color-scheme: dark) { :root { --zync-accent: #0000ff } }')).toBe('#0000ff')
})

it('without overrides, dark follows the OS unless data-theme says otherwise, on html or nested', async () => {
  expect(await accent('light', '')).toBe('#4f46e5')
  expect(await accent('dark', '')).toBe('#818cf8')
  expect(await accent('dark', '', { html: 'light' })).toBe('#4f46e5')
  expect(await accent('light', '', { html: 'dark' })).toBe('#818cf8')
  expect(await accent('light', '', { body: 'dark', inner: 'light' })).toBe('#4f46e5')
  expect(await accent('dark', '', { body: 'light', inner: 'dark' })).toBe('#818cf8')
})
