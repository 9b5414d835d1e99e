import { type Mailer, type MailMessage, RecoveryCodesError } from '@recovery-codes/core'
import nodemailer, { type SendMailOptions, type TransportConfig, type Transporter } from 'nodemailer'
import { assertHeaderSafe, assertSingleAddress } from './headers.ts'

/** A nodemailer transporter (`nodemailer.createTransport(...)`), or what `createTransport` accepts. */
export type TransportOrOptions = Transporter | TransportConfig | string

/** Options of {@link nodemailerMailer}. */
export interface NodemailerMailerOptions {
  /** The `From` address (one mailbox; `"Name" <addr>` allowed). No CR, LF or NUL. */
  from: string
}

/** The {@link Mailer} returned by {@link nodemailerMailer}. */
export interface NodemailerMailer extends Mailer {
  send(message: MailMessage): Promise<void>
  /** Closes the transport's pooled connections, if any. */
  close(): void
}

function isTransporter(value: unknown): value is Transporter {
  return typeof value === 'object' && value !== null && typeof (value as Transporter).sendMail === 'function'
}

/**
 * `debug: true` makes nodemailer log the whole SMTP conversation, bodies included; it is forced off,
 * also when a connection URL asks for it (`?debug=true`).
 */
function withoutDebug(options: TransportConfig | string): TransportConfig {
  if (typeof options === 'string') {
    const url = new URL(options)
    url.searchParams.delete('debug')
    return { url: url.toString(), debug: false } as TransportConfig
  }
  const { url, ...rest } = options as TransportConfig & { url?: string }
  return { ...rest, ...(typeof url === 'string' ? withoutDebug(url) : {}), debug: false } as TransportConfig
}

/**
 * Builds nodemailer's message from a port message, checking every header-bound field (R-PT-6) and
 * shutting nodemailer's file and URL access, so no field can make it read a local file or fetch a URL.
 * @internal
 */
export function toNodemailerMessage(from: string, message: MailMessage): SendMailOptions {
  if (!message || typeof message !== 'object')
    throw new RecoveryCodesError('INVALID_INPUT', 'message must be an object')
  const to = assertSingleAddress('to', message.to)
  const subject = assertHeaderSafe('subject', message.subject)
  if (typeof message.text !== 'string')
    throw new RecoveryCodesError('INVALID_INPUT', 'text must be a string', {
      issues: [{ path: 'text', message: 'must be a string' }],
    })
  if (message.html !== undefined && typeof message.html !== 'string')
    throw new RecoveryCodesError('INVALID_INPUT', 'html must be a string', {
      issues: [{ path: 'html', message: 'must be a string' }],
    })
  const attachments = (message.attachments ?? []).map((a, i) => ({
    filename: assertHeaderSafe(`attachments.${i}.filename`, a.filename).replaceAll('"', ''),
    contentType: assertHeaderSafe(`attachments.${i}.contentType`, a.contentType),
    content: Buffer.from(a.content),
  }))
  return {
    from,
    to,
    subject,
    text: message.text,
    ...(message.html === undefined ? {} : { html: message.html }),
    ...(attachments.length > 0 ? { attachments } : {}),
    disableFileAccess: true,
    disableUrlAccess: true,
  }
}

/**
 * The production {@link Mailer}: sends through nodemailer (SMTP, pool, SES … any transport).
 *
 * `to`, `subject`, `from` and attachment names are checked for CR, LF and NUL; `to` must be exactly
 * one mailbox. A transport built here from options always has `debug: false`, so nodemailer never
 * logs message bodies; a transporter you pass in keeps its own logging settings (leave `debug`
 * off). Errors reject with `RecoveryCodesError('MAIL_FAILED')`, the transport error as `cause`.
 *
 * @example
 * ```ts
 * import { nodemailerMailer } from '@recovery-codes/mailer'
 *
 * const mailer = nodemailerMailer(process.env.SMTP_URL!, { from: 'Example <no-reply@example.com>' })
 * const rc = createRecoveryCodes({ ...config, mailer, email: { enabled: true, from: 'no-reply@example.com' } })
 * ```
 * @throws RecoveryCodesError `INVALID_INPUT` when `from` is not one clean address.
 */
export function nodemailerMailer(
  transportOrOptions: TransportOrOptions,
  options: NodemailerMailerOptions,
): NodemailerMailer {
  const from = assertSingleAddress('from', options?.from)
  const transporter: Transporter = isTransporter(transportOrOptions)
    ? transportOrOptions
    : nodemailer.createTransport(withoutDebug(transportOrOptions))
  return {
    async send(message) {
      const mail = toNodemailerMessage(from, message)
      try {
        await transporter.sendMail(mail)
      } catch (error) {
        // The transport's message may quote the server's reply, never our body; keep it as cause only.
        throw new RecoveryCodesError('MAIL_FAILED', 'The email could not be handed to the transport.', {
          cause: error,
        })
      }
    },
    close() {
      transporter.close()
    },
  } satisfies NodemailerMailer
}
