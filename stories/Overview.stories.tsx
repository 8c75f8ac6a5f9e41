import type { Meta, StoryObj } from '@storybook/react-vite'
import { useState } from 'react'
import { expect, screen, userEvent, waitFor } from 'storybook/test'
import {
  ConflictModal,
  ConflictToast,
  OfflineBanner,
  PresenceAvatars,
  PresenceIndicator,
  type SyncedStore,
  SyncStatusBadge,
} from 'zync/react'
import { createFixtureStore, makePeers, resetStore, samples } from './fixtures'

const focus = { entityId: 'tasks/42', field: 'title' }

/** Every component together, the way an app composes them. */
function AppShell({ store }: { store: SyncedStore }) {
  const [open, setOpen] = useState(false)
  return (
    <div style={{ fontFamily: 'system-ui, sans-serif', minHeight: '100vh', background: 'var(--zync-surface)', color: 'var(--zync-fg)' }}>
      <header
        style={{
          display: 'flex',
          alignItems: 'center',
          gap: 12,
          flexWrap: 'wrap',
          padding: '12px 20px',
          background: 'var(--zync-bg)',
          borderBottom: '1px solid var(--zync-border)',
        }}
      >
        <strong style={{ fontSize: 16, marginRight: 'auto' }}>Roadmap · Q3</strong>
        <PresenceAvatars store={store} max={4} />
        <SyncStatusBadge store={store} />
      </header>
      <main style={{ display: 'grid', gap: 16, maxWidth: 640, margin: '0 auto', padding: 20 }}>
        <OfflineBanner store={store} />
        <div style={{ display: 'grid', gap: 6, padding: 20, borderRadius: 14, background: 'var(--zync-bg)', border: '1px solid var(--zync-border)' }}>
          <label htmlFor="task-title" style={{ fontSize: 13, fontWeight: 600 }}>
            Task title
          </label>
          <input
            id="task-title"
            defaultValue="Ship the public beta"
            style={{
              minHeight: 44,
              padding: '0 12px',
              borderRadius: 8,
              border: '1px solid var(--zync-border)',
              background: 'var(--zync-bg)',
              color: 'var(--zync-fg)',
              fontSize: 15,
            }}
          />
          <PresenceIndicator store={store} {...focus} />
        </div>
      </main>
      <ConflictToast store={store} onResolve={() => setOpen(true)} />
      <ConflictModal store={store} open={open} onOpenChange={setOpen} />
    </div>
  )
}

const meta = {
  title: 'Overview/App shell',
  component: AppShell,
  args: {
    store: createFixtureStore({
      pending: 3,
      status: { connection: 'offline' },
      conflicts: samples.manyFields(),
      presence: makePeers(7, { withSelf: true, focus }),
    }),
  },
  argTypes: { store: { control: false } },
  beforeEach: resetStore,
  parameters: { layout: 'fullscreen' },
} satisfies Meta<typeof AppShell>

export default meta
type Story = StoryObj<typeof meta>

export const Offline: Story = {}

export const Online: Story = {
  args: {
    store: createFixtureStore({ presence: makePeers(4, { withSelf: true, focus }) }),
  },
}

export const ResolvingFromTheToast: Story = {
  play: async ({ step }) => {
    await step('the toast opens the dialog', async () => {
      await userEvent.click(await screen.findByRole('button', { name: 'Resolve' }))
      const dialog = await screen.findByRole('alertdialog')
      await waitFor(() => expect(dialog).toBeVisible())
    })
  },
}

export const Dark: Story = { globals: { theme: 'dark' } }

export const Mobile: Story = { globals: { viewport: { value: 'mobile', isRotated: false } } }
