//! What the non-default variants add to the population: legitimate look-alikes recorded as
//! decoys (payroll and supplier runs, group treasuries, marketplaces, payment facilitators,
//! bill collectors, refund batches, family and rent transfers), the dense circulation
//! background, and the AMLSim-named laundering patterns. The simulation side is in
//! `sim_extras`. Nothing here runs for `Variant::Default`, so its random stream is untouched.

use std::collections::BTreeMap;

use rand::RngExt;
use rand::seq::index;

use super::ScenarioConfig;
use super::names::{INDUSTRY_GENERAL, INDUSTRY_RETAIL, INDUSTRY_TECH};
use super::population::{Builder, MerchantKind, REGIONS, Role, pick_region, scaled};
use super::rng::{chance, lognormal, pareto};
use super::variant::Features;

/// `Recurring::pool` / `Distributor::feeds` when no pool is fed.
pub(crate) const NO_POOL: u32 = u32::MAX;

/// When a recurring flow or a payout run happens (weekdays only for `Weekly` and `Daily`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// Day of month (1..=28).
    Monthly(u32),
    /// Day of week, Monday = 0.
    Weekly(u32),
    /// Every working day.
    Daily,
}

/// The same payer paying the same payee on a schedule.
pub(crate) struct Recurring {
    pub from: u32,
    pub to: u32,
    pub amount: i64,
    /// Random variation in basis points either way (0 = the same amount each time).
    pub jitter_bp: i64,
    pub when: When,
    pub memo: &'static str,
    /// Pool the payee accumulates this money in, or `NO_POOL`.
    pub pool: u32,
    pub tag: u32,
}

impl Recurring {
    /// A fixed amount, not pooled; see [`Recurring::jitter`] and [`Recurring::into_pool`].
    fn new(from: u32, to: u32, amount: i64, when: When, memo: &'static str, tag: u32) -> Self {
        Recurring {
            from,
            to,
            amount,
            jitter_bp: 0,
            when,
            memo,
            pool: NO_POOL,
            tag,
        }
    }

    fn jitter(mut self, bp: i64) -> Self {
        self.jitter_bp = bp;
        self
    }

    fn into_pool(mut self, pool: u32) -> Self {
        self.pool = pool;
        self
    }
}

pub(crate) enum Payees {
    /// Fixed counterparties sharing the payout by weight.
    Weighted(Vec<(u32, f64)>),
    /// A batch to consumers drawn afresh each run (refunds).
    RandomConsumers { min: u32, max: u32, median_fen: i64 },
}

/// Pays out (part of) what a pool accumulated, on a schedule.
pub(crate) struct Distributor {
    pub pool: u32,
    pub from: u32,
    pub payees: Payees,
    pub when: When,
    /// Share of the pool paid out, in basis points.
    pub pay_bp: i64,
    pub memo: &'static str,
    pub tag: u32,
    /// Pool the (single) payee accumulates the payout in, or `NO_POOL`.
    pub feeds: u32,
}

impl Distributor {
    /// A payout run that feeds no pool; see [`Distributor::feeding`].
    fn new(
        pool: u32,
        from: u32,
        payees: Payees,
        when: When,
        pay_bp: i64,
        memo: &'static str,
        tag: u32,
    ) -> Self {
        Distributor {
            pool,
            from,
            payees,
            when,
            pay_bp,
            memo,
            tag,
            feeds: NO_POOL,
        }
    }

    fn feeding(mut self, pool: u32) -> Self {
        self.feeds = pool;
        self
    }
}

/// Dense variant: a consumer paying favourite shops' own accounts directly (personal QR).
pub(crate) struct DirectPayer {
    pub account: u32,
    pub region: u8,
    pub rate: f64,
    /// Merchant indices.
    pub shops: Vec<u32>,
}

/// An AMLSim-named laundering pattern: levels of edges run in order on each wave day.
pub(crate) struct Pattern {
    pub levels: Vec<Vec<(u32, u32)>>,
    pub waves: Vec<u32>,
    pub tag: u32,
}

#[derive(Default)]
pub(crate) struct Extras {
    pub recurring: Vec<Recurring>,
    pub distributors: Vec<Distributor>,
    pub pools: u32,
    /// Merchant index -> (pool its settlements feed, tag of its settlements).
    pub merchant_pool: BTreeMap<u32, (u32, u32)>,
    pub direct: Vec<DirectPayer>,
    pub patterns: Vec<Pattern>,
    /// Sparse-registry defects at write time.
    pub sparse: bool,
}

impl Extras {
    fn pool(&mut self) -> u32 {
        self.pools += 1;
        self.pools - 1
    }
}

pub(crate) fn build(b: &mut Builder, features: Features, cfg: &ScenarioConfig, s: f64) {
    b.pop.extras.sparse = features.sparse;
    if features.payroll {
        build_payroll(b, scaled(2, s, 1));
        build_supplier_runs(b, scaled(2, s, 1));
        build_group_treasuries(b, scaled(2, s, 1));
    }
    if features.marketplace {
        build_marketplaces(b, scaled(1, s, 1));
        build_facilitators(b, scaled(1, s, 1));
        build_bill_collectors(b, scaled(2, s, 1));
        build_refund_batches(b, scaled(1, s, 1));
        build_families(b, scaled(4, s, 1));
        build_landlords(b, scaled(3, s, 1));
    }
    if features.dense {
        build_dense(b);
    }
    if features.laundering {
        build_patterns(b, scaled(2, s, 1), cfg.days);
    }
}

fn decoy(b: &mut Builder, typology: &'static str, members: Vec<(u32, &'static str)>) -> u32 {
    let scheme = b.scheme(typology, members);
    b.pop.schemes[scheme as usize].decoy = true;
    b.tag(vec![scheme])
}

/// Distinct consumer accounts, as many as drawn from `count`.
fn some_consumers(b: &mut Builder, count: std::ops::RangeInclusive<usize>) -> Vec<u32> {
    let n = b.rng.random_range(count);
    let total = b.pop.consumers.len();
    index::sample(b.rng, total, n.min(total))
        .into_iter()
        .map(|i| b.pop.consumers[i].account)
        .collect()
}

fn client(b: &mut Builder) -> u32 {
    let region = pick_region(b.rng);
    let holder = b.company(region, INDUSTRY_GENERAL);
    b.account(holder, Role::Unknown, region)
}

fn fen(yuan: f64) -> i64 {
    (yuan * 100.0) as i64 / 100 * 100
}

/// Employers paying hundreds of staff monthly, funded by their clients.
fn build_payroll(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_GENERAL);
        let employer = b.account(holder, Role::Unknown, region);
        let staff_n = b.rng.random_range(150..=400usize);
        // Part of the staff bank with us (consumers); the rest only receive.
        let mut staff = some_consumers(b, staff_n / 3..=staff_n / 3);
        while staff.len() < staff_n {
            let person = b.person();
            staff.push(b.account(person, Role::Individual, region));
        }
        let mut members = vec![(employer, "hub")];
        members.extend(staff.iter().map(|&a| (a, "payee")));
        let tag = decoy(b, "payroll", members);
        let dom = [5, 10, 15, 25][b.rng.random_range(0..4)];
        let split = chance(b.rng, 0.5);
        let mut total = 0;
        for (i, &person) in staff.iter().enumerate() {
            let salary = fen(lognormal(b.rng, 6_500.0, 0.4, 2_500.0, 60_000.0));
            total += salary;
            let day = if split && i % 2 == 1 { dom + 1 } else { dom };
            b.pop.extras.recurring.push(Recurring::new(
                employer,
                person,
                salary,
                When::Monthly(day),
                "工资",
                tag,
            ));
        }
        for k in 0..2 {
            let from = client(b);
            b.pop.extras.recurring.push(
                Recurring::new(
                    from,
                    employer,
                    total * 6 / 10,
                    When::Monthly(dom - 3 + k),
                    "服务费",
                    tag,
                )
                .jitter(1_000),
            );
        }
    }
}

/// A company paying the same suppliers every week.
fn build_supplier_runs(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_RETAIL);
        let buyer = b.account(holder, Role::Unknown, region);
        let weekday = b.rng.random_range(0..5u32);
        let mut members = vec![(buyer, "hub")];
        let mut suppliers = Vec::new();
        for _ in 0..b.rng.random_range(12..=30) {
            let r = b.nearby_region(region);
            let h = b.company(r, INDUSTRY_RETAIL);
            let supplier = b.account(h, Role::Unknown, r);
            suppliers.push(supplier);
            members.push((supplier, "payee"));
        }
        let tag = decoy(b, "supplier_run", members);
        let mut total = 0;
        for supplier in suppliers {
            let amount = fen(lognormal(b.rng, 15_000.0, 0.8, 1_000.0, 500_000.0));
            total += amount;
            b.pop.extras.recurring.push(
                Recurring::new(buyer, supplier, amount, When::Weekly(weekday), "货款", tag)
                    .jitter(1_500),
            );
        }
        let from = client(b);
        b.pop.extras.recurring.push(
            Recurring::new(
                from,
                buyer,
                total * 11 / 10,
                When::Weekly((weekday + 4) % 5),
                "货款",
                tag,
            )
            .jitter(1_000),
        );
    }
}

/// A chain sweeping its own shops' takings into its treasury and funding them back.
fn build_group_treasuries(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_RETAIL);
        let treasury = b.account(holder, Role::Unknown, region);
        let treasury_pool = b.pop.extras.pool();
        let mut members = vec![(treasury, "hub")];
        let mut shops = Vec::new();
        for _ in 0..b.rng.random_range(6..=14) {
            let shop = b.account(holder, Role::Merchant, region);
            let acquirer = b.random_acquirer();
            let m = b.merchant(
                holder,
                shop,
                shop,
                acquirer,
                region,
                MerchantKind::Compliant,
                &[5411, 5499, 5812, 5912],
            );
            b.pop.merchants[m as usize].weight = pareto(b.rng, 1.6, 12.0) + 2.0;
            shops.push((m, shop));
            members.push((shop, "member"));
        }
        let mut suppliers = Vec::new();
        for _ in 0..b.rng.random_range(5..=10) {
            let h = b.company(region, INDUSTRY_RETAIL);
            let supplier = b.account(h, Role::Unknown, region);
            suppliers.push((supplier, pareto(b.rng, 1.5, 8.0)));
            members.push((supplier, "payee"));
        }
        let tag = decoy(b, "group_treasury", members);
        let sweep_day = b.rng.random_range(0..5u32);
        for &(m, shop) in &shops {
            let pool = b.pop.extras.pool();
            b.pop.extras.merchant_pool.insert(m, (pool, tag));
            b.pop.extras.distributors.push(
                Distributor::new(
                    pool,
                    shop,
                    Payees::Weighted(vec![(treasury, 1.0)]),
                    When::Weekly(sweep_day),
                    9_000,
                    "资金归集",
                    tag,
                )
                .feeding(treasury_pool),
            );
            let float = fen(lognormal(b.rng, 20_000.0, 0.5, 5_000.0, 100_000.0));
            b.pop.extras.recurring.push(Recurring::new(
                treasury,
                shop,
                float,
                When::Monthly(1),
                "备用金",
                tag,
            ));
        }
        b.pop.extras.distributors.push(Distributor::new(
            treasury_pool,
            treasury,
            Payees::Weighted(suppliers),
            When::Weekly((sweep_day + 2) % 5),
            7_000,
            "采购款",
            tag,
        ));
    }
}

/// Sellers of a platform: small shops, mostly sole traders.
fn sellers(b: &mut Builder, n: usize) -> Vec<(u32, f64)> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let region = pick_region(b.rng);
        let (_, account) = b.shop(region, 0.6, Role::Individual);
        out.push((account, pareto(b.rng, 1.4, 20.0)));
    }
    out
}

/// A licensed marketplace: buyers pay it (acquired under its own MID), it pays sellers weekly.
fn build_marketplaces(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_TECH);
        let account = b.account(holder, Role::Merchant, region);
        b.pop.accounts[account as usize].licensed = true;
        let acquirer = b.random_acquirer();
        let m = b.merchant(
            holder,
            account,
            account,
            acquirer,
            region,
            MerchantKind::Compliant,
            &[5311, 5999],
        );
        b.pop.merchants[m as usize].weight = 60.0;
        let n = b.rng.random_range(60..=150);
        let sellers = sellers(b, n);
        let mut members = vec![(account, "hub")];
        members.extend(sellers.iter().map(|&(a, _)| (a, "payee")));
        let tag = decoy(b, "marketplace", members);
        let pool = b.pop.extras.pool();
        b.pop.extras.merchant_pool.insert(m, (pool, tag));
        let weekday = b.rng.random_range(0..5u32);
        b.pop.extras.distributors.push(Distributor::new(
            pool,
            account,
            Payees::Weighted(sellers),
            When::Weekly(weekday),
            9_400,
            "平台结算",
            tag,
        ));
    }
}

/// A licensed payment facilitator: its sub-merchants are registered with its account as the
/// settlement account; it pays each one its own takings daily.
fn build_facilitators(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_TECH);
        let account = b.account(holder, Role::Agent, region);
        b.pop.accounts[account as usize].licensed = true;
        let acquirer = b.random_acquirer();
        let mut members = vec![(account, "hub")];
        let mut subs = Vec::new();
        for _ in 0..b.rng.random_range(15..=30) {
            let r = b.nearby_region(region);
            let (h, own) = b.shop(r, 0.6, Role::Merchant);
            let m = b.merchant(h, own, account, acquirer, r, MerchantKind::Compliant, &[]);
            subs.push((m, own));
            members.push((own, "merchant"));
        }
        let tag = decoy(b, "payment_facilitator", members);
        for (m, own) in subs {
            let pool = b.pop.extras.pool();
            b.pop.extras.merchant_pool.insert(m, (pool, tag));
            b.pop.extras.distributors.push(Distributor::new(
                pool,
                account,
                Payees::Weighted(vec![(own, 1.0)]),
                When::Daily,
                9_980,
                "结算款",
                tag,
            ));
        }
    }
}

/// A bill-payment agency: hundreds of consumers pay it monthly; it remits weekly.
fn build_bill_collectors(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_GENERAL);
        let collector = b.account(holder, Role::Merchant, region);
        let n = (b.pop.consumers.len() / 3).clamp(2, 400);
        let payers = some_consumers(b, n..=n);
        let utilities: Vec<(u32, f64)> = (0..b.rng.random_range(2..=4))
            .map(|_| {
                let u = b.rng.random_range(0..b.pop.utilities.len());
                (b.pop.utilities[u].account, 1.0)
            })
            .collect();
        let mut members = vec![(collector, "hub")];
        members.extend(payers.iter().map(|&a| (a, "payer")));
        let tag = decoy(b, "bill_collector", members);
        let pool = b.pop.extras.pool();
        for payer in payers {
            let amount = fen(lognormal(b.rng, 120.0, 0.5, 20.0, 2_000.0));
            let dom = b.rng.random_range(1..=28);
            let bill = Recurring::new(payer, collector, amount, When::Monthly(dom), "缴费", tag);
            b.pop
                .extras
                .recurring
                .push(bill.jitter(2_000).into_pool(pool));
        }
        let weekday = b.rng.random_range(0..5u32);
        b.pop.extras.distributors.push(Distributor::new(
            pool,
            collector,
            Payees::Weighted(utilities),
            When::Weekly(weekday),
            9_900,
            "代收款",
            tag,
        ));
    }
}

/// An online shop refunding a fresh batch of consumers every week.
fn build_refund_batches(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_RETAIL);
        let account = b.account(holder, Role::Merchant, region);
        let acquirer = b.random_acquirer();
        let m = b.merchant(
            holder,
            account,
            account,
            acquirer,
            region,
            MerchantKind::Compliant,
            &[5651, 5732, 5999],
        );
        b.pop.merchants[m as usize].weight = 20.0;
        let tag = decoy(b, "refund_batch", vec![(account, "hub")]);
        let weekday = b.rng.random_range(0..5u32);
        b.pop.extras.distributors.push(Distributor::new(
            NO_POOL,
            account,
            Payees::RandomConsumers {
                min: 20,
                max: 60,
                median_fen: 15_000,
            },
            When::Weekly(weekday),
            0,
            "退款",
            tag,
        ));
    }
}

/// A parent supporting relatives monthly; one of them sends some back.
fn build_families(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let people = some_consumers(b, 3..=6);
        let Some((&parent, relatives)) = people.split_first() else {
            continue;
        };
        let mut members = vec![(parent, "hub")];
        members.extend(relatives.iter().map(|&a| (a, "member")));
        let tag = decoy(b, "family", members);
        let dom = b.rng.random_range(1..=28);
        for &relative in relatives {
            let amount = fen(lognormal(b.rng, 2_000.0, 0.6, 300.0, 20_000.0));
            b.pop.extras.recurring.push(Recurring::new(
                parent,
                relative,
                amount,
                When::Monthly(dom),
                "生活费",
                tag,
            ));
        }
        if let Some(&child) = relatives.first() {
            let amount = fen(lognormal(b.rng, 1_000.0, 0.5, 200.0, 10_000.0));
            b.pop.extras.recurring.push(Recurring::new(
                child,
                parent,
                amount,
                When::Monthly((dom % 28) + 1),
                "",
                tag,
            ));
        }
    }
}

/// A landlord collecting rent from tenants early each month and paying a mortgage.
fn build_landlords(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.person();
        let landlord = b.account(holder, Role::Individual, region);
        let tenants = some_consumers(b, 8..=25);
        let bank = b.pop.banks[b.rng.random_range(0..b.pop.banks.len())];
        let mut members = vec![(landlord, "hub")];
        members.extend(tenants.iter().map(|&a| (a, "payer")));
        let tag = decoy(b, "rent", members);
        let pool = b.pop.extras.pool();
        for tenant in tenants {
            let amount = fen(lognormal(b.rng, 2_500.0, 0.4, 800.0, 12_000.0));
            let dom = b.rng.random_range(1..=5);
            let rent = Recurring::new(tenant, landlord, amount, When::Monthly(dom), "房租", tag);
            b.pop.extras.recurring.push(rent.into_pool(pool));
        }
        b.pop.extras.distributors.push(Distributor::new(
            pool,
            landlord,
            Payees::Weighted(vec![(bank, 1.0)]),
            When::Monthly(10),
            5_500,
            "还贷",
            tag,
        ));
    }
}

/// Dense circulation: consumers also pay favourite shops directly, merchants pay staff
/// (consumers) and extra suppliers, wholesalers pay staff.
fn build_dense(b: &mut Builder) {
    let compliant: Vec<u32> = (0..b.pop.merchants.len() as u32)
        .filter(|&m| b.pop.merchants[m as usize].kind == MerchantKind::Compliant)
        .collect();
    if compliant.is_empty() {
        return;
    }
    let mut by_region: Vec<Vec<u32>> = vec![Vec::new(); REGIONS.len()];
    for &m in &compliant {
        by_region[usize::from(b.pop.merchants[m as usize].region)].push(m);
    }
    for c in 0..b.pop.consumers.len() {
        let (account, region) = (b.pop.consumers[c].account, b.pop.consumers[c].region);
        let local = &by_region[usize::from(region)];
        let pool = if local.len() >= 3 { local } else { &compliant };
        let n = b.rng.random_range(3..=6usize).min(pool.len());
        let shops: Vec<u32> = index::sample(b.rng, pool.len(), n)
            .into_iter()
            .map(|i| pool[i])
            .collect();
        let rate = lognormal(b.rng, 0.6, 0.5, 0.1, 3.0);
        b.pop.extras.direct.push(DirectPayer {
            account,
            region,
            rate,
            shops,
        });
    }
    for &m in &compliant {
        let own = b.pop.merchants[m as usize].own_account;
        let weekday = b.rng.random_range(0..5u32);
        let staff = some_consumers(b, 1..=5);
        for person in staff {
            let wage = fen(lognormal(b.rng, 1_500.0, 0.35, 500.0, 6_000.0));
            b.pop.extras.recurring.push(
                Recurring::new(own, person, wage, When::Weekly(weekday), "工资", 0).jitter(500),
            );
        }
        let weight = b.pop.merchants[m as usize].weight;
        for _ in 0..b.rng.random_range(1..=3) {
            let w = b.rng.random_range(0..b.pop.wholesalers.len());
            let to = b.pop.wholesalers[w].account;
            let amount = fen(lognormal(
                b.rng,
                2_000.0 * weight.sqrt(),
                0.6,
                200.0,
                200_000.0,
            ));
            let day = b.rng.random_range(0..5u32);
            b.pop.extras.recurring.push(
                Recurring::new(own, to, amount, When::Weekly(day), "进货款", 0).jitter(2_500),
            );
        }
    }
    for w in 0..b.pop.wholesalers.len() {
        let account = b.pop.wholesalers[w].account;
        let dom = b.rng.random_range(5..=15);
        let staff = some_consumers(b, 5..=15);
        for person in staff {
            let salary = fen(lognormal(b.rng, 6_000.0, 0.35, 2_500.0, 30_000.0));
            b.pop.extras.recurring.push(Recurring::new(
                account,
                person,
                salary,
                When::Monthly(dom),
                "工资",
                0,
            ));
        }
    }
}

/// The AMLSim pattern names, as the truth file's typologies.
pub(crate) const AMLSIM_TYPOLOGIES: [&str; 7] = [
    "fan_in",
    "fan_out",
    "cycle",
    "scatter_gather",
    "gather_scatter",
    "stack",
    "bipartite",
];

/// A hub account for a laundering pattern: a new person or shell company.
fn pattern_hub(b: &mut Builder) -> u32 {
    let region = pick_region(b.rng);
    if chance(b.rng, 0.5) {
        let holder = b.person();
        b.account(holder, Role::Individual, region)
    } else {
        let holder = b.company(region, INDUSTRY_GENERAL);
        b.account(holder, Role::Unknown, region)
    }
}

/// The seven AMLSim shapes, `count` of each. Members are existing consumers (accounts with
/// ordinary history), hubs are new accounts.
fn build_patterns(b: &mut Builder, count: u32, days: u32) {
    for _ in 0..count {
        for typology in AMLSIM_TYPOLOGIES {
            let mut members: Vec<(u32, &'static str)> = Vec::new();
            let levels: Vec<Vec<(u32, u32)>> = match typology {
                "fan_in" | "fan_out" => {
                    let hub = pattern_hub(b);
                    let others = some_consumers(b, 8..=14);
                    members.push((hub, "hub"));
                    members.extend(others.iter().map(|&a| (a, "member")));
                    let edges = others
                        .iter()
                        .map(|&o| {
                            if typology == "fan_in" {
                                (o, hub)
                            } else {
                                (hub, o)
                            }
                        })
                        .collect();
                    vec![edges]
                }
                "cycle" => {
                    let ring = some_consumers(b, 4..=7);
                    members.extend(ring.iter().map(|&a| (a, "member")));
                    (0..ring.len())
                        .map(|i| vec![(ring[i], ring[(i + 1) % ring.len()])])
                        .collect()
                }
                "scatter_gather" => {
                    let source = pattern_hub(b);
                    let sink = pattern_hub(b);
                    let mid = some_consumers(b, 5..=9);
                    members.push((source, "hub"));
                    members.push((sink, "hub"));
                    members.extend(mid.iter().map(|&a| (a, "member")));
                    vec![
                        mid.iter().map(|&m| (source, m)).collect(),
                        mid.iter().map(|&m| (m, sink)).collect(),
                    ]
                }
                "gather_scatter" => {
                    let hub = pattern_hub(b);
                    let all = some_consumers(b, 10..=16);
                    let (ins, outs) = all.split_at(all.len() / 2);
                    members.push((hub, "hub"));
                    members.extend(all.iter().map(|&a| (a, "member")));
                    vec![
                        ins.iter().map(|&m| (m, hub)).collect(),
                        outs.iter().map(|&m| (hub, m)).collect(),
                    ]
                }
                "stack" => {
                    let per = b.rng.random_range(3..=4usize);
                    let all = some_consumers(b, per * 3..=per * 3);
                    members.extend(all.iter().map(|&a| (a, "member")));
                    let layers: Vec<&[u32]> = all.chunks(per).collect();
                    layers
                        .windows(2)
                        .map(|w| {
                            w[0].iter()
                                .flat_map(|&x| w[1].iter().map(move |&y| (x, y)))
                                .collect()
                        })
                        .collect()
                }
                _ => {
                    let all = some_consumers(b, 8..=14);
                    let (senders, receivers) = all.split_at(all.len() / 2);
                    members.extend(all.iter().map(|&a| (a, "member")));
                    let mut edges = Vec::new();
                    for &s in senders {
                        let k = b.rng.random_range(2..=3usize).min(receivers.len());
                        for i in index::sample(b.rng, receivers.len(), k) {
                            edges.push((s, receivers[i]));
                        }
                    }
                    vec![edges]
                }
            };
            if levels.iter().all(Vec::is_empty) {
                continue;
            }
            let scheme = b.scheme(typology, members);
            let tag = b.tag(vec![scheme]);
            let span = (days * 2 / 3).max(1);
            let mut waves: Vec<u32> = (0..b.rng.random_range(2..=3))
                .map(|_| b.rng.random_range(0..span))
                .collect();
            waves.sort_unstable();
            waves.dedup();
            b.pop.extras.patterns.push(Pattern { levels, waves, tag });
        }
    }
}
