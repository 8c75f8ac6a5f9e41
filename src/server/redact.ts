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

/** Any text that may hold credentials (`user:password@host`, a URL or not): the password replaced. */
export function maskedCredentials(text: string): string {
  return text.replace(/^((?:[a-z][a-z0-9+.-]*:\/\/)?[^:/@\s]*):[^@\s]*@/i, '$1:***@')
}
