/**
 * "This wasn't me" (issue 16, NIST SP 800-63B-4 §4.2.3, §4.6): mint a link token for a
 * notification, inspect it read-only for the confirm page, and redeem it once to revoke the
 * user's active batch. Single use is a store counter with a budget of one (as the reveal
 * channels), keyed by a keyed label of the nonce, so the store holds only a digest of the token.
 */
import { systemHmacSha256 } from '../runtime.ts'
import { errorName, type ServiceContext } from './context.ts'
import {
  mintRepudiationToken,
  type NotificationKind,
  type RepudiationClaims,
  verifyRepudiationToken,
} from './repudiation-token.ts'
import type { RequestContext } from './types.ts'

/** Why a link was refused. One answer for forged, tampered, malformed and unknown-key tokens. */
export type RepudiationFailure = 'invalid' | 'expired' | 'used'

export type RepudiationInspection =
  | { readonly ok: true; readonly kind: NotificationKind; readonly expiresAt: number }
  | { readonly ok: false; readonly reason: RepudiationFailure }

export type RepudiationResult =
  | { readonly ok: true; readonly batchDisabled: boolean }
  | { readonly ok: false; readonly reason: RepudiationFailure }

export interface Repudiation {
  /** A fresh link token for `kind`, minted when the notification is sent (never queued). */
  mint(input: { userId: string; kind: NotificationKind; batchId: string | null; now: number }): string
  /** Read-only: whether `token` would be accepted now. Changes nothing (mail scanners follow links). */
  inspect(input: { token: unknown }): Promise<RepudiationInspection>
  /** Verify, claim once, end the active batch, call `onRepudiated`, audit. */
  repudiate(input: { token: unknown } & RequestContext): Promise<RepudiationResult>
}

const NONCE_BYTES = 16

/**
 * The "This wasn't me" part of one service. `afterRevoke` runs once the batch was disabled: the
 * service drops the reveal slot and the cached views there (best-effort, as after a delete).
 */
export function createRepudiation(
  ctx: ServiceContext,
  afterRevoke: (userId: string) => Promise<void> = async () => {},
): Repudiation {
  const { config, store, clock, random, logger, guardStore } = ctx
  const ttlMs = (config.notifications?.linkTtlSeconds ?? 0) * 1000
  const claimKey = (nonce: string) => `repudiate:${ctx.label('repudiate-nonce', nonce)}`

  function verify(token: unknown, now: number) {
    // Off: no link was ever sent by this service, so none is accepted.
    if (config.notifications === null) return { ok: false as const, reason: 'invalid' as const }
    const v = verifyRepudiationToken(config.peppers, token, now, systemHmacSha256)
    if (v.ok) return v
    return {
      ok: false as const,
      reason: v.reason === 'expired' ? ('expired' as const) : ('invalid' as const),
    }
  }

  async function isUsed(claims: RepudiationClaims, now: number): Promise<boolean> {
    const state = await guardStore(() => store.getAttempts(claimKey(claims.nonce)))
    return state.failures >= 1 || now < state.lockedUntil
  }

  return {
    mint({ userId, kind, batchId, now }) {
      const nonce = new Uint8Array(NONCE_BYTES)
      random.read(nonce)
      return mintRepudiationToken(
        config.peppers[0]!,
        { userId, kind, batchId, expiresAt: now + ttlMs },
        nonce,
        systemHmacSha256,
      )
    },

    async inspect({ token }) {
      const now = clock.now()
      const v = verify(token, now)
      if (!v.ok) return v
      if (await isUsed(v.claims, now)) return { ok: false, reason: 'used' }
      return { ok: true, kind: v.claims.kind, expiresAt: v.claims.expiresAt }
    },

    async repudiate(input) {
      const now = clock.now()
      const v = verify(input?.token, now)
      if (!v.ok) return v
      const { userId, batchId, kind } = v.claims
      const keys = [{ key: claimKey(v.claims.nonce), maxAttempts: 1 }]
      // A denied reservation changes nothing; an allowed one is never settled, so it stays taken.
      const claimed = (await guardStore(() => store.reserveAttempts({ keys, now }))).allowed
      if (!claimed) return { ok: false, reason: 'used' }
      // Locked until the link expires, so purging old limiter counters
      // (`purge.attemptRetentionDays`, possibly shorter than the link's life) never frees it.
      try {
        await store.lockAttempts({ key: keys[0]!.key, until: v.claims.expiresAt })
      } catch (error) {
        logger.warn('recovery-codes: repudiation claim lock failed', { error: errorName(error) })
      }
      const { token: _token, ...requestContext } = input
      let batchDisabled = false
      const active = await guardStore(() => store.getActiveBatch(userId))
      if (active) {
        const disabled = ctx.auditRecord({
          at: now,
          event: 'batch.disabled',
          userId,
          batchId: active.id,
          outcome: 'success',
          reason: 'repudiated',
          ctx: requestContext,
        })
        batchDisabled = await guardStore(() =>
          store.endBatch({ userId, batchId: active.id, to: 'disabled', now, audit: disabled }),
        )
      }
      if (batchDisabled) {
        try {
          await afterRevoke(userId)
        } catch (error) {
          logger.warn('recovery-codes: cleanup after repudiation failed', { error: errorName(error) })
        }
      }
      if (config.onRepudiated) {
        try {
          await config.onRepudiated(userId)
        } catch (error) {
          logger.error('recovery-codes: onRepudiated failed', { error: errorName(error) })
        }
      }
      await ctx.audit({
        at: now,
        event: 'account.repudiated',
        userId,
        batchId: active?.id ?? batchId,
        outcome: 'success',
        reason: kind,
        data: { batchDisabled },
        ctx: requestContext,
      })
      return { ok: true, batchDisabled }
    },
  }
}
