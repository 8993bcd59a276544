//! The day-by-day flows of the variant additions (`crate::extras`): recurring flows, pool
//! payouts, dense direct payments and the laundering patterns. All lists are empty for the
//! default variant, so it draws nothing from the random stream here.

use rand::RngExt;

use super::{HOUR, Sim, Today, pick_text};
use crate::extras::{NO_POOL, Payees, When};
use crate::population::MCCS;
use crate::rng::{amount_fen, bp_of, chance, less_bp, poisson};
use crate::tx::{Channel, Tx, TxType};

fn due(when: When, today: &Today) -> bool {
    match when {
        When::Monthly(dom) => today.dom == dom,
        When::Weekly(weekday) => !today.weekend && today.weekday == weekday,
        When::Daily => !today.weekend,
    }
}

impl Sim<'_> {
    pub(super) fn extra_flows(&mut self, today: &Today) {
        let extras = &self.pop.extras;
        if extras.recurring.is_empty()
            && extras.distributors.is_empty()
            && extras.direct.is_empty()
            && extras.patterns.is_empty()
        {
            return;
        }
        self.recurring_flows(today);
        self.direct_flows(today);
        self.distributor_flows(today);
        self.pattern_flows(today);
    }

    fn recurring_flows(&mut self, today: &Today) {
        let pop = self.pop;
        for r in &pop.extras.recurring {
            if !due(r.when, today) {
                continue;
            }
            let amount = if r.jitter_bp > 0 {
                let bp = self
                    .rng
                    .random_range(10_000 - r.jitter_bp..=10_000 + r.jitter_bp);
                bp_of(r.amount, bp) / 100 * 100
            } else {
                r.amount
            };
            let ts = self.local_time(today.start, 9, 12);
            let region = self.region_of(r.from);
            let tx = Tx::new(
                ts,
                r.from,
                r.to,
                amount,
                TxType::Transfer,
                Channel::BankTransfer,
                region,
            );
            self.emit(tx.text(r.memo).tag(r.tag));
            if r.pool != NO_POOL {
                self.pools[r.pool as usize] += amount;
            }
        }
    }

    fn direct_flows(&mut self, today: &Today) {
        let pop = self.pop;
        let factor = if today.weekend { 1.3 } else { 1.0 };
        for d in &pop.extras.direct {
            for _ in 0..poisson(&mut self.rng, d.rate * factor) {
                let m = d.shops[self.rng.random_range(0..d.shops.len())];
                let merchant = &pop.merchants[m as usize];
                let mcc = &MCCS[merchant.mcc];
                let amount =
                    amount_fen(&mut self.rng, mcc.median_fen, mcc.sigma, 100, 500_000, 0.6);
                let ts = self.profile_time(today.start);
                let tx = Tx::new(
                    ts,
                    d.account,
                    merchant.own_account,
                    amount,
                    TxType::Transfer,
                    Channel::Qr,
                    d.region,
                );
                self.emit(tx);
            }
        }
    }

    /// Payouts land two days after the run day, in the afternoon, so that the settlements
    /// that fed the pool (emitted ahead, on their settlement day) come first.
    fn distributor_flows(&mut self, today: &Today) {
        let pop = self.pop;
        let pay_start = self.day_start(self.day + 2);
        for d in &pop.extras.distributors {
            if !due(d.when, today) {
                continue;
            }
            match &d.payees {
                Payees::Weighted(payees) => {
                    let pooled = self.pools[d.pool as usize];
                    let budget = bp_of(pooled, d.pay_bp);
                    if budget <= 0 {
                        continue;
                    }
                    self.pools[d.pool as usize] -= budget;
                    let total: f64 = payees.iter().map(|p| p.1).sum();
                    for &(to, weight) in payees {
                        let share = if payees.len() == 1 {
                            1.0
                        } else {
                            weight / total * self.rng.random_range(0.6..1.4)
                        };
                        let amount = (budget as f64 * share) as i64;
                        self.payout(pay_start, d.from, to, amount, d.memo, d.tag);
                        if d.feeds != NO_POOL && amount > 0 {
                            self.pools[d.feeds as usize] += amount;
                        }
                    }
                }
                &Payees::RandomConsumers {
                    min,
                    max,
                    median_fen,
                } => {
                    for _ in 0..self.rng.random_range(min..=max) {
                        let c = self.rng.random_range(0..pop.consumers.len());
                        let to = pop.consumers[c].account;
                        let amount =
                            amount_fen(&mut self.rng, median_fen, 0.8, 500, 2_000_000, 0.3);
                        self.payout(pay_start, d.from, to, amount, d.memo, d.tag);
                    }
                }
            }
        }
    }

    /// A bank transfer on `day_start`'s afternoon.
    fn payout(
        &mut self,
        day_start: i64,
        from: u32,
        to: u32,
        amount: i64,
        memo: &'static str,
        tag: u32,
    ) {
        let ts = self.local_time(day_start, 13, 18);
        let region = self.region_of(from);
        let tx = Tx::new(
            ts,
            from,
            to,
            amount,
            TxType::Transfer,
            Channel::BankTransfer,
            region,
        );
        self.emit(tx.text(memo).tag(tag));
    }

    /// Each wave moves one sum through the pattern's levels, a few hours per level.
    fn pattern_flows(&mut self, today: &Today) {
        const MEMOS: &[&str] = &["", "", "货款", "往来款", "借款", "投资款"];
        let pop = self.pop;
        for p in &pop.extras.patterns {
            if p.waves.binary_search(&self.day).is_err() {
                continue;
            }
            let mut total = self.rng.random_range(5_000_000..=30_000_000i64);
            let mut level_ts = self.local_time(today.start, 9, 15);
            for level in &p.levels {
                let per_edge = total / level.len().max(1) as i64;
                let mut latest = level_ts;
                for &(from, to) in level {
                    let amount = if chance(&mut self.rng, 0.5) {
                        bp_of(per_edge, self.rng.random_range(9_000..=11_000)) / 100 * 100
                    } else {
                        bp_of(per_edge, self.rng.random_range(9_000..=11_000))
                    };
                    let ts = level_ts + self.rng.random_range(0..4 * HOUR);
                    latest = latest.max(ts);
                    let memo = pick_text(&mut self.rng, MEMOS);
                    let region = self.region_of(from);
                    let tx = Tx::new(
                        ts,
                        from,
                        to,
                        amount,
                        TxType::Transfer,
                        Channel::BankTransfer,
                        region,
                    );
                    self.emit(tx.text(memo).tag(p.tag));
                }
                total = less_bp(total, self.rng.random_range(100..=300));
                level_ts = latest + self.rng.random_range(2 * HOUR..20 * HOUR);
            }
        }
    }
}
