//! The day-by-day simulation. Each day's transactions are buffered, sorted by time and
//! streamed out; flows that land on later days (settlements, payouts, hops) wait in a
//! pending map that never reaches further ahead than the longest delay.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Weekday};
use rand::RngExt;
use rand::seq::index;

mod extras;

use super::GenerateError;
use super::population::{Consumer, MCCS, MerchantKind, Population};
use super::rng::{SimRng, amount_fen, bp_of, chance, less_bp, poisson};
use super::tx::{Channel, Memo, NO_MERCHANT, Tx, TxType};
use super::writer::TxWriter;

pub(crate) const XSS_MEMO: &str = "<script>alert(1)</script>";
const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
/// China Standard Time is UTC+8; daily profiles are written in local hours.
const LOCAL_OFFSET: i64 = 8 * HOUR;
/// Relative activity per local hour 00..23.
const HOUR_WEIGHTS: [u32; 24] = [
    2, 1, 1, 1, 1, 2, 4, 8, 12, 12, 13, 15, 18, 15, 12, 12, 13, 15, 19, 20, 17, 12, 7, 4,
];

// The simulation's builders; the type itself is in `tx`.
impl Tx {
    fn new(
        ts: i64,
        from: u32,
        to: u32,
        amount: i64,
        kind: TxType,
        channel: Channel,
        region: u8,
    ) -> Tx {
        Tx {
            ts,
            seq: 0,
            from,
            to,
            amount,
            kind,
            merchant: NO_MERCHANT,
            channel,
            region,
            memo: Memo::Empty,
            tag: 0,
        }
    }

    fn merchant(mut self, merchant: u32) -> Tx {
        self.merchant = merchant;
        self
    }

    fn memo(mut self, memo: Memo) -> Tx {
        self.memo = memo;
        self
    }

    fn text(self, memo: &'static str) -> Tx {
        if memo.is_empty() {
            self
        } else {
            self.memo(Memo::Text(memo))
        }
    }

    fn tag(mut self, tag: u32) -> Tx {
        self.tag = tag;
        self
    }
}

struct Today {
    start: i64,
    weekday: u32,
    weekend: bool,
    dom: u32,
    month: (i32, u32),
}

fn pick_text(rng: &mut SimRng, list: &[&'static str]) -> &'static str {
    list[rng.random_range(0..list.len())]
}

pub(crate) struct Sim<'p> {
    pop: &'p Population,
    rng: SimRng,
    start_ts: i64,
    days: u32,
    day: u32,
    seq: u64,
    buf: Vec<Tx>,
    pending: BTreeMap<u32, Vec<Tx>>,
    sales: Vec<i64>,
    week_sales: Vec<i64>,
    shop_sales: Vec<Vec<i64>>,
    week_skim: Vec<i64>,
    last_paid: Vec<Option<(i32, u32)>>,
    qr_week_in: Vec<i64>,
    structurer_plan: Vec<Vec<u32>>,
    structurer_balance: Vec<i64>,
    structurer_next_out: Vec<u32>,
    cycle_next: Vec<u32>,
    agg_volume: BTreeMap<(u32, u32), i64>,
    agg_income: Vec<i64>,
    wholesale_week_in: Vec<i64>,
    xss_memo_pending: bool,
    /// Balances of the variant look-alikes' pools (`Extras::pools`).
    pools: Vec<i64>,
}

impl<'p> Sim<'p> {
    pub(crate) fn new(pop: &'p Population, mut rng: SimRng, start_ts: i64, days: u32) -> Sim<'p> {
        let structurer_next_out = pop
            .structurers
            .iter()
            .map(|_| rng.random_range(8..=12))
            .collect();
        Sim {
            pop,
            start_ts,
            days,
            day: 0,
            seq: 0,
            buf: Vec::new(),
            pending: BTreeMap::new(),
            sales: vec![0; pop.merchants.len()],
            week_sales: vec![0; pop.merchants.len()],
            shop_sales: pop
                .variant_ops
                .iter()
                .map(|op| vec![0; op.shops.len()])
                .collect(),
            week_skim: vec![0; pop.std_ops.len()],
            last_paid: vec![None; pop.companies.len()],
            qr_week_in: vec![0; pop.personal_qr.len()],
            structurer_plan: vec![Vec::new(); pop.structurers.len()],
            structurer_balance: vec![0; pop.structurers.len()],
            structurer_next_out,
            cycle_next: pop.cycles.iter().map(|c| c.first_day).collect(),
            agg_volume: BTreeMap::new(),
            agg_income: vec![0; pop.aggregators.len()],
            wholesale_week_in: vec![0; pop.wholesalers.len()],
            xss_memo_pending: true,
            pools: vec![0; pop.extras.pools as usize],
            rng,
        }
    }

    pub(crate) fn run(mut self, out: &mut TxWriter) -> Result<(), GenerateError> {
        let mut today_txs = Vec::new();
        for day in 0..self.days {
            self.day = day;
            let today = self.calendar(day);
            self.aggregator_flows(&today);
            self.consumer_flows(&today);
            self.company_flows(&today);
            self.merchant_supplier_flows(&today);
            self.personal_qr_flows(&today);
            self.structuring_flows(&today);
            self.mule_flows(&today);
            self.cycle_flows(&today);
            self.extra_flows(&today);
            self.settlements();
            self.operator_sweeps();

            today_txs.clear();
            if let Some(mut due) = self.pending.remove(&day) {
                today_txs.append(&mut due);
            }
            today_txs.append(&mut self.buf);
            today_txs.sort_unstable_by_key(|t: &Tx| (t.ts, t.seq));
            for tx in &today_txs {
                out.write(self.pop, tx)?;
            }
        }
        Ok(())
    }

    fn day_start(&self, day: u32) -> i64 {
        self.start_ts + i64::from(day) * DAY
    }

    fn calendar(&self, day: u32) -> Today {
        let start = self.day_start(day);
        let local = DateTime::from_timestamp(start + LOCAL_OFFSET, 0)
            .unwrap_or_default()
            .date_naive();
        let weekday = local.weekday();
        Today {
            start,
            weekday: weekday.num_days_from_monday(),
            weekend: matches!(weekday, Weekday::Sat | Weekday::Sun),
            dom: local.day(),
            month: (local.year(), local.month()),
        }
    }

    fn emit(&mut self, mut tx: Tx) {
        if tx.amount <= 0 {
            return;
        }
        tx.seq = self.seq;
        self.seq += 1;
        let day = (tx.ts - self.start_ts).div_euclid(DAY);
        debug_assert!(day >= i64::from(self.day));
        if day >= i64::from(self.days) {
            return;
        }
        if day <= i64::from(self.day) {
            self.buf.push(tx);
        } else {
            self.pending.entry(day as u32).or_default().push(tx);
        }
    }

    /// A time on `day_start`'s day between local hours `lo` and `hi`.
    fn local_time(&mut self, day_start: i64, lo: i64, hi: i64) -> i64 {
        let local = self.rng.random_range(lo * HOUR..hi * HOUR);
        day_start + (local - LOCAL_OFFSET).rem_euclid(DAY)
    }

    /// A time following the consumer activity profile.
    fn profile_time(&mut self, day_start: i64) -> i64 {
        let total: u32 = HOUR_WEIGHTS.iter().sum();
        let mut target = self.rng.random_range(0..total);
        let mut hour = 0i64;
        for (h, &w) in HOUR_WEIGHTS.iter().enumerate() {
            if target < w {
                hour = h as i64;
                break;
            }
            target -= w;
        }
        self.local_time(day_start, hour, hour + 1)
    }

    fn region_of(&self, account: u32) -> u8 {
        self.pop.accounts[account as usize].region
    }

    fn consumer_flows(&mut self, today: &Today) {
        let pop = self.pop;
        let factor = if today.weekend { 1.25 } else { 1.0 };
        for c in &pop.consumers {
            for _ in 0..poisson(&mut self.rng, c.rate * factor) {
                self.consumer_payment(c, today);
            }
            if !c.contacts.is_empty() && chance(&mut self.rng, 0.07 * factor) {
                self.person_to_person(c, today);
            }
            for bill in &c.bills {
                if bill.dom == today.dom {
                    let utility = &pop.utilities[bill.utility as usize];
                    let amount = amount_fen(
                        &mut self.rng,
                        utility.service.median_fen(),
                        0.45,
                        1_000,
                        300_000,
                        0.2,
                    );
                    let ts = self.profile_time(today.start);
                    let tx = Tx::new(
                        ts,
                        c.account,
                        utility.account,
                        amount,
                        TxType::Transfer,
                        Channel::BankTransfer,
                        c.region,
                    );
                    self.emit(tx.text(utility.service.memo()));
                }
            }
            let bank = pop.banks[c.bank as usize];
            if chance(&mut self.rng, 0.012) {
                let amount = self.rng.random_range(1..=30i64) * 10_000;
                let ts = self.profile_time(today.start);
                self.emit(Tx::new(
                    ts,
                    c.account,
                    bank,
                    amount,
                    TxType::CashOut,
                    Channel::Cash,
                    c.region,
                ));
            }
            if chance(&mut self.rng, 0.006) {
                let amount = amount_fen(&mut self.rng, 200_000, 0.8, 10_000, 2_000_000, 0.8);
                let ts = self.local_time(today.start, 9, 17);
                self.emit(Tx::new(
                    ts,
                    bank,
                    c.account,
                    amount,
                    TxType::CashIn,
                    Channel::Cash,
                    c.region,
                ));
            }
        }
    }

    fn consumer_payment(&mut self, c: &Consumer, today: &Today) {
        let pop = self.pop;
        let regional = &pop.market_by_region[usize::from(c.region)];
        let market = if !regional.is_empty() && chance(&mut self.rng, 0.85) {
            regional
        } else {
            &pop.market_all
        };
        let Some(m) = market.sample(&mut self.rng) else {
            return;
        };
        let merchant = &pop.merchants[m as usize];
        let mcc = &MCCS[merchant.mcc];
        let amount = amount_fen(
            &mut self.rng,
            mcc.median_fen,
            mcc.sigma,
            100,
            2_000_000,
            0.55,
        );
        let ts = self.profile_time(today.start);
        let acquirer = pop.acquirers[merchant.acquirer as usize];
        let (channel, mut memo) = match merchant.aggregator {
            Some(a) if chance(&mut self.rng, 0.75) => {
                *self.agg_volume.entry((a, merchant.acquirer)).or_default() += amount;
                (
                    Channel::Aggregator,
                    Memo::Holder(pop.aggregators[a as usize].holder),
                )
            }
            _ if chance(&mut self.rng, 0.35) => (Channel::Card, Memo::Empty),
            _ => (Channel::Qr, Memo::Empty),
        };
        if self.xss_memo_pending && memo == Memo::Empty {
            self.xss_memo_pending = false;
            memo = Memo::Text(XSS_MEMO);
        }
        let tx = Tx::new(
            ts,
            c.account,
            acquirer,
            amount,
            TxType::Payment,
            channel,
            merchant.region,
        );
        self.emit(tx.merchant(m).memo(memo));
        self.sales[m as usize] += amount;
        self.week_sales[m as usize] += amount;
        if let MerchantKind::VariantHub { op } = merchant.kind
            && let Some(shop) = pop.variant_ops[op as usize].shop_pick.sample(&mut self.rng)
        {
            self.shop_sales[op as usize][shop as usize] += amount;
        }
        if chance(&mut self.rng, 0.004) {
            let refund_ts = ts + self.rng.random_range(HOUR..72 * HOUR);
            let refunded = if chance(&mut self.rng, 0.7) {
                amount
            } else {
                bp_of(amount, self.rng.random_range(2_000..=9_000)).max(1)
            };
            let tx = Tx::new(
                refund_ts,
                acquirer,
                c.account,
                refunded,
                TxType::Refund,
                channel,
                merchant.region,
            );
            self.emit(tx.merchant(m).text("退款"));
        }
    }

    fn person_to_person(&mut self, c: &Consumer, today: &Today) {
        const LUCKY_FEN: &[i64] = &[666, 888, 1_680, 5_200, 6_666, 8_888, 10_000, 20_000, 52_000];
        const MEMOS: &[&str] = &["红包", "还款", "AA", "房租", "生活费", "借款"];
        let pop = self.pop;
        let other = c.contacts[self.rng.random_range(0..c.contacts.len())];
        let amount = if chance(&mut self.rng, 0.35) {
            LUCKY_FEN[self.rng.random_range(0..LUCKY_FEN.len())]
        } else {
            amount_fen(&mut self.rng, 30_000, 1.0, 100, 5_000_000, 0.7)
        };
        let memo = if chance(&mut self.rng, 0.25) {
            pick_text(&mut self.rng, MEMOS)
        } else {
            ""
        };
        let ts = self.profile_time(today.start);
        let to = pop.consumers[other as usize].account;
        self.emit(
            Tx::new(
                ts,
                c.account,
                to,
                amount,
                TxType::Transfer,
                Channel::BankTransfer,
                c.region,
            )
            .text(memo),
        );
    }

    fn company_flows(&mut self, today: &Today) {
        const B2B_MEMOS: &[&str] = &["货款", "服务费", "采购款", "工程款", ""];
        if today.weekend {
            return;
        }
        let pop = self.pop;
        for (k, company) in pop.companies.iter().enumerate() {
            if company.revenue_weekday == today.weekday {
                let amount = bp_of(
                    company.weekly_revenue,
                    self.rng.random_range(8_000..=12_000),
                ) / 100
                    * 100;
                let ts = self.local_time(today.start, 9, 17);
                let region = self.region_of(company.client);
                let tx = Tx::new(
                    ts,
                    company.client,
                    company.account,
                    amount,
                    TxType::Transfer,
                    Channel::BankTransfer,
                    region,
                );
                let memo = pick_text(&mut self.rng, &["货款", "服务费", "合同款"]);
                self.emit(tx.text(memo));
            }
            let due = today.dom >= company.pay_dom && today.dom - company.pay_dom <= 4;
            if due && self.last_paid[k] != Some(today.month) {
                self.last_paid[k] = Some(today.month);
                for &(consumer, salary) in &company.employees {
                    let amount = if chance(&mut self.rng, 0.3) {
                        bp_of(salary, self.rng.random_range(9_700..=10_500)) / 100 * 100
                    } else {
                        salary
                    };
                    let ts = self.local_time(today.start, 9, 11);
                    let to = pop.consumers[consumer as usize].account;
                    let tx = Tx::new(
                        ts,
                        company.account,
                        to,
                        amount,
                        TxType::Transfer,
                        Channel::BankTransfer,
                        company.region,
                    );
                    self.emit(tx.text("工资"));
                }
            }
            if pop.companies.len() > 1 && chance(&mut self.rng, 0.12) {
                let mut other = self.rng.random_range(0..pop.companies.len() - 1);
                if other >= k {
                    other += 1;
                }
                let amount = amount_fen(&mut self.rng, 5_000_000, 1.1, 100_000, 200_000_000, 0.6);
                let memo = pick_text(&mut self.rng, B2B_MEMOS);
                let ts = self.local_time(today.start, 9, 18);
                let to = pop.companies[other].account;
                let tx = Tx::new(
                    ts,
                    company.account,
                    to,
                    amount,
                    TxType::Transfer,
                    Channel::BankTransfer,
                    company.region,
                );
                self.emit(tx.text(memo));
            }
        }
    }

    fn merchant_supplier_flows(&mut self, today: &Today) {
        if today.weekend {
            return;
        }
        let pop = self.pop;
        for (m, merchant) in pop.merchants.iter().enumerate() {
            if merchant.supplier_weekday != today.weekday
                || matches!(merchant.kind, MerchantKind::VariantHub { .. })
            {
                continue;
            }
            let sales = std::mem::take(&mut self.week_sales[m]);
            let amount = bp_of(sales, merchant.supplier_share_bp);
            if amount > 0 {
                let ts = self.local_time(today.start, 10, 17);
                let to = pop.wholesalers[merchant.supplier as usize].account;
                self.wholesale_week_in[merchant.supplier as usize] += amount;
                let tx = Tx::new(
                    ts,
                    merchant.own_account,
                    to,
                    amount,
                    TxType::Transfer,
                    Channel::BankTransfer,
                    merchant.region,
                );
                self.emit(tx.text("采购款"));
            }
        }
        for (w, wholesaler) in pop.wholesalers.iter().enumerate() {
            if wholesaler.weekday != today.weekday {
                continue;
            }
            let week_in = std::mem::take(&mut self.wholesale_week_in[w]);
            let amount = bp_of(week_in, self.rng.random_range(6_000..=8_500));
            let ts = self.local_time(today.start, 10, 17);
            let region = self.region_of(wholesaler.account);
            let tx = Tx::new(
                ts,
                wholesaler.account,
                wholesaler.upstream,
                amount,
                TxType::Transfer,
                Channel::BankTransfer,
                region,
            );
            self.emit(tx.text("货款"));
        }
    }

    fn personal_qr_flows(&mut self, today: &Today) {
        let pop = self.pop;
        let factor = if today.weekend { 1.3 } else { 1.0 };
        for (q, qr) in pop.personal_qr.iter().enumerate() {
            for _ in 0..poisson(&mut self.rng, qr.rate * factor) {
                let local = &pop.consumers_by_region[usize::from(qr.region)];
                let payer = if !local.is_empty() && chance(&mut self.rng, 0.8) {
                    local[self.rng.random_range(0..local.len())]
                } else {
                    self.rng.random_range(0..pop.consumers.len()) as u32
                };
                let amount = amount_fen(&mut self.rng, 3_500, 0.8, 100, 50_000, 0.7);
                let ts = self.profile_time(today.start);
                let from = pop.consumers[payer as usize].account;
                self.emit(
                    Tx::new(
                        ts,
                        from,
                        qr.account,
                        amount,
                        TxType::Transfer,
                        Channel::Qr,
                        qr.region,
                    )
                    .tag(qr.tag),
                );
                self.qr_week_in[q] += amount;
            }
            if today.weekday == 0 && self.qr_week_in[q] > 0 {
                let week_in = std::mem::take(&mut self.qr_week_in[q]);
                let amount = bp_of(week_in, self.rng.random_range(6_000..=8_000));
                let ts = self.local_time(today.start, 10, 18);
                let tx = Tx::new(
                    ts,
                    qr.account,
                    qr.supplier,
                    amount,
                    TxType::Transfer,
                    Channel::BankTransfer,
                    qr.region,
                );
                self.emit(tx.text("货款"));
            }
        }
    }

    fn structuring_flows(&mut self, today: &Today) {
        let pop = self.pop;
        let day = self.day;
        for (k, st) in pop.structurers.iter().enumerate() {
            if day.is_multiple_of(30) {
                let block = (self.days - day).min(30) as usize;
                let wanted = self.rng.random_range(12..=15usize).min(block);
                let mut plan: Vec<u32> = index::sample(&mut self.rng, block, wanted)
                    .into_iter()
                    .map(|i| day + i as u32)
                    .collect();
                plan.sort_unstable();
                self.structurer_plan[k] = plan;
            }
            let region = self.region_of(st.account);
            if self.structurer_plan[k].binary_search(&day).is_ok() {
                let amount = self.rng.random_range(4_500_000..=4_999_999i64);
                let ts = self.local_time(today.start, 9, 16);
                let tx = Tx::new(
                    ts,
                    st.bank,
                    st.account,
                    amount,
                    TxType::CashIn,
                    Channel::Cash,
                    region,
                );
                self.emit(tx.text("现金存款").tag(st.tag));
                self.structurer_balance[k] += amount;
            }
            if day >= self.structurer_next_out[k] && self.structurer_balance[k] > 0 {
                let amount = bp_of(
                    self.structurer_balance[k],
                    self.rng.random_range(7_000..=9_000),
                );
                let ts = self.local_time(today.start, 10, 17);
                self.emit(Tx::new(
                    ts,
                    st.account,
                    st.associate,
                    amount,
                    TxType::Transfer,
                    Channel::BankTransfer,
                    region,
                ));
                self.structurer_balance[k] -= amount;
                self.structurer_next_out[k] = day + self.rng.random_range(9..=12);
            }
        }
    }

    fn mule_flows(&mut self, today: &Today) {
        const MEMOS: &[&str] = &["", "", "投资款", "货款", "保证金"];
        let pop = self.pop;
        for ring in &pop.mule_rings {
            for &mule in &ring.mules {
                if !chance(&mut self.rng, 0.35) {
                    continue;
                }
                let region = self.region_of(mule);
                for _ in 0..self.rng.random_range(1..=3) {
                    let payer =
                        pop.consumers[self.rng.random_range(0..pop.consumers.len())].account;
                    let amount = amount_fen(&mut self.rng, 1_200_000, 0.7, 300_000, 4_900_000, 0.5);
                    let ts = self.local_time(today.start, 9, 21);
                    let memo = pick_text(&mut self.rng, MEMOS);
                    let payer_region = self.region_of(payer);
                    let tx = Tx::new(
                        ts,
                        payer,
                        mule,
                        amount,
                        TxType::Transfer,
                        Channel::BankTransfer,
                        payer_region,
                    );
                    self.emit(tx.text(memo).tag(ring.tag));
                    let forward_ts = ts + self.rng.random_range(HOUR / 2..6 * HOUR);
                    let forwarded = less_bp(amount, self.rng.random_range(50..=500));
                    let tx = Tx::new(
                        forward_ts,
                        mule,
                        ring.collector,
                        forwarded,
                        TxType::Transfer,
                        Channel::BankTransfer,
                        region,
                    );
                    self.emit(tx.tag(ring.tag));
                }
            }
        }
    }

    fn cycle_flows(&mut self, today: &Today) {
        const MEMOS: &[&str] = &["货款", "往来款", "服务费", "借款"];
        let pop = self.pop;
        for (k, ring) in pop.cycles.iter().enumerate() {
            if self.day != self.cycle_next[k] {
                continue;
            }
            let mut amount = self.rng.random_range(20_000_000..=200_000_000i64);
            let mut ts = self.local_time(today.start, 9, 17);
            let n = ring.members.len();
            for hop in 0..n {
                let from = ring.members[hop];
                let to = ring.members[(hop + 1) % n];
                let memo = pick_text(&mut self.rng, MEMOS);
                let region = self.region_of(from);
                self.emit(
                    Tx::new(
                        ts,
                        from,
                        to,
                        amount,
                        TxType::Transfer,
                        Channel::BankTransfer,
                        region,
                    )
                    .text(memo)
                    .tag(ring.tag),
                );
                amount = less_bp(amount, self.rng.random_range(20..=150));
                ts += self.rng.random_range(3 * HOUR..=20 * HOUR);
            }
            self.cycle_next[k] = self.day + self.rng.random_range(6..=12);
        }
    }

    fn aggregator_flows(&mut self, today: &Today) {
        let pop = self.pop;
        if self.day > 0 && self.day.is_multiple_of(7) {
            for ((a, acquirer), volume) in std::mem::take(&mut self.agg_volume) {
                let aggregator = &pop.aggregators[a as usize];
                let fee = bp_of(volume, aggregator.commission_bp);
                if fee > 0 {
                    let ts = self.local_time(today.start, 9, 11);
                    let from = pop.acquirers[acquirer as usize];
                    let region = self.region_of(aggregator.account);
                    self.emit(
                        Tx::new(
                            ts,
                            from,
                            aggregator.account,
                            fee,
                            TxType::Fee,
                            Channel::BankTransfer,
                            region,
                        )
                        .text("分润"),
                    );
                    self.agg_income[a as usize] += fee;
                }
            }
        }
        for (a, aggregator) in pop.aggregators.iter().enumerate() {
            if today.dom != aggregator.expense_dom {
                continue;
            }
            let budget = bp_of(
                std::mem::take(&mut self.agg_income[a]),
                self.rng.random_range(4_000..=7_000),
            );
            let region = self.region_of(aggregator.account);
            for &(company, share_bp, memo) in &aggregator.vendors {
                let amount = bp_of(budget, share_bp);
                let ts = self.local_time(today.start, 10, 17);
                let to = pop.companies[company as usize].account;
                self.emit(
                    Tx::new(
                        ts,
                        aggregator.account,
                        to,
                        amount,
                        TxType::Transfer,
                        Channel::BankTransfer,
                        region,
                    )
                    .text(memo),
                );
            }
        }
    }

    /// Days from settlement to a two-clear payout: 2..=max (6 for most operators), never T+1.
    fn operator_delay(&mut self, base: u32, max: u32) -> u32 {
        (base + self.rng.random_range(0..=2)).clamp(2, max)
    }

    fn settlements(&mut self) {
        let pop = self.pop;
        let mut nested_today: BTreeMap<u32, Vec<(u32, i64)>> = BTreeMap::new();
        for (m, merchant) in pop.merchants.iter().enumerate() {
            let sales = std::mem::take(&mut self.sales[m]);
            if sales <= 0 {
                continue;
            }
            let net = sales - bp_of(sales, merchant.fee_bp);
            let settle_day = self.day + merchant.cycle;
            let settle_start = self.day_start(settle_day);
            let ts = self.local_time(settle_start, 9, 11);
            let acquirer = pop.acquirers[merchant.acquirer as usize];
            let settlement = Tx::new(
                ts,
                acquirer,
                merchant.settlement_account,
                net,
                TxType::Settlement,
                Channel::BankTransfer,
                merchant.region,
            )
            .merchant(m as u32);
            match merchant.kind {
                MerchantKind::Compliant => match pop.extras.merchant_pool.get(&(m as u32)) {
                    Some(&(pool, tag)) => {
                        self.pools[pool as usize] += net;
                        self.emit(settlement.tag(tag));
                    }
                    None => self.emit(settlement),
                },
                MerchantKind::Mismatch { tag } => {
                    let short = if chance(&mut self.rng, 0.3) {
                        bp_of(net, self.rng.random_range(200..=800))
                            .max(100)
                            .min(net - 1)
                    } else {
                        0
                    };
                    if short > 0 {
                        let mut tx = settlement.tag(tag);
                        tx.amount = net - short;
                        self.emit(tx);
                    } else {
                        self.emit(settlement);
                    }
                }
                MerchantKind::Victim { op } => {
                    let operator = &pop.std_ops[op as usize];
                    self.emit(settlement.tag(operator.settle_tag));
                    let pay_day =
                        settle_day + self.operator_delay(operator.delay_base, operator.max_delay);
                    let pay_ts = self.local_time(self.day_start(pay_day), 9, 18);
                    let paid = less_bp(net, operator.skim_bp);
                    self.week_skim[op as usize] += net - paid;
                    let tx = Tx::new(
                        pay_ts,
                        operator.hub,
                        merchant.own_account,
                        paid,
                        TxType::Transfer,
                        Channel::BankTransfer,
                        merchant.region,
                    );
                    self.emit(tx.text("结算款").tag(operator.payout_tag));
                }
                MerchantKind::Nested { chain } => {
                    self.emit(settlement.tag(pop.nested[chain as usize].settle_tag));
                    nested_today.entry(chain).or_default().push((m as u32, net));
                }
                MerchantKind::VariantHub { op } => {
                    let operator = &pop.variant_ops[op as usize];
                    self.emit(settlement.tag(operator.settle_tag));
                    let pay_day = settle_day + self.operator_delay(operator.delay_base, 6);
                    let pay_start = self.day_start(pay_day);
                    for (i, &shop) in operator.shops.iter().enumerate() {
                        let shop_sales = std::mem::take(&mut self.shop_sales[op as usize][i]);
                        let paid = less_bp(shop_sales, merchant.fee_bp + operator.skim_bp);
                        if paid > 0 {
                            let ts = self.local_time(pay_start, 9, 18);
                            let region = self.region_of(shop);
                            let tx = Tx::new(
                                ts,
                                operator.hub,
                                shop,
                                paid,
                                TxType::Transfer,
                                Channel::BankTransfer,
                                region,
                            );
                            self.emit(tx.text("货款结算").tag(operator.payout_tag));
                        }
                    }
                }
            }
        }
        for (chain, entries) in nested_today {
            let nested = &pop.nested[chain as usize];
            let total: i64 = entries.iter().map(|&(_, net)| net).sum();
            let hop_day = self.day + 1 + self.rng.random_range(1..=2);
            let hop_ts = self.local_time(self.day_start(hop_day), 9, 17);
            let region = self.region_of(nested.a);
            let hop = Tx::new(
                hop_ts,
                nested.a,
                nested.b,
                less_bp(total, nested.skim_a),
                TxType::Transfer,
                Channel::BankTransfer,
                region,
            );
            self.emit(hop.text("往来款").tag(nested.hop_tag));
            let pay_day = hop_day + self.rng.random_range(1..=2);
            let pay_start = self.day_start(pay_day);
            for (m, net) in entries {
                let merchant = &pop.merchants[m as usize];
                let paid = less_bp(less_bp(net, nested.skim_a), nested.skim_b);
                let ts = self.local_time(pay_start, 9, 18);
                let tx = Tx::new(
                    ts,
                    nested.b,
                    merchant.own_account,
                    paid,
                    TxType::Transfer,
                    Channel::BankTransfer,
                    merchant.region,
                );
                self.emit(tx.text("结算款").tag(nested.payout_tag));
            }
        }
    }

    /// Weekly, a corporate-looking sweep of the skim to the operator's other account.
    fn operator_sweeps(&mut self) {
        if self.day % 7 != 6 {
            return;
        }
        let pop = self.pop;
        for (k, op) in pop.std_ops.iter().enumerate() {
            let skim = std::mem::take(&mut self.week_skim[k]);
            let amount = bp_of(skim, 8_000);
            if amount > 0 {
                let ts = self.local_time(self.day_start(self.day + 1), 10, 16);
                let region = self.region_of(op.hub);
                let tx = Tx::new(
                    ts,
                    op.hub,
                    op.sibling,
                    amount,
                    TxType::Transfer,
                    Channel::BankTransfer,
                    region,
                );
                self.emit(tx.text("往来款").tag(op.sweep_tag));
            }
        }
    }
}
