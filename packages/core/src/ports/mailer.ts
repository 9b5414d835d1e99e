/** An email message. Every header-bound field is checked for CR/LF before it reaches a mailer. */
export interface MailMessage {
  to: string
  subject: string
  text: string
  html?: string
  attachments?: { filename: string; contentType: string; content: Uint8Array }[]
}

/**
 * The mailer port. Implementations: the nodemailer mailer, the `.eml` dev mailer,
 * `createRecordingMailer()` in tests.
 *
 * Contract: resolves once the message was handed to the transport; rejects otherwise. A mailer
 * never logs message bodies.
 */
export interface Mailer {
  send(message: MailMessage): Promise<void>
}
