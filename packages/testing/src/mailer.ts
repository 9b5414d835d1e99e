import type { Mailer, MailMessage } from '@recovery-codes/core'

/** A {@link Mailer} that keeps every message in memory. */
export interface RecordingMailer extends Mailer {
  send(message: MailMessage): Promise<void>
  /** Messages handed over successfully, oldest first (copies, safe from later mutation). */
  readonly messages: readonly MailMessage[]
  /** Messages whose send was made to fail by {@link RecordingMailer.failNext}. */
  readonly failed: readonly MailMessage[]
  /** The last successful message, or `undefined`. */
  last(): MailMessage | undefined
  /** Makes the next `count` sends reject with `error` (default: an `Error('mail transport failed')`). */
  failNext(count?: number, error?: unknown): void
  /** Forgets every recorded message and pending failure. */
  clear(): void
}

function copyMessage(message: MailMessage): MailMessage {
  return {
    ...message,
    ...(message.attachments
      ? { attachments: message.attachments.map((a) => ({ ...a, content: a.content.slice() })) }
      : {}),
  }
}

/**
 * A mailer spy for tests: records each message, and can be told to fail the next N sends.
 *
 * @example
 * ```ts
 * const mailer = createRecordingMailer()
 * mailer.failNext(1)
 * await expect(rc.emailCodes({ userId, reveal })).rejects.toThrow()
 * expect(mailer.messages).toHaveLength(0)
 * ```
 */
export function createRecordingMailer(): RecordingMailer {
  const messages: MailMessage[] = []
  const failed: MailMessage[] = []
  let failures: unknown[] = []
  return {
    messages,
    failed,
    async send(message) {
      const copy = copyMessage(message)
      if (failures.length > 0) {
        const error = failures.shift()
        failed.push(copy)
        throw error
      }
      messages.push(copy)
    },
    last: () => messages.at(-1),
    failNext(count = 1, error?: unknown) {
      if (!Number.isInteger(count) || count < 0) throw new RangeError('count must be a non-negative integer')
      for (let i = 0; i < count; i++) failures.push(error ?? new Error('mail transport failed'))
    },
    clear() {
      messages.length = 0
      failed.length = 0
      failures = []
    },
  } satisfies RecordingMailer
}
