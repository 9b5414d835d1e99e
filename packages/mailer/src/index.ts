export { type EmlFileMailer, type EmlFileMailerOptions, emlFileMailer } from './eml.ts'
export { assertHeaderSafe, assertSingleAddress, MAX_HEADER_LENGTH } from './headers.ts'
export {
  type NodemailerMailer,
  type NodemailerMailerOptions,
  nodemailerMailer,
  type TransportOrOptions,
} from './nodemailer.ts'
export {
  codesEmail,
  type EmailContent,
  escapeHtml,
  type NotificationKind,
  notificationEmail,
  purgeReportEmail,
} from './templates.ts'
