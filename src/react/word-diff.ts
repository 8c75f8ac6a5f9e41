/** A run of text: 0 unchanged, 1 inserted, -1 deleted. */
export type DiffPart = [op: -1 | 0 | 1, text: string]

// Words, runs of whitespace and single punctuation marks are the tokens ("notes," = "notes" + ",").
const RE = /(\s+|[^\p{L}\p{N}\s])/u

/**
 * Word-level diff (LCS over words, whitespace and punctuation). Common prefix and suffix are
 * trimmed first, so one edit in a long text stays cheap; past ~1M cells it gives up and reports
 * a whole replacement rather than stall the UI.
 */
export function wordDiff(a: string, b: string): DiffPart[] {
  const x = a.split(RE)
  const y = b.split(RE)
  let s = 0
  let ex = x.length
  let ey = y.length
  while (s < ex && s < ey && x[s] === y[s]) s++
  while (ex > s && ey > s && x[ex - 1] === y[ey - 1]) {
    ex--
    ey--
  }
  const out: DiffPart[] = []
  const push = (op: -1 | 0 | 1, t: string) => {
    if (!t) return
    const last = out[out.length - 1]
    if (last && last[0] === op) last[1] += t
    else out.push([op, t])
  }
  push(0, x.slice(0, s).join(''))
  const n = ex - s
  const m = ey - s
  const w = m + 1
  if (n * m > 1e6) {
    push(-1, x.slice(s, ex).join(''))
    push(1, y.slice(s, ey).join(''))
  } else {
    // t[i*w+j] = LCS length of x[s+i..ex) and y[s+j..ey)
    const t = new Uint32Array((n + 1) * w)
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        t[i * w + j] = x[s + i] === y[s + j] ? t[(i + 1) * w + j + 1]! + 1 : Math.max(t[(i + 1) * w + j]!, t[i * w + j + 1]!)
    let i = 0
    let j = 0
    while (i < n || j < m) {
      if (i < n && j < m && x[s + i] === y[s + j]) {
        push(0, x[s + i++]!)
        j++
      } else if (i < n && (j === m || t[(i + 1) * w + j]! >= t[i * w + j + 1]!)) push(-1, x[s + i++]!)
      else push(1, y[s + j++]!)
    }
  }
  push(0, x.slice(ex).join(''))
  return foldGaps(out)
}

const WORDY = /[\p{L}\p{N}]/u

/**
 * Spaces and punctuation left unchanged between two changes go into both of them: a text rewritten
 * whole otherwise read as its old and new words interleaved at every shared space ("~~Try it:~~ Right
 * ~~offline~~ title"), where it is one deletion and one insertion.
 */
function foldGaps(parts: DiffPart[]): DiffPart[] {
  const out: DiffPart[] = []
  let del = ''
  let ins = ''
  const flush = () => {
    if (del) out.push([-1, del])
    if (ins) out.push([1, ins])
    del = ins = ''
  }
  parts.forEach(([op, t], k) => {
    if (op === -1) del += t
    else if (op === 1) ins += t
    else if ((del || ins) && k < parts.length - 1 && !WORDY.test(t)) {
      del += t
      ins += t
    } else {
      flush()
      out.push([0, t])
    }
  })
  flush()
  return out
}
