import type { Meta, StoryObj } from '@storybook/react-vite'
import { useEffect } from 'react'
import { expect, screen, userEvent, waitFor } from 'storybook/test'
import { PresenceIndicator, usePresence } from 'zync/react'
import { createFixtureStore, makePeers, resetStore } from './fixtures'
import { withRootFontSize } from './decorators'

const focus = { entityId: 'tasks/42', field: 'title' }

const meta = {
  title: 'Presence/PresenceIndicator',
  component: PresenceIndicator,
  args: { store: createFixtureStore({ presence: makePeers(2, { withSelf: true, focus }) }), ...focus },
  argTypes: {
    store: { control: false },
    // Typed `T | undefined` (exactOptionalPropertyTypes), which Storybook cannot infer a control from: listed here.
    entityId: { control: 'text', type: { name: 'string', required: true }, description: 'The record (`collection/id`) whose field it is about. Required.' },
    field: { control: 'text', type: { name: 'string', required: true }, description: 'The field. Required.' },
    className: { control: 'text', type: 'string', description: 'Extra class on the indicator.', table: { defaultValue: { summary: 'none' } } },
    label: { control: false, description: 'The sentence: (names) => string.', table: { defaultValue: { summary: '"Ana is editing", "Ana and Ben are editing", "Ana and 2 others are editing"' } } },
  },
  beforeEach: resetStore,
  // Shown the way an app uses it: under the field it is about.
  render: (args) => (
    <div style={{ display: 'grid', gap: 6, maxWidth: 360, fontFamily: 'system-ui, sans-serif' }}>
      <label htmlFor="title" style={{ fontSize: 13, fontWeight: 600 }}>
        Title
      </label>
      <input
        id="title"
        defaultValue="Ship the public beta"
        style={{ minHeight: 44, padding: '0 12px', borderRadius: 8, border: '1px solid var(--zync-border)', background: 'var(--zync-bg)', color: 'var(--zync-fg)', font: 'inherit', fontSize: 15 }}
      />
      <PresenceIndicator {...args} />
    </div>
  ),
} satisfies Meta<typeof PresenceIndicator>

export default meta
type Story = StoryObj<typeof meta>

export const OneEditor: Story = {
  play: async () => {
    await expect(await screen.findByRole('status')).toHaveTextContent('Ben Carter is editing')
  },
}

/** Twice the default font size: the sentence grows, the initials stay inside their 24 px circles. */
export const LargerDefaultFont: Story = {
  args: { store: createFixtureStore({ presence: makePeers(3, { withSelf: true, focus }) }) },
  decorators: [withRootFontSize(32)],
  play: async () => {
    await screen.findByRole('status')
    for (const a of document.querySelectorAll('.zync-indicator .zync-avatar')) {
      await expect(getComputedStyle(a).fontSize).toBe('11.04px')
      await expect(a.scrollHeight).toBeLessThanOrEqual(a.clientHeight + 1)
    }
  },
}

export const TwoEditors: Story = {
  args: { store: createFixtureStore({ presence: makePeers(3, { withSelf: true, focus }) }) },
  play: async () => {
    await expect(await screen.findByRole('status')).toHaveTextContent('Ben Carter and Chloé Martin are editing')
  },
}

export const ManyEditors: Story = {
  args: { store: createFixtureStore({ presence: makePeers(6, { withSelf: true, focus }) }) },
  play: async () => {
    await expect(await screen.findByRole('status')).toHaveTextContent('Ben Carter and 4 others are editing')
  },
}

export const Nobody: Story = {
  args: { store: createFixtureStore({ presence: makePeers(3, { withSelf: true }) }) },
  play: async () => {
    await expect(await screen.findByRole('status')).toBeEmptyDOMElement()
  },
}

/** Focus the field to announce yourself with `usePresence(store).update({ focus })`; peers on it appear live. */
export const Live: Story = {
  args: { store: createFixtureStore({ presence: makePeers(1, { withSelf: true }) }) },
  render: function Render(args) {
    const { update } = usePresence(args.store)
    useEffect(() => () => update({ focus: null }), [update])
    return (
      <div style={{ display: 'grid', gap: 6, maxWidth: 360, fontFamily: 'var(--zync-font)', color: 'var(--zync-fg)' }}>
        <label htmlFor="live-title" style={{ fontSize: 13, fontWeight: 600 }}>
          Title
        </label>
        <input
          id="live-title"
          style={{ minHeight: 44, padding: '0 12px', borderRadius: 8, border: '1px solid var(--zync-border)', background: 'var(--zync-bg)', color: 'var(--zync-fg)', fontSize: 15 }}
          onFocus={() => update({ focus })}
          onBlur={() => update({ focus: null })}
        />
        <PresenceIndicator {...args} />
      </div>
    )
  },
  play: async ({ args, step }) => {
    await step('focusing the field updates my presence', async () => {
      await userEvent.click(await screen.findByLabelText('Title'))
      const me = args.store.sync.presence().find((p) => p.self)
      await expect(me?.state).toEqual({ focus })
    })
    await step('a peer arriving on the field shows up', async () => {
      const store = args.store as ReturnType<typeof createFixtureStore>
      store.setPresence([...store.sync.presence(), ...makePeers(2, { focus }).slice(1)])
      await waitFor(() => expect(screen.getByRole('status')).toHaveTextContent('Ben Carter is editing'))
    })
  },
}

export const Dark: Story = {
  args: { store: createFixtureStore({ presence: makePeers(3, { withSelf: true, focus }) }) },
  globals: { theme: 'dark' },
}
