/**
 * The texts of the PostgreSQL function `rc_redeem` as each migration created it. Constants of
 * this package (never built from input); shipped ones never change.
 */
import { sql } from 'kysely'

/** A statement whose whole text is a constant of this file (a function body): nothing is bound. */
export const constantSql = (text: string) => sql.raw(text)

/** The argument list of `0002_redeem`'s `rc_redeem`, for `drop function`. */
export const REDEEM_V1_ARGS = sql`(text[], integer[], text[], timestamptz, text, bytea[], text, timestamptz, text, text, text, text, text, text, jsonb)`
/** The argument list of `0004_attempts_touched`'s `rc_redeem`. */
export const REDEEM_V2_ARGS = sql`(text[], integer[], text[], timestamptz, text, bytea[], text, timestamptz, text, text, text, text, text, text, jsonb, timestamptz)`

/** The `rc_redeem` function of `0002_redeem`, as it was released (migrations never change). */
export const REDEEM_FUNCTION_V1 = `create or replace function rc_redeem(
  p_keys text[],
  p_max integer[],
  p_reset text[],
  p_now timestamptz,
  p_user text,
  p_digests bytea[],
  p_audit_id text,
  p_audit_at timestamptz,
  p_audit_event text,
  p_audit_user text,
  p_audit_identifier_hash text,
  p_audit_client_hash text,
  p_audit_outcome text,
  p_audit_reason text,
  p_audit_data jsonb
) returns table (
  outcome text,
  key text,
  failures integer,
  consecutive integer,
  lockouts integer,
  locked_until timestamptz,
  code_id text,
  batch_id text,
  key_id text,
  remaining integer
)
language plpgsql volatile
set plan_cache_mode = force_generic_plan
as $rc$
#variable_conflict use_column
declare
  v_n integer := coalesce(cardinality(p_keys), 0);
  v_reserved text[];
  v_outcome text;
  v_code text;
  v_batch text;
  v_key_id text;
  v_left integer;
begin
  if v_n > 0 then
    with r as (
      insert into rc_attempts as a (key, failures, consecutive, lockouts, locked_until)
      select u.k, 1, 1, 0, to_timestamp(0)
      from unnest(p_keys) as u(k)
      order by u.k collate "C"
      on conflict (key) do update
        set failures = a.failures + 1, consecutive = a.consecutive + 1
        where a.locked_until <= p_now
          and a.failures < p_max[array_position(p_keys, excluded.key)]
      returning a.key
    )
    select coalesce(array_agg(r.key), '{}') into v_reserved from r;
    if cardinality(v_reserved) < v_n then
      -- Same transaction: no one saw these reservations, and the rows stay locked until commit.
      update rc_attempts as a
        set failures = a.failures - 1,
            consecutive = case when a.consecutive > 0 then a.consecutive - 1 else 0 end
        where a.key = any(v_reserved);
      v_outcome := 'denied';
    end if;
  end if;

  if v_outcome is null then
    if cardinality(p_digests) = 1 then
      update rc_codes as c
        set state = 'used', used_at = p_now, changed_at = p_now
        where c.user_id = p_user
          and c.digest = p_digests[1]
          and c.state = 'active'
          and c.changed_at is null
          and (c.expires_at is null or c.expires_at > p_now)
          and c.batch_id in (
            select b.id from rc_batches as b where b.user_id = p_user and b.status = 'active')
        returning c.id, c.batch_id, c.key_id into v_code, v_batch, v_key_id;
    elsif cardinality(p_digests) > 1 then
      update rc_codes as c
        set state = 'used', used_at = p_now, changed_at = p_now
        where c.id = (
            select c1.id from rc_codes as c1
            where c1.user_id = p_user
              and c1.digest = any(p_digests)
              and c1.state = 'active'
              and c1.changed_at is null
              and (c1.expires_at is null or c1.expires_at > p_now)
              and c1.batch_id in (
                select b.id from rc_batches as b where b.user_id = p_user and b.status = 'active')
            order by array_position(p_digests, c1.digest)
            limit 1
            for update)
          and c.user_id = p_user
          and c.state = 'active'
          and c.changed_at is null
          and (c.expires_at is null or c.expires_at > p_now)
          and c.batch_id in (
            select b.id from rc_batches as b where b.user_id = p_user and b.status = 'active')
        returning c.id, c.batch_id, c.key_id into v_code, v_batch, v_key_id;
    end if;
    v_outcome := case when v_code is null then 'missed' else 'consumed' end;
  end if;

  if v_outcome = 'consumed' then
    update rc_batches as b
      set unused = b.unused - 1, used = b.used + 1, last_used_at = p_now
      where b.id = v_batch
      returning b.unused into v_left;
    if v_n > 0 then
      delete from rc_attempts as a where a.key = any(p_keys) and a.key = any(p_reset);
      update rc_attempts as a
        set failures = a.failures - 1,
            consecutive = case when a.consecutive > 0 then a.consecutive - 1 else 0 end
        where a.key = any(p_keys) and a.key <> all(p_reset) and a.failures > 0;
    end if;
    insert into rc_audit
      (id, at, event, user_id, batch_id, identifier_hash, client_hash, outcome, reason, data)
    values (p_audit_id, p_audit_at, p_audit_event, p_audit_user, v_batch, p_audit_identifier_hash,
      p_audit_client_hash, p_audit_outcome, p_audit_reason,
      coalesce(p_audit_data, '{}'::jsonb) || jsonb_build_object('remaining', v_left));
    return query select v_outcome, null::text, null::integer, null::integer, null::integer,
      null::timestamptz, v_code, v_batch, v_key_id, v_left;
    return;
  end if;

  return query select v_outcome, u.k, a.failures, a.consecutive, a.lockouts, a.locked_until,
      null::text, null::text, null::text, null::integer
    from (select 1) as one
    left join (unnest(p_keys) as u(k) left join rc_attempts as a on a.key = u.k) on true;
end
$rc$`

/**
 * The `rc_redeem` of `0004_attempts_touched`: `0002_redeem`'s function with the reserve also setting
 * `touched_at`, and a start deadline `p_deadline` (the server's clock; `NULL` = none): a call that
 * reaches the server after it (held in a socket buffer while the server was frozen, say) raises
 * `57014` and changes nothing, instead of consuming a code for a caller that gave up long ago.
 */
export function redeemFunctionV2(): string {
  const edits: [string, string][] = [
    [
      '  p_audit_data jsonb\n) returns table (',
      '  p_audit_data jsonb,\n  p_deadline timestamptz\n) returns table (',
    ],
    [
      'begin\n  if v_n > 0 then',
      "begin\n  if p_deadline is not null and clock_timestamp() > p_deadline then\n    raise exception 'rc_redeem: start deadline passed' using errcode = '57014';\n  end if;\n  if v_n > 0 then",
    ],
    [
      'insert into rc_attempts as a (key, failures, consecutive, lockouts, locked_until)\n      select u.k, 1, 1, 0, to_timestamp(0)\n',
      'insert into rc_attempts as a (key, failures, consecutive, lockouts, locked_until, touched_at)\n      select u.k, 1, 1, 0, to_timestamp(0), p_now\n',
    ],
    [
      'set failures = a.failures + 1, consecutive = a.consecutive + 1\n',
      'set failures = a.failures + 1, consecutive = a.consecutive + 1, touched_at = p_now\n',
    ],
  ]
  let text = REDEEM_FUNCTION_V1
  for (const [from, to] of edits) {
    if (text.split(from).length !== 2) throw new Error('rc_redeem: a statement of 0002_redeem moved')
    text = text.replace(from, to)
  }
  return text
}
