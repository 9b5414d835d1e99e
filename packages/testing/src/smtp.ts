/** A loopback SMTP server for the mailer and queue tests. */
import type { AddressInfo } from 'node:net'

/** One message as the SMTP server received it. */
export interface ReceivedMail {
  from: string | null
  to: string[]
  raw: string
}

/** A real SMTP server on loopback (port 0), recording every accepted message. */
export interface TestSmtp {
  port: number
  url: string
  received: ReceivedMail[]
  /** Resolves once `n` messages arrived (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedMail[]>
  close(): Promise<void>
}

/**
 * Starts a real SMTP server on loopback for mail tests. `onRcptTo` returns an error text to answer
 * 451 (temporary failure), or `null` to accept. `smtp-server` is loaded lazily (an optional peer).
 */
export async function startSmtp(
  options: { onRcptTo?: (address: string) => string | null } = {},
): Promise<TestSmtp> {
  const { SMTPServer } = await import('smtp-server')
  const received: ReceivedMail[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, callback) {
      const refusal = options.onRcptTo?.(address.address) ?? null
      if (refusal === null) return callback()
      const error = Object.assign(new Error(refusal), { responseCode: 451 })
      callback(error)
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        const envelope = session.envelope
        received.push({
          from: envelope.mailFrom ? envelope.mailFrom.address : null,
          to: envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        })
        callback()
      })
    },
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.server.address() as AddressInfo).port
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    received,
    async waitFor(n, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs
      while (received.length < n) {
        if (Date.now() > end)
          throw new Error(`smtp: ${received.length} of ${n} messages after ${timeoutMs} ms`)
        await new Promise((r) => setTimeout(r, 25))
      }
      return received
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
