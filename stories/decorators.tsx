import type { Decorator } from '@storybook/react-vite'
import { useLayoutEffect } from 'react'

/**
 * The page's root font size while the story is shown (a browser's default font size, or text-only
 * zoom): rem-sized text follows it. Set before the story paints, put back when it goes, so the canvas
 * shows what the story's check measures.
 */
export function withRootFontSize(px: number): Decorator {
  function RootFontSize({ children }: { children: React.ReactNode }) {
    useLayoutEffect(() => {
      const root = document.documentElement
      const was = root.style.fontSize
      root.style.fontSize = `${px}px`
      return () => {
        root.style.fontSize = was
      }
    }, [])
    return <>{children}</>
  }
  return (Story) => (
    <RootFontSize>
      <Story />
    </RootFontSize>
  )
}
