import type { RandomReader } from '@recovery-codes/core'

/** A deterministic {@link RandomReader}; `insecure: true` lets a config refuse it outside tests. */
export interface SeededRandom extends RandomReader {
  read(bytes: Uint8Array): void
  /** Always `true`: this generator is predictable by design. */
  readonly insecure: true
}

/** splitmix32: spreads a 32-bit seed over the sfc32 state words. */
function splitmix32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x9e3779b9) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

/** FNV-1a over UTF-16 code units: turns a string seed into 32 bits. */
function hashSeed(seed: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/**
 * **INSECURE. Tests only.** A deterministic byte generator (sfc32 seeded through splitmix32) with the
 * shape of the {@link RandomReader} port, so fixtures (codes, ids) are reproducible run to run.
 * Anyone who knows the seed knows every byte: never pass it to a production `createRecoveryCodes`.
 * The returned object carries `insecure: true` so configuration can refuse it.
 *
 * The same seed always yields the same stream; different seeds give unrelated streams.
 *
 * @param seed - A 32-bit integer or any string.
 * @example
 * ```ts
 * const rng = createSeededRandom('generate-fixture')
 * const codes = generateCodes(format, 10, rng) // same codes on every run
 * ```
 */
export function createSeededRandom(seed: number | string): SeededRandom {
  if (typeof seed === 'number' && !Number.isInteger(seed))
    throw new TypeError('seed must be an integer or a string')
  const mix = splitmix32(typeof seed === 'string' ? hashSeed(seed) : seed)
  let a = mix()
  let b = mix()
  let c = mix()
  let d = mix()
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) >>> 0
    return t
  }
  // Discard the first outputs, as the sfc32 reference does, to decorrelate close seeds.
  for (let i = 0; i < 12; i++) next()
  return {
    insecure: true,
    read(bytes: Uint8Array): void {
      for (let i = 0; i < bytes.length; i += 4) {
        const word = next()
        for (let j = 0; j < 4 && i + j < bytes.length; j++) bytes[i + j] = (word >>> (8 * j)) & 0xff
      }
    },
  } satisfies SeededRandom
}
