import { describe, expect, it } from 'vitest'
import { wordDiff } from '../../src/react/word-diff'

const apply = (parts: ReturnType<typeof wordDiff>, side: 'from' | 'to') =>
  parts
    .filter(([op]) => op === 0 || op === (side === 'from' ? -1 : 1))
    .map(([, t]) => t)
    .join('')

describe('wordDiff', () => {
  it('marks replaced words', () => {
    expect(wordDiff('the quick brown fox', 'the slow brown fox')).toEqual([
      [0, 'the '],
      [-1, 'quick'],
      [1, 'slow'],
      [0, ' brown fox'],
    ])
  })

  it('treats punctuation as its own token', () => {
    expect(wordDiff('planning notes', 'planning notes, final')).toEqual([
      [0, 'planning notes'],
      [1, ', final'],
    ])
  })

  it('a text rewritten whole reads as one deletion and one insertion, not words interleaved at shared spaces', () => {
    // It read "~~Try it:~~ Right ~~offline~~ title" (a new-user trial's screenshot).
    expect(wordDiff('Try it: edit while one is offline', 'Right title')).toEqual([
      [-1, 'Try it: edit while one is offline'],
      [1, 'Right title'],
    ])
    // A shared word still splits the change.
    expect(wordDiff('old words here', 'new words there')).toEqual([
      [-1, 'old'],
      [1, 'new'],
      [0, ' words '],
      [-1, 'here'],
      [1, 'there'],
    ])
  })

  it('handles empty strings and identical text', () => {
    expect(wordDiff('', 'new text')).toEqual([[1, 'new text']])
    expect(wordDiff('old', '')).toEqual([[-1, 'old']])
    expect(wordDiff('same', 'same')).toEqual([[0, 'same']])
  })

  it('always reconstructs both sides', () => {
    const cases = [
      ['a b c d e', 'a c e f'],
      ['Welcome to the team! Meet your buddy.', 'Welcome, team! Meet your onboarding buddy today.'],
      ['línea única', 'otra línea única más'],
      ['x\n\ny', 'x\ny\n'],
    ] as const
    for (const [a, b] of cases) {
      const d = wordDiff(a, b)
      expect(apply(d, 'from')).toBe(a)
      expect(apply(d, 'to')).toBe(b)
    }
  })

  it('stays fast on long texts (common prefix/suffix trimmed, huge middles replaced whole)', () => {
    const long = Array.from({ length: 20_000 }, (_, i) => `w${i}`).join(' ')
    const t0 = performance.now()
    const d = wordDiff(long, long.replace('w10000', 'changed'))
    expect(d.filter(([op]) => op !== 0)).toEqual([
      [-1, 'w10000'],
      [1, 'changed'],
    ])
    const a = Array.from({ length: 3000 }, (_, i) => `a${i}`).join(' ')
    const b = Array.from({ length: 3000 }, (_, i) => `b${i}`).join(' ')
    expect(wordDiff(a, b)).toEqual([
      [-1, a],
      [1, b],
    ])
    expect(performance.now() - t0).toBeLessThan(1000)
  })
})
