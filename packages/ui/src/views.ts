/**
 * The pages as pure functions: view model in, HTML string out. No external assets: the CSS is
 * inline (with the response's CSP nonce) and the only script is a few lines for copy and print.
 */
import type { BatchView, ExportFormat, HistoryPage, RevealChannel } from '@recovery-codes/core'
import { formatDate, formatDuration } from './format.ts'
import { type Html, type HtmlValue, html, raw } from './html.ts'

/** Where each page and action lives, relative to the site root. */
export interface PagePaths {
  signIn: string
  login: string
  reauth: string
  dashboard: string
  codes: string
  generate: string
  download: string
  email: string
  verify: string
  codeAction: string
  deleteBatch: string
  logout: string
  /** POST: "I have saved my codes" (activates a pending batch). */
  confirm: string
  /** The replacement code after a recovery login (`replaceOnUse`). */
  replacement: string
  /** The "This wasn't me" page of the notification emails (its `linkBaseUrl`). */
  repudiate: string
}

/** Builds {@link PagePaths} for a mount point such as `''` or `/account`. */
export function pagePaths(base = ''): PagePaths {
  const b = base.replace(/\/+$/, '')
  return {
    signIn: `${b}/signin`,
    login: `${b}/login`,
    reauth: `${b}/reauth`,
    dashboard: `${b}/` || '/',
    codes: `${b}/codes`,
    generate: `${b}/generate`,
    download: `${b}/download`,
    email: `${b}/email`,
    verify: `${b}/verify-setup`,
    codeAction: `${b}/code`,
    deleteBatch: `${b}/delete-all`,
    logout: `${b}/logout`,
    confirm: `${b}/confirm`,
    replacement: `${b}/replacement`,
    repudiate: `${b}/wasnt-me`,
  }
}

/** A one-shot message shown at the top of the next page. */
export interface Flash {
  kind: 'success' | 'error' | 'info'
  text: string
}

/** What every page needs. */
export interface LayoutModel {
  siteName: string
  title: string
  /** CSP nonce for the inline style and script. */
  nonce: string
  paths: PagePaths
  /** Logged-in user (shows the logout button), or `null`. */
  user: { label: string } | null
  /** The session's CSRF token (the logout form needs it). */
  csrf: string
  flash?: readonly Flash[]
}

const CSS = `
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f5f7}
a{color:#0b57d0}
header.top{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem 1rem;padding:.75rem 1rem;background:#1f2937;color:#fff}
header.top .brand{font-weight:700;font-size:1.1rem;color:#fff;text-decoration:none}
header.top .who{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem;min-width:0}
header.top .who span{overflow-wrap:anywhere;font-size:.9rem;opacity:.9}
header.top form{margin:0}
header.top button{background:#fff;color:#1f2937;border-color:#fff}
main{max-width:64rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:0 0 .5rem}
.card{background:#fff;border:1px solid #d8dce2;border-radius:.5rem;padding:1rem;margin:0 0 1rem}
.grid{display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr))}
.grid{margin:0 0 1rem}
.grid>.card{margin:0}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}
.hint{font-size:.875rem;color:#4b5563;margin:.25rem 0}
input[type=text],input[type=email],input[type=password],input[type=number]{width:100%;max-width:28rem;font:inherit;padding:.5rem .6rem;border:1px solid #9ca3af;border-radius:.375rem;background:#fff}
input.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;letter-spacing:.04em}
input:focus,button:focus,a:focus{outline:3px solid #93c5fd;outline-offset:1px}
button{font:inherit;font-weight:600;padding:.5rem .9rem;border-radius:.375rem;border:1px solid #0b57d0;background:#0b57d0;color:#fff;cursor:pointer;min-height:2.5rem}
button.secondary{background:#fff;color:#0b57d0}
button.danger{background:#b42318;border-color:#b42318}
button:disabled{opacity:.55;cursor:not-allowed}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-top:.75rem}
.row form{margin:0}
.flash{padding:.75rem 1rem;border-radius:.375rem;margin:0 0 1rem;border:1px solid}
.flash.success{background:#ecfdf3;border-color:#75e0a7;color:#05603a}
.flash.error{background:#fef3f2;border-color:#fda29b;color:#912018}
.flash.info{background:#eff8ff;border-color:#84caff;color:#1849a9}
.warn{background:#fffaeb;border:1px solid #fec84b;color:#93370d;padding:.5rem .75rem;border-radius:.375rem}
.big{font-size:2rem;font-weight:700;line-height:1.1}
ol.codes{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:clamp(.8rem,3.5vw,1.1rem);columns:2 20rem;padding-left:2.2rem;margin:.5rem 0}
ol.codes li{padding:.15rem 0;break-inside:avoid;white-space:nowrap}
.table-wrap{overflow-x:auto}
.table-wrap:focus{outline:3px solid #93c5fd;outline-offset:1px}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e5e7eb;white-space:nowrap}
th{white-space:normal;vertical-align:bottom}
td:last-child{white-space:normal;min-width:7rem}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
.print-only{display:none!important}
dl.sheet{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:0 0 1rem}
dl.sheet dt{font-weight:600}
dl.sheet dd{margin:0;overflow-wrap:anywhere}
.pager{display:flex;gap:1rem;align-items:center;margin-top:.5rem}
.narrow{max-width:30rem;margin:0 auto}
@media (max-width:480px){main{padding:.75rem}.card{padding:.8rem}h1{font-size:1.3rem}button{width:100%}.row form{width:100%}header.top button{width:auto}}
@media print{header.top,.no-print,.flash,button,form{display:none!important}.print-only{display:block!important}dl.sheet.print-only{display:grid!important}body{background:#fff;color:#000}main{max-width:none;padding:0}.card{border:0;padding:0}ol.codes{font-size:12pt;columns:2 34ch;padding-left:3rem}}
`

// The live region is emptied first so that the same message said twice is announced twice.
const SCRIPT = `
const live=document.getElementById('live');
const say=t=>{if(!live)return;live.textContent='';setTimeout(()=>{live.textContent=t},100)};
for(const b of document.querySelectorAll('[data-copy]'))b.addEventListener('click',async()=>{const el=document.getElementById(b.dataset.copy);try{await navigator.clipboard.writeText(el.innerText.trim());b.textContent='Copied';say('The codes were copied to the clipboard.')}catch{b.textContent='Copy failed: select the codes and copy them';say('Copying failed: select the codes and copy them.')}});
for(const b of document.querySelectorAll('[data-print]'))b.addEventListener('click',()=>window.print());
for(const f of document.querySelectorAll('form[data-download]'))f.addEventListener('submit',()=>{const x=f.dataset.download;say('Your codes are downloading as a .'+x+' file. Each format downloads once.');const b=f.querySelector('button');if(b)setTimeout(()=>{b.textContent='Downloaded .'+x},0)});
for(const f of document.querySelectorAll('form[data-confirm]'))f.addEventListener('submit',e=>{if(!confirm(f.dataset.confirm))e.preventDefault()});
for(const b of document.querySelectorAll('button[data-enable-in]'))setTimeout(()=>{b.disabled=false;const s=document.getElementById(b.dataset.status||'');if(s)s.textContent=b.dataset.enabledText||''},Number(b.dataset.enableIn)*1000);
`

function csrfField(token: string): Html {
  return html`<input type="hidden" name="_csrf" value="${token}">`
}

function flashes(list: readonly Flash[] | undefined): Html {
  return html`${(list ?? []).map(
    (f) =>
      html`<div class="flash ${f.kind}" role="${f.kind === 'error' ? 'alert' : 'status'}">${f.text}</div>`,
  )}`
}

/** The page shell: header with site name and (when logged in) the logout button. */
export function layout(model: LayoutModel, body: HtmlValue): string {
  const { nonce, paths } = model
  const who = model.user
    ? html`<div class="who"><span>Signed in as ${model.user.label}</span>
<form method="post" action="${paths.logout}">${csrfField(model.csrf)}<button type="submit" class="secondary" id="logout">Log out</button></form></div>`
    : ''
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${model.title} · ${model.siteName}</title>
<style nonce="${nonce}">${raw(CSS)}</style>
</head>
<body>
<header class="top"><a class="brand" href="${model.user ? paths.dashboard : paths.signIn}">${model.siteName}</a>${who}</header>
<main>
${flashes(model.flash)}
${body}
<div id="live" class="sr-only" role="status" aria-live="polite"></div>
</main>
<script nonce="${nonce}">${raw(SCRIPT)}</script>
</body>
</html>`.value
}

function codeInput(id: string, label: string, hint?: string, errorId?: string): Html {
  const described = [errorId, hint ? `${id}-hint` : undefined].filter(Boolean).join(' ')
  return html`<label for="${id}">${label}</label>
<input class="code" id="${id}" name="code" type="text" inputmode="text" autocomplete="one-time-code" autocapitalize="none" autocorrect="off" spellcheck="false" required maxlength="64"${described ? html` aria-describedby="${described}"` : ''}${errorId ? html` aria-invalid="true"` : ''}>
${hint ? html`<p class="hint" id="${id}-hint">${hint}</p>` : ''}`
}

/** The password confirmation inside a sensitive form (see `DashboardModel.reauthInline`). */
function passwordField(id: string): Html {
  return html`<label for="${id}">Your password</label>
<input id="${id}" name="password" type="password" autocomplete="current-password" required maxlength="1024" aria-describedby="${id}-hint">
<p class="hint" id="${id}-hint">Confirm it is you: this action changes your recovery codes.</p>`
}

/** The first factor of the demo: email and password. */
export function signInPage(
  l: LayoutModel,
  m: { email?: string; error?: string; codeLoginAvailable: boolean; note?: string },
): string {
  return layout(
    l,
    html`<div class="narrow"><h1>Sign in</h1>
${m.error ? html`<div class="flash error" role="alert">${m.error}</div>` : ''}
<form class="card" method="post" action="${l.paths.signIn}" novalidate>
${csrfField(l.csrf)}
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="254" value="${m.email ?? ''}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<div class="row"><button type="submit">Sign in</button></div>
</form>
${m.note ? html`<p class="hint">${m.note}</p>` : ''}
${m.codeLoginAvailable ? html`<p><a href="${l.paths.login}">Sign in with your email and a recovery code instead</a></p>` : ''}
</div>`,
  )
}

/** The recovery-code login: the second step after the password, or email + code. */
export function recoveryLoginPage(
  l: LayoutModel,
  m: {
    mode: 'second-factor' | 'identifier-and-code'
    email?: string
    error?: string
    /** For the second factor: who is signing in. */
    pendingLabel?: string
  },
): string {
  const second = m.mode === 'second-factor'
  return layout(
    l,
    html`<div class="narrow"><h1>${second ? 'Two-step verification' : 'Sign in with a recovery code'}</h1>
${m.error ? html`<div class="flash error" role="alert" id="login-error">${m.error}</div>` : ''}
<form class="card" method="post" action="${l.paths.login}">
${csrfField(l.csrf)}
${
  second
    ? html`<p>Password accepted${m.pendingLabel ? html` for <strong>${m.pendingLabel}</strong>` : ''}. Enter one of your recovery codes to finish signing in. Each code works once.</p>`
    : html`<p>Enter the email address of your account and one of your recovery codes. Each code works once.</p>
<label for="identifier">Email</label>
<input id="identifier" name="identifier" type="email" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="254" value="${m.email ?? ''}">`
}
${codeInput('code', 'Recovery code', 'Dashes, spaces and letter case do not matter.', m.error ? 'login-error' : undefined)}
<div class="row"><button type="submit">Verify and sign in</button></div>
</form>
<p><a href="${l.paths.signIn}">${second ? 'Start over' : 'Sign in with your password'}</a></p>
</div>`,
  )
}

/** Asks for the password again before a sensitive action. */
export function reauthPage(l: LayoutModel, m: { next: string; error?: string }): string {
  return layout(
    l,
    html`<div class="narrow"><h1>Confirm it is you</h1>
${m.error ? html`<div class="flash error" role="alert">${m.error}</div>` : ''}
<form class="card" method="post" action="${l.paths.reauth}">
${csrfField(l.csrf)}
<input type="hidden" name="next" value="${m.next}">
<p>This action changes or reveals your recovery codes. Enter your password to continue.</p>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<div class="row"><button type="submit">Confirm</button><a href="${l.paths.dashboard}">Cancel</a></div>
</form></div>`,
  )
}

/** The dashboard's view model. */
export interface DashboardModel {
  remaining: number
  lowCodes: boolean
  lowCodesThreshold: number
  shouldRegenerate: boolean
  active: BatchView | null
  generateRetryAfterMs: number
  /**
   * The fresh batch's reveal slot, while it lives: its channels (the view, each format, the email)
   * each work once, in any order.
   */
  reveal: {
    /** The channels already used (`rc.revealStatus`); the others are offered. */
    used: readonly RevealChannel[]
    emailEnabled: boolean
    /** The download formats the service offers (`rc.exportFormats`). */
    formats: readonly ExportFormat[]
    /**
     * `true` while the new batch waits for "I have saved my codes" (`activation: 'confirm'`): it
     * is not active yet and the current codes keep working.
     */
    pending?: boolean
    /** The slot holds the one replacement code of a recovery login, not a new batch. */
    replacement?: boolean
  } | null
  /** New batches wait for the user's confirmation (`activation: 'confirm'`). */
  confirmActivation?: boolean
  history: HistoryPage
  /** A fresh re-authentication is on record (else sensitive actions ask for the password first). */
  fresh: boolean
  /**
   * Not fresh, and the host can check passwords: the forms with typed input (generate, one code,
   * delete all) carry a password field, so the action completes in one step and nothing typed is
   * lost to a detour.
   */
  reauthInline?: boolean
  /** Where emailed codes end up, for the demo's dev mailer. */
  emailNote?: string
}

/** The download and email buttons of a reveal slot; a used channel's button is disabled. */
function saveButtons(
  l: LayoutModel,
  m: { used: readonly RevealChannel[]; emailEnabled: boolean; formats: readonly ExportFormat[] },
) {
  const p = l.paths
  const csrf = csrfField(l.csrf)
  const off = (c: RevealChannel) => (m.used.includes(c) ? ' disabled' : '')
  return html`<div class="row">
${m.formats.map(
  (f) =>
    html`<form method="post" action="${p.download}" data-download="${f}">${csrf}<input type="hidden" name="format" value="${f}"><button type="submit" class="secondary" id="download-${f}"${off(f)}>${m.used.includes(f) ? `Downloaded .${f}` : `Download .${f}`}</button></form>`,
)}
${m.emailEnabled ? html`<form method="post" action="${p.email}">${csrf}<button type="submit" class="secondary" id="email-codes"${off('email')}>${m.used.includes('email') ? 'Emailed' : 'Email them to me'}</button></form>` : ''}
</div>`
}

/** The primary "I have saved my codes" button: activates a pending batch. */
function confirmForm(l: LayoutModel, id: string): Html {
  return html`<form method="post" action="${l.paths.confirm}" class="row">${csrfField(l.csrf)}<button type="submit" id="${id}" aria-describedby="${id}-hint">I have saved my codes</button></form>
<p class="hint" id="${id}-hint">Turns on the new codes. Your previous codes stop working.</p>`
}

/** How a used channel is listed: "shown", ".txt downloaded", "emailed". */
function channelDone(c: RevealChannel): string {
  return c === 'view' ? 'shown' : c === 'email' ? 'emailed' : `.${c} downloaded`
}

function statusLabel(b: BatchView): string {
  return b.status === 'active' ? 'active' : b.status
}

function yesNo(v: boolean): string {
  return v ? 'yes' : 'no'
}

/** The dashboard: status, generate, downloads, verify, manage one code, delete all, history. */
export function dashboardPage(l: LayoutModel, m: DashboardModel): string {
  const p = l.paths
  const a = m.active && m.active.status === 'active' ? m.active : null
  const csrf = csrfField(l.csrf)
  const status = html`<section class="card" aria-labelledby="status-h"><h2 id="status-h">Your recovery codes</h2>
${
  a
    ? html`<p><span class="big" id="remaining">${m.remaining}</span> of ${a.issued} codes left</p>
<p class="hint">Created ${formatDate(a.createdAt)} · ${a.expiresAt === null ? 'never expires' : html`expires ${formatDate(a.expiresAt)}`} · used ${a.used} · setup verified: ${yesNo(a.verified)}</p>
${m.lowCodes ? html`<p class="warn" id="low-codes" role="status">Only ${m.remaining} ${m.remaining === 1 ? 'code' : 'codes'} left (warning at ${m.lowCodesThreshold}). Generate a new batch soon.</p>` : ''}
${a.used > 0 ? html`<p class="warn">A recovery code from this batch has been used. Generate a new batch so you keep a full set.</p>` : ''}`
    : html`<p id="remaining-none">You have no active recovery codes.${m.active ? html` Your last batch is ${statusLabel(m.active)}.` : ''} Generate a batch and keep it somewhere safe: it lets you sign in when your other factor is unavailable.</p>`
}
</section>`

  const reveal = !m.reveal
    ? ''
    : m.reveal.replacement
      ? m.reveal.used.includes('view')
        ? ''
        : html`<section class="card" aria-labelledby="reveal-h"><h2 id="reveal-h">Your replacement code</h2>
<p>A new code replaced the one you signed in with. It is shown once, for a few minutes.</p>
<p><a href="${p.replacement}" id="show-replacement-link">Show my replacement code</a></p>
</section>`
      : html`<section class="card" aria-labelledby="reveal-h"><h2 id="reveal-h">${m.reveal.pending ? 'Your new codes are not active yet' : 'Save your new codes'}</h2>
${
  m.reveal.pending
    ? html`<p class="warn" id="pending-note" role="status">Your new codes are not active yet.${a ? ' Your current codes still work' : ''}${a ? ' until you confirm that you have saved the new ones.' : ' Confirm that you have saved them to turn them on.'} If you do not confirm within a few minutes, the new codes are discarded${a ? ' and your current codes stay as they are' : ''}.</p>`
    : ''
}
<p class="hint">You can show them, download each format and email them, once each and in any order, for a few minutes after they were generated.${m.fresh ? '' : ' You will be asked for your password first.'}</p>
${m.reveal.used.includes('view') ? '' : html`<p><a href="${p.codes}" id="show-codes-link">Show my codes</a></p>`}
${saveButtons(l, m.reveal)}
${m.reveal.used.length > 0 ? html`<p class="hint" id="reveal-used">Already done: ${m.reveal.used.map(channelDone).join(', ')}.</p>` : ''}
${m.reveal.emailEnabled && m.emailNote ? html`<p class="hint" id="email-note">${m.emailNote}</p>` : ''}
${m.reveal.pending ? confirmForm(l, 'confirm-dashboard') : ''}
</section>`

  const cooldown = m.generateRetryAfterMs > 0
  const cooldownSeconds = Math.ceil(m.generateRetryAfterMs / 1000)
  const inline = m.reauthInline === true
  const generate = html`<section class="card" aria-labelledby="gen-h"><h2 id="gen-h">${a ? 'Generate a new batch' : 'Generate recovery codes'}</h2>
${a ? html`<p class="hint">${m.confirmActivation ? 'Your current codes keep working until you confirm that you have saved the new ones; then they stop working.' : 'A new batch replaces the current one at once: its codes stop working.'}${m.fresh || inline ? '' : ' You will be asked for your password first.'}</p>` : ''}
${cooldown ? html`<p class="warn" id="generate-cooldown" role="status">You can generate a new batch in ${formatDuration(m.generateRetryAfterMs)}.</p>` : ''}
<form method="post" action="${p.generate}"${a ? html` data-confirm="${m.confirmActivation ? 'Generate new recovery codes? Your current codes stop working once you confirm the new ones.' : 'Replace your current recovery codes? They will stop working.'}"` : ''}>
${csrf}
<label for="expires">Expire after (days)</label>
<input id="expires" name="expiresInDays" type="number" min="1" max="3650" step="1" inputmode="numeric" aria-describedby="expires-hint">
<p class="hint" id="expires-hint">Leave empty for the site's default (codes that do not expire, unless the site sets a limit).</p>
${a && inline ? passwordField('generate-password') : ''}
<div class="row"><button type="submit" id="generate"${cooldown ? html` data-enable-in="${cooldownSeconds}" data-status="generate-cooldown" data-enabled-text="You can generate a new batch now." disabled` : ''}>${a ? 'Regenerate codes' : 'Generate codes'}</button></div>
</form></section>`

  const verify =
    a && !a.verified
      ? html`<section class="card" aria-labelledby="verify-h"><h2 id="verify-h">Test your setup</h2>
<p class="hint">Check once that a saved code works. The code stays valid.</p>
<form method="post" action="${p.verify}">${csrf}${codeInput('verify-code', 'A code from this batch')}
<div class="row"><button type="submit" id="verify">Verify</button></div></form></section>`
      : ''

  const manage = a
    ? html`<section class="card" aria-labelledby="one-h"><h2 id="one-h">Invalidate or delete one code</h2>
<p class="hint">For a code you think someone else has seen.${m.fresh || inline ? '' : ' You will be asked for your password first.'}</p>
<form method="post" action="${p.codeAction}">${csrf}${codeInput('one-code', 'The code')}
${inline ? passwordField('one-password') : ''}
<div class="row"><button type="submit" name="action" value="invalidate" class="secondary" id="invalidate">Invalidate</button>
<button type="submit" name="action" value="delete" class="danger" id="delete-one">Delete</button></div></form></section>
<section class="card" aria-labelledby="all-h"><h2 id="all-h">Delete all codes</h2>
<p class="hint">Removes the whole batch. You will have no recovery codes until you generate new ones.</p>
<form method="post" action="${p.deleteBatch}" data-confirm="Delete all your recovery codes?">${csrf}
${inline ? passwordField('all-password') : ''}
<div class="row"><button type="submit" class="danger" id="delete-all">Delete all codes</button></div></form></section>`
    : ''

  const h = m.history
  const rows = h.items.map(
    (b) =>
      html`<tr><td>${formatDate(b.createdAt)}</td><td>${statusLabel(b)}</td><td>${b.issued}</td><td>${b.unused}</td><td>${b.used}</td><td>${b.invalidated}</td><td>${b.deleted}</td><td>${b.expiresAt === null ? 'never' : formatDate(b.expiresAt)}</td><td>${[b.viewed && 'viewed', b.downloaded && 'downloaded', b.emailed && 'emailed', b.verified && 'verified'].filter(Boolean).join(', ') || '–'}</td></tr>`,
  )
  const history = html`<section class="card" aria-labelledby="hist-h"><h2 id="hist-h">History</h2>
${
  h.items.length === 0
    ? html`<p class="hint">No batches yet.</p>`
    : html`<div class="table-wrap" id="history-wrap" role="region" aria-label="History table" tabindex="0"><table id="history"><caption class="hint">${h.total} ${h.total === 1 ? 'batch' : 'batches'}, newest first</caption>
<thead><tr><th scope="col">Created</th><th scope="col">Status</th><th scope="col">Issued</th><th scope="col">Unused</th><th scope="col">Used</th><th scope="col">Invalidated</th><th scope="col">Deleted</th><th scope="col">Expires</th><th scope="col">Done</th></tr></thead>
<tbody>${rows}</tbody></table></div>
${
  h.totalPages > 1
    ? html`<nav class="pager" aria-label="History pages">${h.page > 1 ? html`<a href="${p.dashboard}?page=${h.page - 1}" rel="prev">Newer</a>` : ''}<span>Page ${h.page} of ${h.totalPages}</span>${h.page < h.totalPages ? html`<a href="${p.dashboard}?page=${h.page + 1}" rel="next">Older</a>` : ''}</nav>`
    : ''
}`
}
</section>`

  return layout(
    l,
    html`<h1>Recovery codes</h1>${status}${reveal}<div class="grid">${generate}${verify}</div>${manage}${history}`,
  )
}

/** The codes of a fresh batch, shown once. */
export function codesPage(
  l: LayoutModel,
  m: {
    codes: readonly string[]
    /** Printed on the sheet with the account and the date, to tell sheets apart. */
    batchId?: string
    createdAt: number | null
    expiresAt: number | null
    emailEnabled: boolean
    /** The download formats the service offers (`rc.exportFormats`). */
    formats: readonly ExportFormat[]
    /** The slot's channels used so far (the view, and any format or email used before it). */
    used: readonly RevealChannel[]
    fresh: boolean
    emailNote?: string
    /** The batch waits for "I have saved my codes" (`activation: 'confirm'`). */
    pending?: boolean
  },
): string {
  const p = l.paths
  return layout(
    l,
    html`<h1>Your new recovery codes</h1>
<section class="card" aria-labelledby="codes-h"><h2 id="codes-h">Save these codes now</h2>
<p class="warn no-print" role="status">This is the only time they are shown. Each code works once. Store them somewhere safe, such as a password manager.</p>
<p class="print-only" id="sheet-title"><strong>${l.siteName}</strong>: recovery codes. Each code works once. Keep this sheet somewhere safe.</p>
<dl class="sheet print-only" id="sheet">
<dt>Site</dt><dd>${l.siteName}</dd>
${l.user ? html`<dt>Account</dt><dd id="sheet-account">${l.user.label}</dd>` : ''}
${m.createdAt === null ? '' : html`<dt>Generated</dt><dd id="sheet-date">${formatDate(m.createdAt)}</dd>`}
${m.batchId ? html`<dt>Batch</dt><dd id="sheet-batch">${m.batchId}</dd>` : ''}
</dl>
<ol class="codes" id="codes" aria-hidden="true">${m.codes.map((c) => html`<li><code>${c}</code></li>`)}</ol>
<ol class="sr-only" id="codes-spelled" aria-label="Your recovery codes, spelled character by character">${m.codes.map((c) => html`<li>${spellCode(c)}</li>`)}</ol>
<p class="hint">${batchDates(m)}${m.batchId ? html` <span class="no-print">Batch <span id="batch-id">${m.batchId}</span>.</span>` : ''}</p>
<div class="row no-print"><button type="button" class="secondary" data-copy="codes" id="copy">Copy</button><button type="button" class="secondary" data-print id="print">Print</button></div>
</section>
<section class="card no-print" aria-labelledby="save-h"><h2 id="save-h">Download or email (once each)</h2>
<p class="hint">Each format downloads once and the email is sent once, in any order, while the codes are available.${m.fresh ? '' : ' You will be asked for your password first.'}</p>
${saveButtons(l, m)}
${m.emailEnabled && m.emailNote ? html`<p class="hint" id="email-note">${m.emailNote}</p>` : ''}
${m.pending ? '' : html`<p><a href="${p.dashboard}" id="done">I have saved my codes</a></p>`}
</section>
${
  m.pending
    ? html`<section class="card no-print" aria-labelledby="confirm-h"><h2 id="confirm-h">Turn on the new codes</h2>
<p id="pending-note">These codes are not active yet: your current codes still work until you confirm. Save the codes first (copy, download, print or email), then confirm.</p>
${confirmForm(l, 'confirm')}
</section>`
    : ''
}`,
  )
}

/**
 * A code as a screen reader should read it: one character at a time, groups separated by commas
 * (`"AB-C1"` → `"A B, C 1"`). The visual list stays grouped and is hidden from assistive technology.
 */
export function spellCode(code: string): string {
  return code
    .split(/[-\s]+/)
    .filter(Boolean)
    .map((group) => [...group].join(' '))
    .join(', ')
}

/** "Generated …. They expire …." of a new batch. */
function batchDates(m: { createdAt: number | null; expiresAt: number | null }): string {
  const made = m.createdAt === null ? '' : `Generated ${formatDate(m.createdAt)}. `
  return made + (m.expiresAt === null ? 'They do not expire.' : `They expire ${formatDate(m.expiresAt)}.`)
}

/**
 * The page the generate form redirects to: the codes are ready, and a POST shows them once. A GET
 * (a reload, a prefetch, a link preview) never spends the one-time view.
 */
export function codesReadyPage(
  l: LayoutModel,
  m: { createdAt: number | null; expiresAt: number | null },
): string {
  const p = l.paths
  return layout(
    l,
    html`<h1>Your new recovery codes</h1>
<section class="card" aria-labelledby="ready-h"><h2 id="ready-h">Ready to show</h2>
<p class="warn" role="status">They are shown once, on the next page. Make sure nobody can see your screen, then save them somewhere safe, such as a password manager.</p>
<form method="post" action="${p.codes}">${csrfField(l.csrf)}<button type="submit" id="show-codes">Show my codes</button></form>
<p class="hint">${batchDates(m)}</p>
</section>`,
  )
}

/** The 404 page: the site's layout, a heading and a way back. */
export function notFoundPage(l: LayoutModel, m: { home: { href: string; label: string } }): string {
  return messagePage(l, {
    heading: 'Page not found',
    text: 'There is no page at this address. It may have moved, or the link may be mistyped.',
    link: m.home,
  })
}

/** A short page with a message and a link onward. */
export function messagePage(
  l: LayoutModel,
  m: { heading: string; text: string; link: { href: string; label: string } },
): string {
  return layout(
    l,
    html`<div class="narrow"><h1>${m.heading}</h1><div class="card"><p>${m.text}</p><p><a href="${m.link.href}">${m.link.label}</a></p></div></div>`,
  )
}

/** The replacement code is ready: a POST shows it once (a GET, a reload or a prefetch spends nothing). */
export function replacementReadyPage(l: LayoutModel): string {
  return layout(
    l,
    html`<h1>Your replacement code</h1>
<section class="card" aria-labelledby="ready-h"><h2 id="ready-h">A new code replaced the one you used</h2>
<p>You signed in with a recovery code, so that code no longer works. One new code was added to your set in its place.</p>
<p class="warn" role="status">It is shown once, on the next page. Make sure nobody can see your screen, then save it with your other codes.</p>
<form method="post" action="${l.paths.replacement}">${csrfField(l.csrf)}<button type="submit" id="show-replacement">Show my replacement code</button></form>
<p><a href="${l.paths.dashboard}">Skip for now</a></p>
</section>`,
  )
}

/** The replacement code of a recovery login, shown once, with copy and print. */
export function replacementPage(l: LayoutModel, m: { code: string; batchId?: string; at: number }): string {
  return layout(
    l,
    html`<h1>Your replacement code</h1>
<section class="card" aria-labelledby="codes-h"><h2 id="codes-h">Save this code now</h2>
<p class="warn no-print" role="status">This is the only time it is shown. Add it to where you keep your other recovery codes; it works once, like them.</p>
<p class="print-only" id="sheet-title"><strong>${l.siteName}</strong>: replacement recovery code. It works once. Keep this sheet with your other codes.</p>
<dl class="sheet print-only" id="sheet">
<dt>Site</dt><dd>${l.siteName}</dd>
${l.user ? html`<dt>Account</dt><dd id="sheet-account">${l.user.label}</dd>` : ''}
<dt>Issued</dt><dd id="sheet-date">${formatDate(m.at)}</dd>
${m.batchId ? html`<dt>Batch</dt><dd id="sheet-batch">${m.batchId}</dd>` : ''}
</dl>
<ol class="codes" id="codes" aria-hidden="true"><li><code>${m.code}</code></li></ol>
<ol class="sr-only" id="codes-spelled" aria-label="Your replacement code, spelled character by character"><li>${spellCode(m.code)}</li></ol>
<div class="row no-print"><button type="button" class="secondary" data-copy="codes" id="copy">Copy</button><button type="button" class="secondary" data-print id="print">Print</button></div>
<p class="no-print"><a href="${l.paths.dashboard}" id="done">I have saved it</a></p>
</section>`,
  )
}

/** What a "This wasn't me" link is about, in the user's words. */
const KIND_TEXT: Record<string, string> = {
  'recovery-login': 'someone signed in to your account with a recovery code',
  'codes-generated': 'new recovery codes were generated for your account',
  'low-codes': 'your account is running low on recovery codes',
  exhausted: 'your account has used all its recovery codes',
  locked: 'sign-in with recovery codes was locked after too many failed attempts',
  disabled: 'your recovery codes were disabled after too many failed attempts',
}

/** The "This wasn't me" page: GET explains and asks; only the POST of its button revokes. */
export function repudiatePage(
  l: LayoutModel,
  m: { token: string; kind: string; expiresAt: number; contact: string },
): string {
  const what = KIND_TEXT[m.kind] ?? 'something happened to your recovery codes'
  return layout(
    l,
    html`<div class="narrow"><h1>This wasn't me</h1>
<section class="card" aria-labelledby="rep-h"><h2 id="rep-h">Secure your account</h2>
<p>We emailed you because ${what}.</p>
<p>If that was not you, confirm below. This will:</p>
<ul id="repudiate-effects"><li>disable all your current recovery codes at once, so nobody can sign in with them;</li><li>sign your account out where the site supports it.</li></ul>
<p class="hint">Nothing has changed yet. This link works once, until ${formatDate(m.expiresAt)}.</p>
<form method="post" action="${l.paths.repudiate}">${csrfField(l.csrf)}<input type="hidden" name="token" value="${m.token}">
<div class="row"><button type="submit" class="danger" id="repudiate">Yes, this wasn't me: disable my codes</button></div></form>
<p>If it was you, you can close this page.</p>
<p class="hint" id="contact">${m.contact}</p>
</section></div>`,
  )
}

/** The outcome of a "This wasn't me" link: done, or why the link cannot be used. */
export function repudiationResultPage(
  l: LayoutModel,
  m:
    | { ok: true; batchDisabled: boolean; contact: string }
    | { ok: false; reason: 'invalid' | 'expired' | 'used'; contact: string | null },
): string {
  const body = m.ok
    ? html`<h1>Your recovery codes are disabled</h1>
<div class="card"><div class="flash success" role="status" id="repudiate-result">${m.batchDisabled ? 'Done: your recovery codes no longer work.' : 'Done. You had no active recovery codes, so none had to be disabled.'}</div>
<p>Sign in with your password and generate new recovery codes. If you cannot sign in, or you think someone else has access to your account, get help:</p>
<p id="contact">${m.contact}</p></div>`
    : html`<h1>${m.reason === 'used' ? 'This link was already used' : m.reason === 'expired' ? 'This link has expired' : 'This link is not valid'}</h1>
<div class="card"><div class="flash error" role="alert" id="repudiate-result">${
        m.reason === 'used'
          ? 'This link has already been used, so nothing was changed now.'
          : m.reason === 'expired'
            ? 'This link has expired, so nothing was changed.'
            : 'This link is not valid (it may be incomplete or mistyped), so nothing was changed.'
      }</div>
${m.contact ? html`<p>If you think someone else has access to your account:</p><p id="contact">${m.contact}</p>` : ''}</div>`
  return layout(
    l,
    html`<div class="narrow">${body}<p><a href="${l.paths.signIn}">Go to sign in</a></p></div>`,
  )
}
