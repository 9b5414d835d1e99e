import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { type Mailer, type MailMessage, RecoveryCodesError } from '@recovery-codes/core'
import nodemailer from 'nodemailer'
import { assertSingleAddress } from './headers.ts'
import { toNodemailerMessage } from './nodemailer.ts'

/** Options of {@link emlFileMailer}. */
export interface EmlFileMailerOptions {
  /** Folder the `.eml` files go to; created (mode 0700) if missing. */
  dir: string
  /**
   * The `From` address written into each message.
   * @default 'recovery-codes@localhost'
   */
  from?: string
}

/** The {@link Mailer} returned by {@link emlFileMailer}. */
export interface EmlFileMailer extends Mailer {
  send(message: MailMessage): Promise<void>
  /** The absolute folder the files are written to. */
  readonly dir: string
  /** Absolute paths of the files written by this mailer, oldest first. */
  readonly files: readonly string[]
}

/**
 * The development {@link Mailer}: writes each message as one RFC 5322 `.eml` file (CRLF line
 * ends, built by nodemailer's MIME composer) into a folder; open them with any mail client.
 *
 * Files are named `<UTC timestamp>-<random>.eml`, so they sort by time, and written with mode 0600:
 * a codes email holds plaintext codes. Development only; never point it at a shared folder in
 * production. Header fields are checked exactly as in {@link nodemailerMailer}.
 *
 * @example
 * ```ts
 * const mailer = emlFileMailer({ dir: '.data/mail' })
 * const rc = createRecoveryCodes({ ...config, mailer })
 * ```
 */
export function emlFileMailer(options: EmlFileMailerOptions): EmlFileMailer {
  if (typeof options?.dir !== 'string' || options.dir.length === 0 || options.dir.includes('\0')) {
    throw new RecoveryCodesError('INVALID_INPUT', 'dir must be a non-empty path', {
      issues: [{ path: 'dir', message: 'must be a non-empty path' }],
    })
  }
  const dir = resolve(options.dir)
  const from = assertSingleAddress('from', options.from ?? 'recovery-codes@localhost')
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' })
  const files: string[] = []
  let ready: Promise<unknown> | null = null

  return {
    dir,
    files,
    async send(message) {
      const mail = toNodemailerMessage(from, message)
      try {
        ready ??= mkdir(dir, { recursive: true, mode: 0o700 })
        await ready
        const info = await transport.sendMail(mail)
        const stamp = new Date().toISOString().replace(/[:.]/g, '-')
        const file = join(dir, `${stamp}-${randomBytes(6).toString('hex')}.eml`)
        await writeFile(file, info.message as Buffer, { mode: 0o600, flag: 'wx' })
        files.push(file)
      } catch (error) {
        ready = null
        throw new RecoveryCodesError('MAIL_FAILED', 'The email could not be written.', { cause: error })
      }
    },
  } satisfies EmlFileMailer
}
