import type { CSSProperties } from 'react'

export function Logo() {
  return (
    <svg className="logo" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
      <rect width="32" height="32" rx="8" fill="currentColor" />
      <path d="M9 10h14L9 22h14" stroke="#fff" strokeWidth="3" fill="none" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  )
}

export const initials = (name: string): string =>
  name
    .split(/\s+/)
    .map((w) => w[0] ?? '')
    .join('')
    .slice(0, 2)
    .toUpperCase()

/** Black or white on a hex colour, whichever reads better. */
export function inkOn(hex: string): string {
  const n = parseInt(hex.slice(1), 16)
  const lin = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
  const l = 0.2126 * lin(n >> 16) + 0.7152 * lin((n >> 8) & 255) + 0.0722 * lin(n & 255)
  return l > 0.18 ? '#111827' : '#ffffff'
}

export function Avatar({ name, color, size = 28, title }: { name: string; color?: string | undefined; size?: number; title?: string }) {
  const bg = color ?? '#64748b'
  const style = { background: bg, color: inkOn(bg), width: size, height: size, fontSize: size * 0.4 } as CSSProperties
  return (
    <span className="avatar" role="img" aria-label={title ?? name} title={title ?? name} style={style}>
      {initials(name)}
    </span>
  )
}

export function Switch({ checked, onChange, label }: { checked: boolean; onChange: (on: boolean) => void; label: string }) {
  return (
    <button type="button" role="switch" aria-checked={checked} className="switch" onClick={() => onChange(!checked)}>
      <span className="switch-track" aria-hidden="true">
        <span className="switch-thumb" />
      </span>
      <span className="switch-label">{label}</span>
    </button>
  )
}
