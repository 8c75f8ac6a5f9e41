import type { Meta, StoryObj } from '@storybook/react-vite'
import type { CSSProperties } from 'react'
import { expect, screen, userEvent, waitFor } from 'storybook/test'
import { PresenceAvatars } from 'zync/react'
import { createFixtureStore, makePeers, resetStore } from './fixtures'

const meta = {
  title: 'Presence/PresenceAvatars',
  component: PresenceAvatars,
  args: { store: createFixtureStore({ presence: makePeers(1) }) },
  argTypes: {
    store: { control: false },
    // Typed `T | undefined` (exactOptionalPropertyTypes), which Storybook cannot infer a control from: listed here.
    max: { control: { type: 'number', min: 0, step: 1 }, type: 'number', description: 'Most avatars shown; the rest collapse into a "+N" button.', table: { defaultValue: { summary: '5' } } },
    includeSelf: { control: 'boolean', type: 'boolean', description: 'Show this client too, first, marked as you.', table: { defaultValue: { summary: 'false' } } },
    className: { control: 'text', type: 'string', description: 'Extra class on the list.', table: { defaultValue: { summary: 'none' } } },
    label: { control: false, description: 'Accessible name of the list: (count) => string.', table: { defaultValue: { summary: '"N people here"' } } },
    labels: { control: 'object', description: 'The other texts: more, you.', table: { defaultValue: { summary: 'the English texts' } } },
  },
  beforeEach: resetStore,
} satisfies Meta<typeof PresenceAvatars>

export default meta
type Story = StoryObj<typeof meta>

export const One: Story = {}

/** A right-to-left page: the stack starts at the right, and each avatar tucks under the one before it there. */
export const FourRightToLeft: Story = {
  globals: { dir: 'rtl' },
  args: { store: createFixtureStore({ presence: makePeers(4) }) },
  play: async () => {
    await screen.findByRole('list', { name: '4 people here' })
    const boxes = screen.getAllByRole('img').map((a) => a.getBoundingClientRect())
    for (let i = 1; i < boxes.length; i++) {
      // To the left of the previous one, overlapping it by the same amount as in a left-to-right page.
      await expect(boxes[i]!.left).toBeLessThan(boxes[i - 1]!.left)
      await expect(boxes[i]!.right).toBeGreaterThan(boxes[i - 1]!.left + 1)
    }
  },
}

export const Four: Story = {
  args: { store: createFixtureStore({ presence: makePeers(4) }) },
  play: async () => {
    await expect(await screen.findByRole('list', { name: '4 people here' })).toBeInTheDocument()
    await expect(screen.getAllByRole('img')).toHaveLength(4)
  },
}

export const Twelve: Story = {
  args: { store: createFixtureStore({ presence: makePeers(12) }), max: 5 },
  play: async () => {
    await expect(await screen.findByRole('button', { name: '7 more' })).toHaveTextContent('+7')
    await expect(screen.getAllByRole('listitem')).toHaveLength(6)
  },
}

/**
 * Names without a mouse: an avatar shows its name when it has focus (Tab, or a tap on a phone), and
 * "+N" opens the list of the people it stands for.
 */
export const NamesOnFocus: Story = {
  args: { store: createFixtureStore({ presence: makePeers(12) }), max: 5 },
  decorators: [
    (Story) => (
      <div style={{ padding: '8px 8px 300px min(220px, 30vw)' }}>
        <Story />
      </div>
    ),
  ],
  play: async () => {
    const first = await screen.findByRole('img', { name: 'Ana Souza' })
    const tip = first.parentElement!.querySelector('.zync-tip')!
    await expect(getComputedStyle(tip).display).toBe('none')
    await userEvent.tab()
    await expect(first).toHaveFocus()
    await waitFor(() => expect(getComputedStyle(tip).display).toBe('block'))
    await expect(tip).toHaveTextContent('Ana Souza')
    await userEvent.click(screen.getByRole('button', { name: '7 more' }))
    const rest = await screen.findByRole('list', { name: '7 more' })
    await expect(rest.children).toHaveLength(7)
    await expect(rest).toBeVisible()
  },
}

/**
 * One person, at the right edge of the screen (a toolbar's end): the name, hidden or shown, never makes
 * the page wider than the screen (a hidden name used to widen a 375 px page by 80 px).
 */
/** The story at the right edge of the canvas. */
const atTheEdge: Story['decorators'] = [
  (Story) => (
    <div style={{ display: 'flex', justifyContent: 'flex-end' }}>
      <Story />
    </div>
  ),
]

export const AtTheEdge: Story = {
  args: { store: createFixtureStore({ presence: makePeers(1) }) },
  decorators: atTheEdge,
  play: async () => {
    const page = document.documentElement
    const avatar = await screen.findByRole('img', { name: 'Ana Souza' })
    await expect(page.scrollWidth).toBeLessThanOrEqual(page.clientWidth)
    await userEvent.tab()
    await expect(avatar).toHaveFocus()
    const tip = avatar.parentElement!.querySelector('.zync-tip')!
    await waitFor(() => expect(getComputedStyle(tip).display).toBe('block'))
    await expect(tip.getBoundingClientRect().right).toBeLessThanOrEqual(page.clientWidth)
    await expect(page.scrollWidth).toBeLessThanOrEqual(page.clientWidth)
  },
}

/**
 * A stack at the right edge of the screen: the first avatar's name, which starts at its left edge, is
 * moved back inside the screen instead of running off it.
 */
export const StackAtTheEdge: Story = {
  args: {
    store: createFixtureStore({
      presence: makePeers(2).map((p, i) => (i === 0 ? { ...p, user: { ...p.user, name: 'Alexandra Montgomery-Fitzgerald' } } : p)),
    }),
  },
  decorators: atTheEdge,
  play: async () => {
    const page = document.documentElement
    await screen.findAllByRole('img')
    await userEvent.tab()
    const first = document.activeElement as HTMLElement
    const tip = first.parentElement!.querySelector('.zync-tip')!
    await waitFor(() => expect(getComputedStyle(tip).display).toBe('block'))
    await waitFor(() => expect(tip.getBoundingClientRect().right).toBeLessThanOrEqual(page.clientWidth))
    await expect(tip.getBoundingClientRect().left).toBeGreaterThanOrEqual(0)
    await expect(page.scrollWidth).toBeLessThanOrEqual(page.clientWidth)
  },
}

/** You first, with an accent ring and "(you)" in the name. */
export const IncludingSelf: Story = {
  args: { store: createFixtureStore({ presence: makePeers(4, { withSelf: true }) }), includeSelf: true },
  play: async ({ step }) => {
    const me = await screen.findByRole('img', { name: 'Ana Souza (you)' })
    await expect(me).toHaveClass('zync-avatar-self')
    await step('focus on your avatar shows outside your ring (the ring is the focus ring\'s colour)', async () => {
      await userEvent.tab()
      await expect(me).toHaveFocus()
      const css = getComputedStyle(me)
      // The outer edge of the ring: the largest spread in the box-shadow.
      const ring = Math.max(...[...css.boxShadow.matchAll(/(-?[\d.]+)px(?=\s*(?:,|$))/g)].map((m) => Number(m[1])))
      await expect(ring).toBeGreaterThan(0)
      await expect(css.outlineStyle).toBe('solid')
      await expect(Number.parseFloat(css.outlineOffset)).toBeGreaterThan(ring)
    })
  },
}

/** Sized through the `--zync-avatar-size` custom property. */
export const Large: Story = {
  args: { store: createFixtureStore({ presence: makePeers(12) }), max: 4 },
  decorators: [
    (Story) => (
      <div style={{ '--zync-avatar-size': '44px' } as CSSProperties}>
        <Story />
      </div>
    ),
  ],
}

export const Dark: Story = {
  args: { store: createFixtureStore({ presence: makePeers(12) }) },
  globals: { theme: 'dark' },
}
