-- The DuckDB baseline: TC-04 (fund pool), TC-10 (structuring) of the shipped pack and the
-- benchmark rules BF-01 (fan-in) and BF-02 (fan-out), written in SQL with clearwatch's
-- semantics:
--   * amounts in integer minor units (exponent 2 currencies: the script checks), compared
--     with a rule's float thresholds as clearwatch does (minor / 100.0 as a DOUBLE);
--   * windows [k*step, k*step + length) aligned to the Unix epoch; a window exists for a
--     subject when one of its in/out transactions falls in it;
--   * accounts missing from the registry: role unknown, kind "", not licensed, holder "";
--   * each rule runs per currency;
--   * per subject, consecutive firing windows form one episode reported once, at its
--     highest-scoring window (the earliest on ties);
--   * TC-04's dwell (median, amount-weighted, FIFO) and pass-through start from the pool's
--     state one window length before the window;
--   * TC-04's `pays_on_pool_cadence` (rules/_shared): the comparison scans run without the
--     merchant registry, so no settlement is for another holder's registered merchant and
--     the cadence test always applies: payouts * 48 h >= payees * settled days * 24 h.
-- Statements are separated by lines holding only `;`; run.py times them all, together
-- with the CSV load. Parameters: {tx}, {accounts} (file paths).

SET TimeZone = 'UTC'
;
CREATE TABLE tx AS
SELECT tx_id, epoch_ms(ts) AS ts, "from" AS src, "to" AS dst,
       CAST(amount * 100 AS BIGINT) AS amt, currency, "type" AS ty
FROM read_csv('{tx}', header = true,
              types = {{'tx_id': 'VARCHAR', 'ts': 'TIMESTAMPTZ', 'from': 'VARCHAR', 'to': 'VARCHAR',
                        'amount': 'DECIMAL(18,2)', 'currency': 'VARCHAR', 'type': 'VARCHAR',
                        'merchant_id': 'VARCHAR'}})
;
CREATE TABLE acct AS
SELECT account_id, coalesce(holder_id, '') AS holder, coalesce(kind, '') AS kind,
       coalesce(nullif(role, ''), 'unknown') AS role, coalesce(licensed = 'true', false) AS licensed
FROM read_csv('{accounts}', header = true, all_varchar = true)
;
-- Every transaction with both ends' registry attributes (the graph, in SQL).
CREATE TABLE e AS
SELECT t.*,
       coalesce(s.licensed, false) AS s_lic, coalesce(s.role, 'unknown') AS s_role,
       coalesce(s.holder, '') AS s_holder, coalesce(s.kind, '') AS s_kind,
       coalesce(d.licensed, false) AS d_lic, coalesce(d.role, 'unknown') AS d_role,
       coalesce(d.holder, '') AS d_holder, coalesce(d.kind, '') AS d_kind
FROM tx t
LEFT JOIN acct s ON s.account_id = t.src
LEFT JOIN acct d ON d.account_id = t.dst
;
-- ---------------------------------------------------------------- TC-04 fund pool
-- subject: !is_institution; in: settlement_money; out: payout_to_other (rules/_shared).
CREATE TABLE tc04_rows AS
SELECT currency, dst AS hub, src AS peer, tx_id, ts, amt, 0 AS is_out FROM e
WHERE NOT (d_lic OR d_role IN ('acquirer', 'bank'))
  AND (ty = 'settlement' OR (s_lic AND ty NOT IN ('fee', 'cash_in', 'refund')))
UNION ALL
SELECT currency, src, dst, tx_id, ts, amt, 1 FROM e
WHERE NOT (s_lic OR s_role IN ('acquirer', 'bank'))
  AND ty IN ('transfer', 'payment', 'settlement') AND NOT d_lic
  AND NOT (s_holder <> '' AND d_holder = s_holder)
;
-- Window k (7 d long, stepped by 1 d) holds day k .. k+6.
CREATE TABLE tc04_win AS
WITH daily AS (
  SELECT currency, hub, is_out, ts // 86400000 AS day, peer, sum(amt) AS amt, count(*) AS n
  FROM tc04_rows GROUP BY ALL
)
SELECT currency, hub, day - i AS k,
       coalesce(sum(amt) FILTER (WHERE is_out = 0), 0) AS inflow,
       coalesce(sum(amt) FILTER (WHERE is_out = 1), 0) AS outflow,
       count(DISTINCT peer) FILTER (WHERE is_out = 1) AS payees,
       coalesce(sum(n) FILTER (WHERE is_out = 1), 0) AS payouts,
       count(DISTINCT day) FILTER (WHERE is_out = 0) AS settled_days
FROM daily, range(0, 7) AS r(i)
GROUP BY ALL
;
CREATE TABLE tc04_fired AS
SELECT * FROM tc04_win
WHERE payees >= 10
  AND inflow > 0 AND outflow::DOUBLE / inflow::DOUBLE >= 0.9::DOUBLE
  AND outflow::DOUBLE / inflow::DOUBLE <= 1.5::DOUBLE
  AND inflow::DOUBLE / 100.0::DOUBLE >= 3000.0::DOUBLE
  AND payouts::DOUBLE * 48.0::DOUBLE >= payees::DOUBLE * settled_days::DOUBLE * 24.0::DOUBLE
;
-- Dwell of the firing windows: events from one window length before the window to its
-- end, inflows first at equal times. The FIFO queue's total is the balance clamped at
-- zero (B_j = S_j - min(0, min S_i)); matched outflow so far is M_j = cumulative in - B_j;
-- the k-th matched unit paid out is the k-th unit paid in, so pieces are the overlaps of
-- the inflow intervals [cin - amt, cin) with the matched-outflow intervals [M_prev, M).
CREATE TABLE tc04_dwell AS
WITH ev AS (
  SELECT f.currency, f.hub, f.k, r.tx_id, r.ts, r.amt, r.is_out
  FROM tc04_fired f
  JOIN tc04_rows r ON r.currency = f.currency AND r.hub = f.hub
   AND r.ts >= f.k * 86400000 - 604800000 AND r.ts < f.k * 86400000 + 604800000
),
cum AS (
  SELECT *,
    sum(CASE WHEN is_out = 0 THEN amt ELSE -amt END) OVER w AS s,
    sum(CASE WHEN is_out = 0 THEN amt ELSE 0 END) OVER w AS cin
  FROM ev
  WINDOW w AS (PARTITION BY currency, hub, k ORDER BY ts, is_out, tx_id ROWS UNBOUNDED PRECEDING)
),
bal AS (
  SELECT *, cin - (s - least(0, min(s) OVER w)) AS m
  FROM cum
  WINDOW w AS (PARTITION BY currency, hub, k ORDER BY ts, is_out, tx_id ROWS UNBOUNDED PRECEDING)
),
iv AS (
  SELECT *, coalesce(lag(m) OVER (PARTITION BY currency, hub, k ORDER BY ts, is_out, tx_id), 0) AS m_prev
  FROM bal
),
pieces AS (
  SELECT o.currency, o.hub, o.k, o.ts - i.ts AS d,
         least(i.cin, o.m) - greatest(i.cin - i.amt, o.m_prev) AS a
  FROM iv o
  JOIN iv i ON i.currency = o.currency AND i.hub = o.hub AND i.k = o.k
   AND i.is_out = 0 AND i.cin - i.amt < o.m AND o.m_prev < i.cin
  WHERE o.is_out = 1 AND o.m > o.m_prev AND o.ts >= o.k * 86400000
),
ranked AS (
  SELECT *,
    sum(a) OVER (PARTITION BY currency, hub, k ORDER BY d, a ROWS UNBOUNDED PRECEDING) AS acc,
    (sum(a) OVER (PARTITION BY currency, hub, k) + 1) // 2 AS half
  FROM pieces
)
SELECT currency, hub, k, min(d) FILTER (WHERE acc >= half) AS dwell_ms
FROM ranked GROUP BY ALL
;
CREATE TABLE tc04_scored AS
SELECT 'TC-04' AS rule, f.currency, f.hub, f.k, 86400000 AS step, 604800000 AS length,
       70 + CASE WHEN f.payees >= 2 * 10 THEN 10 ELSE 0 END
          + CASE WHEN coalesce(d.dwell_ms::DOUBLE / 3600000.0::DOUBLE > 48.0::DOUBLE, false) THEN 10 ELSE 0 END
         AS score
FROM tc04_fired f
LEFT JOIN tc04_dwell d USING (currency, hub, k)
;
-- ---------------------------------------------------------------- TC-10 structuring
CREATE TABLE tc10_daily AS
WITH rows AS (
  SELECT currency, dst AS hub, ts // 86400000 AS day, 0 AS is_out,
         (amt::DOUBLE / 100.0::DOUBLE >= 0.9::DOUBLE * 50000.0::DOUBLE
          AND amt::DOUBLE / 100.0::DOUBLE < 50000.0::DOUBLE) AS near
  FROM e
  WHERE NOT (d_lic OR d_role IN ('acquirer', 'bank')) AND ty = 'cash_in'
  UNION ALL
  SELECT currency, src, ts // 86400000, 1,
         (ty = 'cash_out' AND amt::DOUBLE / 100.0::DOUBLE >= 0.9::DOUBLE * 50000.0::DOUBLE
            AND amt::DOUBLE / 100.0::DOUBLE < 50000.0::DOUBLE)
      OR (ty = 'transfer' AND s_kind <> 'corporate'
            AND amt::DOUBLE / 100.0::DOUBLE >= 0.9::DOUBLE * 500000.0::DOUBLE
            AND amt::DOUBLE / 100.0::DOUBLE < 500000.0::DOUBLE)
      OR (ty = 'transfer' AND s_kind = 'corporate'
            AND amt::DOUBLE / 100.0::DOUBLE >= 0.9::DOUBLE * 2000000.0::DOUBLE
            AND amt::DOUBLE / 100.0::DOUBLE < 2000000.0::DOUBLE)
  FROM e
  WHERE NOT (s_lic OR s_role IN ('acquirer', 'bank')) AND ty IN ('cash_out', 'transfer')
)
SELECT currency, hub, day,
       count(*) FILTER (WHERE is_out = 0) AS deposits,
       count(*) FILTER (WHERE is_out = 0 AND near) AS near_deposits,
       count(*) FILTER (WHERE is_out = 1) AS debits,
       count(*) FILTER (WHERE is_out = 1 AND near) AS near_debits
FROM rows GROUP BY ALL
;
CREATE TABLE tc10_scored AS
WITH w AS (
  SELECT currency, hub, day - i AS k,
         sum(deposits) AS deposits, sum(near_deposits) AS near_deposits,
         count(*) FILTER (WHERE deposits > 0) AS deposit_days,
         sum(debits) AS debits, sum(near_debits) AS near_debits
  FROM tc10_daily, range(0, 30) AS r(i)
  GROUP BY ALL
)
SELECT 'TC-10' AS rule, currency, hub, k, 86400000 AS step, 2592000000 AS length,
       70 + CASE WHEN near_deposits >= 2 * 10 OR near_debits >= 2 * 10 THEN 10 ELSE 0 END
          + CASE WHEN deposit_days >= 10 THEN 5 ELSE 0 END AS score
FROM w
WHERE (near_deposits >= 10 AND near_deposits::DOUBLE >= 0.6::DOUBLE * deposits::DOUBLE)
   OR (near_debits >= 10 AND near_debits::DOUBLE >= 0.6::DOUBLE * debits::DOUBLE)
;
-- ---------------------------------------------------------------- BF-01 fan-in, BF-02 fan-out
CREATE TABLE bf_scored AS
WITH daily AS (
  SELECT 'BF-01' AS rule, currency, dst AS hub, src AS peer, ts // 86400000 AS day, sum(amt) AS amt
  FROM e WHERE ty = 'transfer' AND NOT (d_lic OR d_role IN ('acquirer', 'bank'))
  GROUP BY ALL
  UNION ALL
  SELECT 'BF-02', currency, src, dst, ts // 86400000, sum(amt)
  FROM e WHERE ty = 'transfer' AND NOT (s_lic OR s_role IN ('acquirer', 'bank'))
  GROUP BY ALL
),
w AS (
  SELECT rule, currency, hub, day - i AS k, count(DISTINCT peer) AS peers, sum(amt) AS total
  FROM daily, range(0, 7) AS r(i)
  GROUP BY ALL
)
SELECT rule, currency, hub, k, 86400000 AS step, 604800000 AS length, 50 AS score
FROM w
WHERE (rule = 'BF-01' AND peers >= 10 AND total::DOUBLE / 100.0::DOUBLE >= 20000.0::DOUBLE)
   OR (rule = 'BF-02' AND peers >= 10 AND total::DOUBLE / 100.0::DOUBLE >= 50000.0::DOUBLE)
;
-- ---------------------------------------------------------------- episodes
CREATE TABLE alerts AS
WITH scored AS (
  SELECT * FROM tc04_scored UNION ALL SELECT * FROM tc10_scored UNION ALL SELECT * FROM bf_scored
),
islands AS (
  SELECT *, k - row_number() OVER (PARTITION BY rule, currency, hub ORDER BY k) AS grp FROM scored
),
best AS (
  SELECT *, row_number() OVER (PARTITION BY rule, currency, hub, grp ORDER BY score DESC, k) AS rn
  FROM islands
)
SELECT rule, currency, hub AS subject, k * step AS from_ms, k * step + length AS until_ms, score
FROM best WHERE rn = 1
ORDER BY rule, subject, from_ms
