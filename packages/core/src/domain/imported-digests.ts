/**
 * The lookup candidates of imported codes: what a redeem adds to the digests of its input when the
 * configuration imports codes (`import.formats`, `import.legacyDigests`). Without either, nothing.
 */
import type { ResolvedImportOptions } from '../config-import.ts'
import { normalize } from './code-format.ts'
import { candidateDigests, type HmacSha256, type Pepper } from './hash.ts'
import { type HmacSha3_512, legacyDigest, nobleHmacSha3_512 } from './legacy-digest.ts'

/**
 * Appends to `out` the digests an imported code typed as `raw` would be stored under: for each
 * imported format the input fits (besides the native `canonical`), its digest under every pepper;
 * for each legacy scheme, that scheme's digest.
 *
 * @example
 * ```ts
 * const digests = candidateDigests(peppers, userId, canonical)
 * appendImportedDigests(digests, config.import, peppers, userId, raw, canonical)
 * ```
 */
export function appendImportedDigests(
  out: Uint8Array[],
  imported: ResolvedImportOptions,
  peppers: readonly Pepper[],
  userId: string,
  raw: string,
  canonical: string | null,
  hmacSha256?: HmacSha256,
  hmacSha3_512: HmacSha3_512 = nobleHmacSha3_512,
): Uint8Array[] {
  const { formats, legacyDigests } = imported
  const seen: string[] = []
  for (let i = 0; i < formats.length; i++) {
    const c = normalize(raw, formats[i]!)
    if (c === null || c === canonical || seen.includes(c)) continue
    seen.push(c)
    out.push(...candidateDigests(peppers, userId, c, hmacSha256))
  }
  for (let i = 0; i < legacyDigests.length; i++) {
    const d = legacyDigest(legacyDigests[i]!, raw, hmacSha3_512)
    if (d !== null) out.push(d)
  }
  return out
}
