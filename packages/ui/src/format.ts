/** Human-readable durations and dates for the pages (UTC, English). */

/** `95_000` → `"1 minute 35 seconds"`; rounds up to whole seconds; at least "1 second". */
export function formatDuration(ms: number): string {
  let s = Math.max(1, Math.ceil(ms / 1000))
  const parts: string[] = []
  const units: [number, string][] = [
    [86_400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ]
  for (const [size, name] of units) {
    const n = Math.floor(s / size)
    if (n > 0) {
      parts.push(`${n} ${name}${n === 1 ? '' : 's'}`)
      s -= n * size
    }
    if (parts.length === 2) break
  }
  return parts.join(' ')
}

/** `"2025-03-01 14:05 UTC"`. */
export function formatDate(ms: number): string {
  const iso = new Date(ms).toISOString()
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`
}
