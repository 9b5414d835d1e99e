import { REDEEM_FUNCTION_V1, redeemFunctionV2 } from './redeem-function.ts'

/** The text of `source` from `from` (included) to `to` (excluded); both must occur exactly once. */
function between(source: string, from: string, to: string | null): string {
  const a = source.indexOf(from)
  const b = to === null ? source.length : source.indexOf(to)
  if (a < 0 || source.indexOf(from, a + 1) >= 0 || b < a || (to !== null && source.indexOf(to, b + 1) >= 0)) {
    throw new Error('rc_redeem: a statement of 0002_redeem moved')
  }
  return source.slice(a, b)
}

/** What `0005`'s function keeps of the released ones: its signature (`0004`'s), the consume, the result rows. */
const V2 = redeemFunctionV2()
const SIGNATURE = between(V2, 'create or replace function rc_redeem(', 'declare\n')
const CONSUME = between(
  REDEEM_FUNCTION_V1,
  '  if v_outcome is null then\n',
  "  if v_outcome = 'consumed' then\n",
).replaceAll(', changed_at = p_now', '')
const RESULT_ROWS = between(REDEEM_FUNCTION_V1, '  return query select v_outcome, u.k,', null)

/**
 * The `rc_redeem` of `0005_store_v2`. Same arguments and result as `0004_attempts_touched`'s; what
 * changed is what a call writes:
 *
 * - the limiter keys are serialised with transaction-scoped advisory locks (one per key, taken in
 *   byte order) instead of reservation rows: the counters are read under the locks, and only a
 *   miss writes them (the upsert of `reserveAttempts`); a consume deletes the reset counters that
 *   exist and writes no other limiter row;
 * - the consume sets `state` and `used_at` only (no indexed column: a HOT update) and no batch
 *   counter; `remaining` is counted from the batch's codes under an advisory lock of the batch,
 *   so concurrent consumes of one batch report distinct counts;
 * - the audit row goes to `rc_audit_log`.
 *
 * Locks: the advisory locks of the keys, then the code row, then the batch's advisory lock. A constant of this package.
 */
export const REDEEM_FUNCTION_V3 = `${SIGNATURE}declare
  v_n integer := coalesce(cardinality(p_keys), 0);
  v_k text;
  v_outcome text;
  v_code text;
  v_batch text;
  v_key_id text;
  v_left integer;
begin
  if p_deadline is not null and clock_timestamp() > p_deadline then
    raise exception 'rc_redeem: start deadline passed' using errcode = '57014';
  end if;
  if v_n > 0 then
    for v_k in select u.k from unnest(p_keys) as u(k) order by u.k collate "C" loop
      perform pg_advisory_xact_lock(hashtextextended(v_k, 29284));
    end loop;
    if exists (
      select 1 from rc_attempts as a
      where a.key = any(p_keys)
        and (a.locked_until > p_now or a.failures >= p_max[array_position(p_keys, a.key)])
    ) then
      v_outcome := 'denied';
    end if;
  end if;

${CONSUME}  if v_outcome = 'consumed' then
    -- Consumes of one batch count what is left one at a time, each after the one before committed:
    -- two concurrent consumes never both see the other's code as left (a last code reports 0).
    perform pg_advisory_xact_lock(hashtextextended(v_batch, 29285));
    select count(*) into v_left from rc_codes as c where c.batch_id = v_batch and c.state = 'active';
    if v_n > 0 and cardinality(p_reset) > 0 then
      delete from rc_attempts as a where a.key = any(p_keys) and a.key = any(p_reset);
    end if;
    insert into rc_audit_log
      (id, at, event, user_id, batch_id, identifier_hash, client_hash, outcome, reason, data)
    values (p_audit_id, p_audit_at, p_audit_event, p_audit_user, v_batch, p_audit_identifier_hash,
      p_audit_client_hash, p_audit_outcome, p_audit_reason,
      coalesce(p_audit_data, '{}'::jsonb) || jsonb_build_object('remaining', v_left));
    return query select v_outcome, null::text, null::integer, null::integer, null::integer,
      null::timestamptz, v_code, v_batch, v_key_id, v_left;
    return;
  end if;

  if v_outcome = 'missed' and v_n > 0 then
    insert into rc_attempts as a (key, failures, consecutive, lockouts, locked_until, touched_at)
      select u.k, 1, 1, 0, to_timestamp(0), p_now
      from unnest(p_keys) as u(k)
      order by u.k collate "C"
      on conflict (key) do update
        set failures = a.failures + 1, consecutive = a.consecutive + 1, touched_at = p_now;
  end if;

${RESULT_ROWS}`
