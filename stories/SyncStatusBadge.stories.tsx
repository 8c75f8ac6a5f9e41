import type { Meta, StoryObj } from '@storybook/react-vite'
import type React from 'react'
import { expect, screen, userEvent } from 'storybook/test'
import { SyncStatusBadge } from 'zync/react'
import { ZyncError } from '../src/core/errors'
import { createFixtureStore, resetStore, sampleError, samples, storageError } from './fixtures'
import { withRootFontSize } from './decorators'

const meta = {
  title: 'Status/SyncStatusBadge',
  component: SyncStatusBadge,
  args: { store: createFixtureStore() },
  argTypes: {
    store: { control: false },
    // Typed `T | undefined` (exactOptionalPropertyTypes), which Storybook cannot infer a control from: listed here.
    className: { control: 'text', type: 'string', description: 'Extra class on the badge.', table: { defaultValue: { summary: 'none' } } },
    labels: { control: 'object', description: 'Replaces any of the English texts (online, offline, unreachable, refused, syncing, error, conflict, pending, conflicts, failed, readOnly, why, ...).', table: { defaultValue: { summary: 'the English texts' } } },
  },
  beforeEach: resetStore,
} satisfies Meta<typeof SyncStatusBadge>

export default meta
type Story = StoryObj<typeof meta>

export const Online: Story = {
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    await expect(badge).toHaveTextContent('Synced')
    await expect(badge).toHaveAttribute('data-state', 'online')
  },
}

export const Syncing: Story = {
  args: { store: createFixtureStore({ pending: 3, status: { syncing: true } }) },
  play: async () => {
    await expect((await screen.findByRole('status')).closest('.zync-badge')).toHaveTextContent('Syncing3 pending')
    // Only the state is announced: counts change with every edit.
    await expect(screen.getByRole('status')).toHaveTextContent(/^Syncing$/)
  },
}

export const OfflineNothingPending: Story = {
  args: { store: createFixtureStore({ status: { connection: 'offline' } }) },
}

export const OfflineThreePending: Story = {
  args: { store: createFixtureStore({ pending: 3, status: { connection: 'offline' } }) },
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    await expect(badge).toHaveAttribute('data-state', 'offline')
    await expect(badge).toHaveTextContent('Offline3 pending')
  },
}

export const Offline250Pending: Story = {
  args: { store: createFixtureStore({ pending: 250, status: { connection: 'offline' } }) },
}

/** Online, but the sync server cannot be reached (down or restarting); retried in the background. */
export const ServerUnreachable: Story = {
  args: { store: createFixtureStore({ pending: 2, status: { connection: 'connecting', error: sampleError } }) },
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    await expect(badge).toHaveAttribute('data-state', 'unreachable')
    await expect(badge).toHaveTextContent('Can’t reach server')
  },
}

/** Connected and idle, but conflicts wait in the inbox. */
/** The server refused the credentials (an expired token): not retried until the app reconnects. */
export const AccessRefused: Story = {
  args: { store: createFixtureStore({ pending: 1, status: { connection: 'offline', error: new ZyncError('UNAUTHENTICATED', '[zync] authentication failed: token expired') } }) },
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    await expect(badge).toHaveAttribute('data-state', 'refused')
    await expect(badge).toHaveTextContent('Access refused')
  },
}

/** Changes the server refused for good (dead letters) keep the badge in error until retried or discarded. */
export const NotSynced: Story = {
  args: { store: createFixtureStore({ status: { deadLetters: 2 } }) },
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    await expect(badge).toHaveAttribute('data-state', 'error')
    await expect(badge).toHaveTextContent('2 not synced')
  },
}

/** The server's authorize() refuses this user's edits (`status().readOnly`): the document is synced, view only. */
export const ViewOnly: Story = {
  args: { store: createFixtureStore({ status: { readOnly: true } }) },
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    await expect(badge).toHaveAttribute('data-state', 'online')
    await expect(badge).toHaveTextContent('SyncedView only')
    // The state alone is the live region.
    await expect(screen.getByRole('status')).toHaveTextContent(/^Synced$/)
  },
}

export const NeedsReview: Story = {
  args: { store: createFixtureStore({ conflicts: samples.manyFields() }) },
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    await expect(badge).toHaveAttribute('data-state', 'conflict')
    await expect(badge).toHaveTextContent('Needs review')
  },
}

/** Connected, but something the user should know of failed (here this device's storage is full). */
export const Error: Story = {
  args: { store: createFixtureStore({ pending: 12, status: { error: storageError } }) },
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    await expect(badge).toHaveAttribute('data-state', 'error')
    await expect(badge).toHaveAttribute('title', 'local storage failed: the browser’s storage for this site is full')
    // On touch and keyboard (no tooltip there): "Why?" shows the reason under the badge, Escape hides it.
    const why = screen.getByRole('button', { name: 'Why?' })
    await expect(why).toHaveAttribute('aria-expanded', 'false')
    await userEvent.click(why)
    await expect(why).toHaveAttribute('aria-expanded', 'true')
    await expect(badge.querySelector('.zync-badge-reason')).toBeVisible()
    await expect(badge.querySelector('.zync-badge-reason')).toHaveTextContent('the browser’s storage for this site is full')
    await userEvent.keyboard('{Escape}')
    await expect(why).toHaveAttribute('aria-expanded', 'false')
    await expect(badge.querySelector('.zync-badge-reason')).not.toBeVisible()
    // Going elsewhere hides it too: a press outside the badge, or focus moving on (Escape no longer reached it there).
    await userEvent.click(why)
    await userEvent.click(document.body)
    await expect(why).toHaveAttribute('aria-expanded', 'false')
    await userEvent.click(why)
    // A press on the reason itself (to select its text) keeps it.
    await userEvent.click(badge.querySelector('.zync-badge-reason')!)
    await expect(why).toHaveAttribute('aria-expanded', 'true')
    // Escape closes it with focus off the button too.
    await userEvent.keyboard('{Escape}')
    await expect(why).toHaveAttribute('aria-expanded', 'false')
    await userEvent.click(why)
    why.focus()
    await userEvent.tab()
    await expect(why).not.toHaveFocus()
    await expect(why).toHaveAttribute('aria-expanded', 'false')
    // The button's target is 44 px tall (--zync-target), though it shows 24 px: a press just below it counts.
    const r = why.getBoundingClientRect()
    await expect(r.height).toBeLessThan(30)
    await expect(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2 + 20)).toBe(why)
  },
}

/** The reason shown with "Why?" (touch and keyboard), over what follows the badge. */
export const ErrorReasonShown: Story = {
  args: { store: createFixtureStore({ pending: 2, status: { connection: 'connecting', error: sampleError } }) },
  play: async () => {
    await userEvent.click(await screen.findByRole('button', { name: 'Why?' }))
    await expect(document.querySelector('.zync-badge-reason')).toBeVisible()
  },
}

/** At the end of a full-width header (where a badge usually sits): the reason stays inside the viewport. */
export const ReasonAtTheRightEdge: Story = {
  args: { store: createFixtureStore({ status: { connection: 'connecting', error: new ZyncError('DISCONNECTED', '[zync] cannot reach the sync server at http://127.0.0.1:4000 (transport close); retrying in 8 s', { retryable: true }) } }) },
  decorators: [
    (Story) => (
      <header style={{ display: 'flex', justifyContent: 'flex-end', padding: '8px 4px' }}>
        <Story />
      </header>
    ),
  ],
  play: async () => {
    await userEvent.click(await screen.findByRole('button', { name: 'Why?' }))
    const reason = document.querySelector('.zync-badge-reason')!
    await expect(reason).toBeVisible()
    const r = reason.getBoundingClientRect()
    await expect(r.right).toBeLessThanOrEqual(document.documentElement.clientWidth)
    await expect(r.left).toBeGreaterThanOrEqual(0)
    await expect(document.documentElement.scrollWidth).toBeLessThanOrEqual(document.documentElement.clientWidth)
  },
}

/** A reader whose browser's default font is twice as large (text-only zoom): the text follows it. */
export const LargerDefaultFont: Story = {
  args: { store: createFixtureStore({ pending: 3, status: { connection: 'offline' } }) },
  decorators: [withRootFontSize(32)],
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    await expect(getComputedStyle(badge).fontSize).toBe('26px')
    await expect(getComputedStyle(badge.querySelector('.zync-badge-count')!).fontSize).toBe('24px')
  },
}

/**
 * A phone 360 px wide at twice the default font size, every count showing: the pills wrap inside the
 * badge instead of running off the screen (a designer's trial: "4 conflicts" was cut and the page
 * scrolled sideways).
 */
export const LargerFontOnAPhone: Story = {
  args: { store: createFixtureStore({ pending: 3, conflicts: samples.manyFields(), status: { connection: 'offline' } }) },
  decorators: [
    (Story) => (
      <div style={{ width: 328, border: '1px dashed #94a3b8' }} data-frame>
        <Story />
      </div>
    ),
    withRootFontSize(32),
  ],
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    const frame = document.querySelector('[data-frame]')!
    await expect(badge).toHaveTextContent(/4 conflicts/)
    const f = frame.getBoundingClientRect()
    for (const el of [badge, ...badge.querySelectorAll('.zync-badge-count')]) {
      const r = el.getBoundingClientRect()
      await expect(r.right).toBeLessThanOrEqual(f.right + 0.5)
    }
  },
}

export const Dark: Story = {
  args: { store: createFixtureStore({ pending: 3, status: { connection: 'offline' } }) },
  globals: { theme: 'dark' },
}

/**
 * A brand theme through the `--zync-*` custom properties (see README, Theming): square corners, a serif
 * font, other colours. Everything follows, the pills too.
 */
export const BrandTheme: Story = {
  args: { store: createFixtureStore({ pending: 3, conflicts: samples.oneField(), status: { connection: 'offline' } }) },
  decorators: [
    // A brand's colours per theme: its dark purple on the dark theme's background was unreadable.
    // Dark as the page shows it: the toolbar's dark, or the OS's under "Follow the OS".
    (Story, { globals }) => (
      <div style={{ '--zync-radius': '0px', '--zync-radius-sm': '0px', '--zync-radius-pill': '0px', '--zync-font': 'Georgia, serif', '--zync-muted': globals.theme === 'dark' || (globals.theme === 'os' && matchMedia('(prefers-color-scheme: dark)').matches) ? '#c4b5fd' : '#5b21b6', '--zync-border': '#7c3aed' } as React.CSSProperties}>
        <Story />
      </div>
    ),
  ],
  play: async () => {
    const badge = (await screen.findByRole('status')).closest('.zync-badge')!
    await expect(getComputedStyle(badge).borderTopLeftRadius).toBe('0px')
    for (const pill of badge.querySelectorAll('.zync-badge-count')) await expect(getComputedStyle(pill).borderTopLeftRadius).toBe('0px')
    await expect(getComputedStyle(badge).fontFamily).toMatch(/Georgia/)
  },
}
