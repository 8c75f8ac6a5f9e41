/** A connection URL fit for a log line or an error: its password replaced. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return 'the configured URL'
  }
}
