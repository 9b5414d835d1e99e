/**
 * Every order of a few items, for "in any order" tests (the reveal channels: view, each download
 * format, email).
 *
 * @example
 * ```ts
 * for (const order of permutations(['view', 'txt', 'pdf', 'email'])) … // 24 orders
 * ```
 */
export function permutations<T>(items: readonly T[]): T[][] {
  if (items.length > 8) throw new RangeError('permutations: at most 8 items (40,320 orders)')
  if (items.length <= 1) return [[...items]]
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  )
}
