//! The static population: holders, accounts, the merchant registry, scheme set-ups and labels.
//! Everything here is O(accounts); the day-by-day simulation only reads it.

use rand::RngExt;
use rand::seq::SliceRandom;

use super::ScenarioConfig;
use super::extras::{self, Extras};
use super::names::{INDUSTRY_GENERAL, INDUSTRY_RETAIL, INDUSTRY_TECH, INDUSTRY_VENUE, NameGen};
use super::rng::{SimRng, Weighted, chance, lognormal, pareto};

pub(crate) const XSS_MERCHANT_NAME: &str = "<img src=x onerror=alert(1)>";

pub(crate) struct Region {
    pub code: &'static str,
    pub cities: &'static [&'static str],
    pub weight: f64,
}

pub(crate) const REGIONS: &[Region] = &[
    Region {
        code: "GD",
        cities: &["深圳市", "广州市", "东莞市", "佛山市"],
        weight: 0.22,
    },
    Region {
        code: "ZJ",
        cities: &["杭州市", "宁波市", "温州市", "义乌市"],
        weight: 0.14,
    },
    Region {
        code: "SH",
        cities: &["上海市"],
        weight: 0.12,
    },
    Region {
        code: "BJ",
        cities: &["北京市"],
        weight: 0.11,
    },
    Region {
        code: "JS",
        cities: &["南京市", "苏州市", "无锡市"],
        weight: 0.13,
    },
    Region {
        code: "SC",
        cities: &["成都市", "绵阳市"],
        weight: 0.10,
    },
    Region {
        code: "FJ",
        cities: &["厦门市", "福州市", "泉州市"],
        weight: 0.09,
    },
    Region {
        code: "SD",
        cities: &["济南市", "青岛市", "烟台市"],
        weight: 0.09,
    },
];

/// Merchant category: code, median ticket (fen), log-normal sigma, share of merchants.
pub(crate) struct Mcc {
    pub code: u16,
    pub median_fen: i64,
    pub sigma: f64,
    pub weight: f64,
}

pub(crate) const MCCS: &[Mcc] = &[
    Mcc {
        code: 5411,
        median_fen: 4_500,
        sigma: 0.8,
        weight: 14.0,
    },
    Mcc {
        code: 5812,
        median_fen: 8_500,
        sigma: 0.7,
        weight: 16.0,
    },
    Mcc {
        code: 5814,
        median_fen: 2_800,
        sigma: 0.5,
        weight: 12.0,
    },
    Mcc {
        code: 5499,
        median_fen: 1_800,
        sigma: 0.7,
        weight: 10.0,
    },
    Mcc {
        code: 5311,
        median_fen: 26_000,
        sigma: 0.9,
        weight: 4.0,
    },
    Mcc {
        code: 5651,
        median_fen: 22_000,
        sigma: 0.8,
        weight: 6.0,
    },
    Mcc {
        code: 5732,
        median_fen: 90_000,
        sigma: 1.0,
        weight: 3.0,
    },
    Mcc {
        code: 5912,
        median_fen: 6_500,
        sigma: 0.8,
        weight: 6.0,
    },
    Mcc {
        code: 5541,
        median_fen: 28_000,
        sigma: 0.4,
        weight: 4.0,
    },
    Mcc {
        code: 7011,
        median_fen: 42_000,
        sigma: 0.6,
        weight: 3.0,
    },
    Mcc {
        code: 4121,
        median_fen: 3_200,
        sigma: 0.5,
        weight: 5.0,
    },
    Mcc {
        code: 5999,
        median_fen: 12_000,
        sigma: 1.0,
        weight: 8.0,
    },
    Mcc {
        code: 7230,
        median_fen: 9_000,
        sigma: 0.7,
        weight: 5.0,
    },
    Mcc {
        code: 5942,
        median_fen: 6_000,
        sigma: 0.6,
        weight: 2.0,
    },
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Personal,
    Corporate,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Personal => "personal",
            Kind::Corporate => "corporate",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Acquirer,
    Merchant,
    Agent,
    Individual,
    Bank,
    Unknown,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Acquirer => "acquirer",
            Role::Merchant => "merchant",
            Role::Agent => "agent",
            Role::Individual => "individual",
            Role::Bank => "bank",
            Role::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    Power,
    Water,
    Gas,
    Phone,
}

impl Service {
    pub(crate) fn memo(self) -> &'static str {
        match self {
            Service::Power => "电费",
            Service::Water => "水费",
            Service::Gas => "燃气费",
            Service::Phone => "话费",
        }
    }

    pub(crate) fn median_fen(self) -> i64 {
        match self {
            Service::Power => 16_000,
            Service::Water => 5_500,
            Service::Gas => 8_000,
            Service::Phone => 9_000,
        }
    }

    fn company_word(self) -> &'static str {
        match self {
            Service::Power => "电力",
            Service::Water => "水务",
            Service::Gas => "燃气",
            Service::Phone => "通信",
        }
    }
}

pub(crate) struct Holder {
    pub name: String,
    pub kind: Kind,
}

pub(crate) struct Account {
    pub holder: u32,
    pub role: Role,
    pub licensed: bool,
    /// Holder index of the institution that keeps the account.
    pub institution: u32,
    pub region: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MerchantKind {
    Compliant,
    /// TC-11: the acquirer short-pays on some days.
    Mismatch {
        tag: u32,
    },
    /// Settled into a standard two-clear operator's hub.
    Victim {
        op: u32,
    },
    /// Settled into the first hop of a nested chain.
    Nested {
        chain: u32,
    },
    /// The variant operator's own registration, fronting unregistered shops.
    VariantHub {
        op: u32,
    },
}

pub(crate) struct Merchant {
    pub holder: u32,
    pub settlement_account: u32,
    /// Where the merchant's money should end up (its own account).
    pub own_account: u32,
    /// Index into `Population::acquirers`.
    pub acquirer: u32,
    pub mcc: usize,
    pub cycle: u32,
    pub region: u8,
    pub weight: f64,
    pub fee_bp: i64,
    pub kind: MerchantKind,
    pub aggregator: Option<u32>,
    /// Index into `Population::wholesalers`, paid weekly.
    pub supplier: u32,
    pub supplier_weekday: u32,
    pub supplier_share_bp: i64,
}

pub(crate) struct Bill {
    pub utility: u32,
    pub dom: u32,
}

pub(crate) struct Consumer {
    pub account: u32,
    pub region: u8,
    pub rate: f64,
    /// Index into `Population::banks`.
    pub bank: u32,
    pub contacts: Vec<u32>,
    pub bills: Vec<Bill>,
}

pub(crate) struct Company {
    pub account: u32,
    pub region: u8,
    pub employees: Vec<(u32, i64)>,
    pub pay_dom: u32,
    /// Account of the outside client that funds it weekly (payroll is paid from this).
    pub client: u32,
    pub weekly_revenue: i64,
    pub revenue_weekday: u32,
}

/// Supplies shops (many payers) and pays one upstream manufacturer.
pub(crate) struct Wholesaler {
    pub account: u32,
    pub upstream: u32,
    pub weekday: u32,
}

pub(crate) struct Utility {
    pub account: u32,
    pub service: Service,
}

pub(crate) struct Aggregator {
    pub account: u32,
    pub holder: u32,
    pub commission_bp: i64,
    /// Vendor company, share of the monthly budget (bp), memo.
    pub vendors: Vec<(u32, i64, &'static str)>,
    pub expense_dom: u32,
}

pub(crate) struct StdOperator {
    pub hub: u32,
    pub sibling: u32,
    pub skim_bp: i64,
    pub delay_base: u32,
    /// Longest hold in days (6 for the standard operators, 14 for small-slow ones).
    pub max_delay: u32,
    pub settle_tag: u32,
    pub payout_tag: u32,
    pub sweep_tag: u32,
}

pub(crate) struct VariantOperator {
    pub hub: u32,
    pub shops: Vec<u32>,
    pub shop_pick: Weighted,
    pub skim_bp: i64,
    pub delay_base: u32,
    pub settle_tag: u32,
    pub payout_tag: u32,
}

pub(crate) struct NestedChain {
    pub a: u32,
    pub b: u32,
    pub skim_a: i64,
    pub skim_b: i64,
    pub settle_tag: u32,
    pub hop_tag: u32,
    pub payout_tag: u32,
}

pub(crate) struct PersonalQr {
    pub account: u32,
    pub region: u8,
    pub rate: f64,
    pub supplier: u32,
    pub tag: u32,
}

pub(crate) struct Structurer {
    pub account: u32,
    pub bank: u32,
    pub associate: u32,
    pub tag: u32,
}

pub(crate) struct MuleRing {
    pub mules: Vec<u32>,
    pub collector: u32,
    pub tag: u32,
}

pub(crate) struct CycleRing {
    pub members: Vec<u32>,
    pub first_day: u32,
    pub tag: u32,
}

pub(crate) struct Scheme {
    pub id: String,
    pub typology: &'static str,
    pub decoy: bool,
    pub members: Vec<(u32, &'static str)>,
}

pub(crate) struct Population {
    pub holders: Vec<Holder>,
    pub accounts: Vec<Account>,
    pub merchants: Vec<Merchant>,
    pub acquirers: Vec<u32>,
    pub banks: Vec<u32>,
    pub consumers: Vec<Consumer>,
    pub consumers_by_region: Vec<Vec<u32>>,
    pub companies: Vec<Company>,
    pub wholesalers: Vec<Wholesaler>,
    pub utilities: Vec<Utility>,
    pub aggregators: Vec<Aggregator>,
    pub std_ops: Vec<StdOperator>,
    pub variant_ops: Vec<VariantOperator>,
    pub nested: Vec<NestedChain>,
    pub personal_qr: Vec<PersonalQr>,
    pub structurers: Vec<Structurer>,
    pub mule_rings: Vec<MuleRing>,
    pub cycles: Vec<CycleRing>,
    pub schemes: Vec<Scheme>,
    /// Tag id -> scheme indices; tag 0 is "no scheme".
    pub tag_sets: Vec<Vec<u32>>,
    pub market_by_region: Vec<Weighted>,
    pub market_all: Weighted,
    pub account_ids: Vec<String>,
    pub holder_ids: Vec<String>,
    pub merchant_ids: Vec<String>,
    /// Variant additions (empty for the default variant).
    pub extras: Extras,
}

pub(crate) fn scaled(base: u32, scale: f64, min: u32) -> u32 {
    let value = (f64::from(base) * scale).round();
    if value.is_finite() && value > f64::from(min) {
        value.min(f64::from(u32::MAX / 8)) as u32
    } else {
        min
    }
}

pub(crate) fn pick_region(rng: &mut SimRng) -> u8 {
    let total: f64 = REGIONS.iter().map(|r| r.weight).sum();
    let mut target = rng.random::<f64>() * total;
    for (i, region) in REGIONS.iter().enumerate() {
        if target < region.weight {
            return i as u8;
        }
        target -= region.weight;
    }
    (REGIONS.len() - 1) as u8
}

pub(crate) fn pick_city(rng: &mut SimRng, region: u8) -> &'static str {
    let cities = REGIONS[usize::from(region)].cities;
    cities[rng.random_range(0..cities.len())]
}

fn pick_mcc(rng: &mut SimRng, among: &[u16]) -> usize {
    let candidates: Vec<usize> = MCCS
        .iter()
        .enumerate()
        .filter(|(_, m)| among.is_empty() || among.contains(&m.code))
        .map(|(i, _)| i)
        .collect();
    let total: f64 = candidates.iter().map(|&i| MCCS[i].weight).sum();
    let mut target = rng.random::<f64>() * total;
    for &i in &candidates {
        if target < MCCS[i].weight {
            return i;
        }
        target -= MCCS[i].weight;
    }
    candidates[candidates.len() - 1]
}

fn fixed_width_ids(rng: &mut SimRng, prefixes: &[&str], n: usize, min_width: usize) -> Vec<String> {
    let mut numbers: Vec<usize> = (1..=n).collect();
    numbers.shuffle(rng);
    let width = min_width.max(n.to_string().len());
    numbers
        .into_iter()
        .enumerate()
        .map(|(i, num)| format!("{}{num:0width$}", prefixes[i % prefixes.len()]))
        .collect()
}

pub(crate) struct Builder<'r> {
    pub rng: &'r mut SimRng,
    pub names: NameGen,
    pub pop: Population,
}

impl Builder<'_> {
    pub(crate) fn holder(&mut self, name: String, kind: Kind) -> u32 {
        self.pop.holders.push(Holder { name, kind });
        (self.pop.holders.len() - 1) as u32
    }

    pub(crate) fn account(&mut self, holder: u32, role: Role, region: u8) -> u32 {
        let bank = self.pop.banks[self.rng.random_range(0..self.pop.banks.len())];
        let institution = self.pop.accounts[bank as usize].holder;
        self.account_at(holder, role, false, region, institution)
    }

    pub(crate) fn account_at(
        &mut self,
        holder: u32,
        role: Role,
        licensed: bool,
        region: u8,
        institution: u32,
    ) -> u32 {
        self.pop.accounts.push(Account {
            holder,
            role,
            licensed,
            institution,
            region,
        });
        (self.pop.accounts.len() - 1) as u32
    }

    pub(crate) fn person(&mut self) -> u32 {
        let name = self.names.person(self.rng);
        self.holder(name, Kind::Personal)
    }

    pub(crate) fn company(&mut self, region: u8, industries: &[&str]) -> u32 {
        let city = pick_city(self.rng, region);
        let name = self.names.company(self.rng, city, industries);
        self.holder(name, Kind::Corporate)
    }

    pub(crate) fn scheme(
        &mut self,
        typology: &'static str,
        members: Vec<(u32, &'static str)>,
    ) -> u32 {
        self.pop.schemes.push(Scheme {
            id: String::new(),
            typology,
            decoy: false,
            members,
        });
        (self.pop.schemes.len() - 1) as u32
    }

    pub(crate) fn tag(&mut self, schemes: Vec<u32>) -> u32 {
        self.pop.tag_sets.push(schemes);
        (self.pop.tag_sets.len() - 1) as u32
    }

    /// A registry entry with typical attributes; callers adjust the kind-specific fields.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn merchant(
        &mut self,
        holder: u32,
        own_account: u32,
        settlement_account: u32,
        acquirer: u32,
        region: u8,
        kind: MerchantKind,
        mcc_among: &[u16],
    ) -> u32 {
        let mcc = pick_mcc(self.rng, mcc_among);
        let cycle = if chance(self.rng, 0.85) { 1 } else { 2 };
        let weight = pareto(self.rng, 1.6, 40.0);
        let fee_bp = self.rng.random_range(38..=60);
        let supplier = self.rng.random_range(0..self.pop.wholesalers.len()) as u32;
        let supplier_weekday = self.rng.random_range(0..5);
        let supplier_share_bp = self.rng.random_range(4_000..=7_000);
        self.pop.merchants.push(Merchant {
            holder,
            settlement_account,
            own_account,
            acquirer,
            mcc,
            cycle,
            region,
            weight,
            fee_bp,
            kind,
            aggregator: None,
            supplier,
            supplier_weekday,
            supplier_share_bp,
        });
        (self.pop.merchants.len() - 1) as u32
    }

    /// A small shop's holder and own account: sole trader (personal) or company.
    pub(crate) fn shop(
        &mut self,
        region: u8,
        personal_share: f64,
        personal_role: Role,
    ) -> (u32, u32) {
        if chance(self.rng, personal_share) {
            let holder = self.person();
            let account = self.account(holder, personal_role, region);
            (holder, account)
        } else {
            let holder = self.company(region, INDUSTRY_RETAIL);
            let account = self.account(holder, Role::Merchant, region);
            (holder, account)
        }
    }

    pub(crate) fn random_acquirer(&mut self) -> u32 {
        self.rng.random_range(0..self.pop.acquirers.len()) as u32
    }

    pub(crate) fn nearby_region(&mut self, region: u8) -> u8 {
        if chance(self.rng, 0.9) {
            region
        } else {
            pick_region(self.rng)
        }
    }
}

pub(crate) fn build(cfg: &ScenarioConfig, rng: &mut SimRng) -> Population {
    let s = cfg.scale;
    let pop = Population {
        holders: Vec::new(),
        accounts: Vec::new(),
        merchants: Vec::new(),
        acquirers: Vec::new(),
        banks: Vec::new(),
        consumers: Vec::new(),
        consumers_by_region: vec![Vec::new(); REGIONS.len()],
        companies: Vec::new(),
        wholesalers: Vec::new(),
        utilities: Vec::new(),
        aggregators: Vec::new(),
        std_ops: Vec::new(),
        variant_ops: Vec::new(),
        nested: Vec::new(),
        personal_qr: Vec::new(),
        structurers: Vec::new(),
        mule_rings: Vec::new(),
        cycles: Vec::new(),
        schemes: Vec::new(),
        tag_sets: vec![Vec::new()],
        market_by_region: vec![Weighted::default(); REGIONS.len()],
        market_all: Weighted::default(),
        account_ids: Vec::new(),
        holder_ids: Vec::new(),
        merchant_ids: Vec::new(),
        extras: Extras::default(),
    };
    let mut b = Builder {
        rng,
        names: NameGen::default(),
        pop,
    };
    b.names.reserve(XSS_MERCHANT_NAME);

    build_institutions(&mut b, s);
    build_background(&mut b, cfg, s);
    build_compliant_merchants(&mut b, scaled(cfg.merchants, s, 1));
    build_aggregators(&mut b, scaled(2, s, 1));
    build_mismatch(&mut b, scaled(1, s, 1));
    build_std_operators(&mut b, scaled(2, s, 1));
    build_variant_operators(&mut b, scaled(1, s, 1));
    build_nested(&mut b, scaled(1, s, 1));
    build_personal_qr(&mut b, scaled(1, s, 1));
    build_structurers(&mut b, scaled(1, s, 1));
    build_mule_rings(&mut b, scaled(1, s, 1));
    build_cycles(&mut b, scaled(1, s, 1), cfg.days);
    let features = cfg.variant.features();
    if features.small_slow {
        build_small_slow_operators(&mut b, scaled(2, s, 1));
    }
    extras::build(&mut b, features, cfg, s);
    build_markets(&mut b);
    assign_ids(&mut b, features.sparse);
    b.pop
}

fn build_institutions(b: &mut Builder, s: f64) {
    for _ in 0..scaled(2, s, 4) {
        let name = b.names.bank(b.rng);
        let holder = b.holder(name, Kind::Corporate);
        let region = pick_region(b.rng);
        let account = b.account_at(holder, Role::Bank, true, region, holder);
        b.pop.banks.push(account);
    }
    for i in 0..scaled(3, s, 3) {
        let name = if i % 2 == 0 {
            b.names.payment_institution(b.rng)
        } else {
            b.names.bank(b.rng)
        };
        let holder = b.holder(name, Kind::Corporate);
        let region = pick_region(b.rng);
        let account = b.account_at(holder, Role::Acquirer, true, region, holder);
        b.pop.acquirers.push(account);
    }
}

fn build_background(b: &mut Builder, cfg: &ScenarioConfig, s: f64) {
    let n_consumers = scaled(cfg.consumers, s, 2);
    let n_companies = (n_consumers / 25).max(2);
    let mut companies_by_region: Vec<Vec<u32>> = vec![Vec::new(); REGIONS.len()];
    for _ in 0..n_companies {
        let region = pick_region(b.rng);
        let industries = if chance(b.rng, 0.5) {
            INDUSTRY_GENERAL
        } else {
            INDUSTRY_TECH
        };
        let holder = b.company(region, industries);
        let account = b.account(holder, Role::Unknown, region);
        let pay_dom = [10, 15, 25][b.rng.random_range(0..3)];
        companies_by_region[usize::from(region)].push(b.pop.companies.len() as u32);
        let revenue_weekday = b.rng.random_range(0..5);
        b.pop.companies.push(Company {
            account,
            region,
            employees: Vec::new(),
            pay_dom,
            client: 0,
            weekly_revenue: 0,
            revenue_weekday,
        });
    }

    let replicas = scaled(1, s / 10.0, 1);
    let mut utilities_by_region: Vec<Vec<u32>> = vec![Vec::new(); REGIONS.len()];
    let mut phone_utilities = Vec::new();
    for _ in 0..replicas {
        for region in 0..REGIONS.len() as u8 {
            for service in [Service::Power, Service::Water, Service::Gas] {
                let city = REGIONS[usize::from(region)].cities[0];
                let name = b.names.utility(b.rng, city, service.company_word());
                let holder = b.holder(name, Kind::Corporate);
                let account = b.account(holder, Role::Merchant, region);
                utilities_by_region[usize::from(region)].push(b.pop.utilities.len() as u32);
                b.pop.utilities.push(Utility { account, service });
            }
        }
        for _ in 0..2 {
            let name = b.names.utility(b.rng, "", Service::Phone.company_word());
            let holder = b.holder(name, Kind::Corporate);
            let region = pick_region(b.rng);
            let account = b.account(holder, Role::Merchant, region);
            phone_utilities.push(b.pop.utilities.len() as u32);
            b.pop.utilities.push(Utility {
                account,
                service: Service::Phone,
            });
        }
    }

    for i in 0..n_consumers {
        let region = pick_region(b.rng);
        let holder = b.person();
        let bank = b.rng.random_range(0..b.pop.banks.len()) as u32;
        let institution = b.pop.accounts[b.pop.banks[bank as usize] as usize].holder;
        let account = b.account_at(holder, Role::Individual, false, region, institution);
        let rate = lognormal(b.rng, 0.75, 0.5, 0.1, 4.0);
        let mut bills = Vec::new();
        let local = &utilities_by_region[usize::from(region)];
        for (service, share) in [
            (Service::Power, 0.95),
            (Service::Water, 0.7),
            (Service::Gas, 0.4),
        ] {
            let options: Vec<u32> = local
                .iter()
                .copied()
                .filter(|&u| b.pop.utilities[u as usize].service == service)
                .collect();
            if !options.is_empty() && chance(b.rng, share) {
                let utility = options[b.rng.random_range(0..options.len())];
                bills.push(Bill {
                    utility,
                    dom: b.rng.random_range(1..=28),
                });
            }
        }
        if chance(b.rng, 0.8) {
            let utility = phone_utilities[b.rng.random_range(0..phone_utilities.len())];
            bills.push(Bill {
                utility,
                dom: b.rng.random_range(1..=28),
            });
        }
        b.pop.consumers_by_region[usize::from(region)].push(i);
        b.pop.consumers.push(Consumer {
            account,
            region,
            rate,
            bank,
            contacts: Vec::new(),
            bills,
        });
    }

    for i in 0..n_consumers as usize {
        let region = usize::from(b.pop.consumers[i].region);
        let count = b.rng.random_range(4..=12);
        let mut contacts = Vec::with_capacity(count);
        for _ in 0..count {
            let local = &b.pop.consumers_by_region[region];
            let other = if chance(b.rng, 0.7) && local.len() > 1 {
                local[b.rng.random_range(0..local.len())]
            } else {
                b.rng.random_range(0..n_consumers)
            };
            if other as usize != i && !contacts.contains(&other) {
                contacts.push(other);
            }
        }
        b.pop.consumers[i].contacts = contacts;

        if chance(b.rng, 0.65) {
            let local = &companies_by_region[region];
            let company = if !local.is_empty() && chance(b.rng, 0.7) {
                local[b.rng.random_range(0..local.len())]
            } else {
                b.rng.random_range(0..n_companies)
            };
            let salary = (lognormal(b.rng, 7_000.0, 0.45, 2_500.0, 80_000.0) as i64) * 100;
            b.pop.companies[company as usize]
                .employees
                .push((i as u32, salary));
        }
    }

    let mut clients = Vec::new();
    for _ in 0..(n_companies / 6).max(2) {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_GENERAL);
        clients.push(b.account(holder, Role::Unknown, region));
    }
    for k in 0..b.pop.companies.len() {
        let payroll: i64 = b.pop.companies[k]
            .employees
            .iter()
            .map(|&(_, salary)| salary)
            .sum();
        let base = b.rng.random_range(2_000_000..=10_000_000i64);
        let margin_bp = b.rng.random_range(13_000..=18_000i64);
        let company = &mut b.pop.companies[k];
        company.weekly_revenue = (base + payroll * margin_bp / 10_000) * 10 / 43;
        company.client = clients[b.rng.random_range(0..clients.len())];
    }

    for _ in 0..(n_companies / 3).max(2) {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_RETAIL);
        let account = b.account(holder, Role::Unknown, region);
        let upstream = clients[b.rng.random_range(0..clients.len())];
        let weekday = b.rng.random_range(0..5);
        b.pop.wholesalers.push(Wholesaler {
            account,
            upstream,
            weekday,
        });
    }
}

fn build_compliant_merchants(b: &mut Builder, count: u32) {
    for i in 0..count {
        let region = pick_region(b.rng);
        let (holder, account) = if i == 0 {
            let holder = b.holder(XSS_MERCHANT_NAME.to_owned(), Kind::Corporate);
            (holder, b.account(holder, Role::Merchant, region))
        } else {
            b.shop(region, 0.35, Role::Merchant)
        };
        let acquirer = b.random_acquirer();
        b.merchant(
            holder,
            account,
            account,
            acquirer,
            region,
            MerchantKind::Compliant,
            &[],
        );
    }
}

fn build_aggregators(b: &mut Builder, count: u32) {
    let mut candidates: Vec<u32> = (0..b.pop.merchants.len() as u32)
        .filter(|&m| b.pop.merchants[m as usize].kind == MerchantKind::Compliant)
        .collect();
    candidates.shuffle(b.rng);
    let mut next = 0usize;
    for a in 0..count {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_TECH);
        let account = b.account(holder, Role::Agent, region);
        let routed = b.rng.random_range(10..=20usize);
        for &m in candidates.iter().skip(next).take(routed) {
            b.pop.merchants[m as usize].aggregator = Some(a);
        }
        next += routed;
        let mut vendors = Vec::new();
        for (memo, share_bp) in [
            ("房租", 4_000),
            ("服务器费用", 3_500),
            ("技术服务费", 2_500),
        ] {
            let company = b.rng.random_range(0..b.pop.companies.len()) as u32;
            vendors.push((company, share_bp, memo));
        }
        let commission_bp = b.rng.random_range(10..=20);
        let expense_dom = b.rng.random_range(18..=22);
        b.pop.aggregators.push(Aggregator {
            account,
            holder,
            commission_bp,
            vendors,
            expense_dom,
        });
        let scheme = b.scheme("legit_aggregator", vec![(account, "aggregator")]);
        b.pop.schemes[scheme as usize].decoy = true;
    }
}

fn build_mismatch(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_RETAIL);
        let account = b.account(holder, Role::Merchant, region);
        let scheme = b.scheme("TC-11", vec![(account, "merchant")]);
        let tag = b.tag(vec![scheme]);
        let acquirer = b.random_acquirer();
        let m = b.merchant(
            holder,
            account,
            account,
            acquirer,
            region,
            MerchantKind::Mismatch { tag },
            &[],
        );
        let merchant = &mut b.pop.merchants[m as usize];
        merchant.cycle = 1;
        merchant.weight = merchant.weight.max(3.0);
    }
}

fn build_std_operators(b: &mut Builder, count: u32) {
    build_operators(b, count, 10..=25, 2..=4, 6);
}

/// TC-04 operators that pool 3–4 shops and hold their money for more than a week.
fn build_small_slow_operators(b: &mut Builder, count: u32) {
    build_operators(b, count, 3..=4, 8..=10, 14);
}

fn build_operators(
    b: &mut Builder,
    count: u32,
    victim_range: std::ops::RangeInclusive<i32>,
    delays: std::ops::RangeInclusive<u32>,
    max_delay: u32,
) {
    for k in 0..count {
        let region = pick_region(b.rng);
        let personal = k % 2 == 1;
        let holder = if personal {
            b.person()
        } else {
            b.company(region, INDUSTRY_TECH)
        };
        let hub = b.account(holder, Role::Agent, region);
        let sibling = b.account(holder, Role::Agent, region);
        let acquirer = b.random_acquirer();
        let op = b.pop.std_ops.len() as u32;
        let mut victims = Vec::new();
        for _ in 0..b.rng.random_range(victim_range.clone()) {
            let shop_region = b.nearby_region(region);
            let (shop_holder, own) = b.shop(shop_region, 0.6, Role::Merchant);
            let m = b.merchant(
                shop_holder,
                own,
                hub,
                acquirer,
                shop_region,
                MerchantKind::Victim { op },
                &[],
            );
            b.pop.merchants[m as usize].cycle = 1;
            victims.push((own, "merchant"));
        }
        let mut pool = vec![(hub, "hub"), (sibling, "member")];
        pool.extend(victims.iter().copied());
        let mut with_hub = vec![(hub, "hub")];
        with_hub.extend(victims.iter().copied());
        let mut as_payer = vec![(hub, "payer")];
        as_payer.extend(victims.iter().copied());
        let tc04 = b.scheme("TC-04", pool);
        let tc05 = b.scheme("TC-05", with_hub.clone());
        let tc01 = b.scheme("TC-01", with_hub.clone());
        let tc02 = b.scheme("TC-02", with_hub);
        let tc03 = b.scheme("TC-03", as_payer);
        let mut settle = vec![tc04, tc05, tc01, tc02];
        if personal {
            settle.push(b.scheme("TC-06", vec![(hub, "hub")]));
        }
        let settle_tag = b.tag(settle);
        let payout_tag = b.tag(vec![tc04, tc05, tc03]);
        let sweep_tag = b.tag(vec![tc04]);
        let skim_bp = b.rng.random_range(50..=200);
        let delay_base = b.rng.random_range(delays.clone());
        b.pop.std_ops.push(StdOperator {
            hub,
            sibling,
            skim_bp,
            delay_base,
            max_delay,
            settle_tag,
            payout_tag,
            sweep_tag,
        });
    }
}

fn build_variant_operators(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.company(region, INDUSTRY_VENUE);
        let hub = b.account(holder, Role::Merchant, region);
        let mut shops = Vec::new();
        let mut shop_pick = Weighted::default();
        let mut total_weight = 0.0;
        for i in 0..b.rng.random_range(12..=30u32) {
            let personal_role = if chance(b.rng, 0.7) {
                Role::Unknown
            } else {
                Role::Merchant
            };
            let (_, account) = b.shop(region, 0.7, personal_role);
            let weight = pareto(b.rng, 1.8, 10.0);
            shop_pick.push(i, weight);
            total_weight += weight;
            shops.push(account);
        }
        let op = b.pop.variant_ops.len() as u32;
        let acquirer = b.random_acquirer();
        let m = b.merchant(
            holder,
            hub,
            hub,
            acquirer,
            region,
            MerchantKind::VariantHub { op },
            &[5812, 5411, 5499],
        );
        let merchant = &mut b.pop.merchants[m as usize];
        merchant.cycle = 1;
        // The venue sells as much as its shops together.
        merchant.weight = total_weight;
        let mut members = vec![(hub, "hub")];
        members.extend(shops.iter().map(|&s| (s, "merchant")));
        let tc04 = b.scheme("TC-04", members.clone());
        let tc05 = b.scheme("TC-05", members);
        let settle_tag = b.tag(vec![tc04, tc05]);
        let payout_tag = b.tag(vec![tc04, tc05]);
        let skim_bp = b.rng.random_range(50..=200);
        let delay_base = b.rng.random_range(2..=4);
        b.pop.variant_ops.push(VariantOperator {
            hub,
            shops,
            shop_pick,
            skim_bp,
            delay_base,
            settle_tag,
            payout_tag,
        });
    }
}

fn build_nested(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let a_holder = b.company(region, INDUSTRY_TECH);
        let a = b.account(a_holder, Role::Agent, region);
        let b_region = b.nearby_region(region);
        let b_holder = b.company(b_region, INDUSTRY_TECH);
        let hop_b = b.account(b_holder, Role::Agent, b_region);
        let chain = b.pop.nested.len() as u32;
        let acquirer = b.random_acquirer();
        let mut merchants = Vec::new();
        for _ in 0..b.rng.random_range(8..=14) {
            let shop_region = b.nearby_region(region);
            let (holder, own) = b.shop(shop_region, 0.6, Role::Merchant);
            let m = b.merchant(
                holder,
                own,
                a,
                acquirer,
                shop_region,
                MerchantKind::Nested { chain },
                &[],
            );
            b.pop.merchants[m as usize].cycle = 1;
            merchants.push((own, "merchant"));
        }
        let mut chain_members = vec![(a, "hub"), (hop_b, "nested_hub")];
        chain_members.extend(merchants.iter().copied());
        let mut with_a = vec![(a, "hub")];
        with_a.extend(merchants.iter().copied());
        let mut as_payer = vec![(hop_b, "payer")];
        as_payer.extend(merchants.iter().copied());
        let tc09 = b.scheme("TC-09", chain_members);
        let tc01 = b.scheme("TC-01", with_a.clone());
        let tc02 = b.scheme("TC-02", with_a);
        let tc03 = b.scheme("TC-03", as_payer);
        let settle_tag = b.tag(vec![tc09, tc01, tc02]);
        let hop_tag = b.tag(vec![tc09]);
        let payout_tag = b.tag(vec![tc09, tc03]);
        let skim_a = b.rng.random_range(30..=100);
        let skim_b = b.rng.random_range(30..=100);
        b.pop.nested.push(NestedChain {
            a,
            b: hop_b,
            skim_a,
            skim_b,
            settle_tag,
            hop_tag,
            payout_tag,
        });
    }
}

fn build_personal_qr(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.person();
        let account = b.account(holder, Role::Individual, region);
        let scheme = b.scheme("TC-06", vec![(account, "payee")]);
        let tag = b.tag(vec![scheme]);
        let rate = b.rng.random_range(10.0..16.0);
        let supplier = b.pop.wholesalers[b.rng.random_range(0..b.pop.wholesalers.len())].account;
        b.pop.personal_qr.push(PersonalQr {
            account,
            region,
            rate,
            supplier,
            tag,
        });
    }
}

fn build_structurers(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let holder = b.person();
        let account = b.account(holder, Role::Individual, region);
        let associate_holder = b.person();
        let associate = b.account(associate_holder, Role::Individual, region);
        let bank = b.pop.banks[b.rng.random_range(0..b.pop.banks.len())];
        let scheme = b.scheme("TC-10", vec![(account, "member")]);
        let tag = b.tag(vec![scheme]);
        b.pop.structurers.push(Structurer {
            account,
            bank,
            associate,
            tag,
        });
    }
}

fn build_mule_rings(b: &mut Builder, count: u32) {
    for _ in 0..count {
        let region = pick_region(b.rng);
        let mut members = Vec::new();
        let mut mules = Vec::new();
        for _ in 0..b.rng.random_range(3..=5) {
            let holder = b.person();
            let mule_region = b.nearby_region(region);
            let mule = b.account(holder, Role::Individual, mule_region);
            mules.push(mule);
            members.push((mule, "mule"));
        }
        let holder = b.person();
        let collector = b.account(holder, Role::Individual, region);
        members.push((collector, "payee"));
        let scheme = b.scheme("TC-12", members);
        let tag = b.tag(vec![scheme]);
        b.pop.mule_rings.push(MuleRing {
            mules,
            collector,
            tag,
        });
    }
}

fn build_cycles(b: &mut Builder, count: u32, days: u32) {
    for _ in 0..count {
        let mut members = Vec::new();
        for _ in 0..b.rng.random_range(3..=4) {
            let region = pick_region(b.rng);
            let holder = b.company(region, INDUSTRY_GENERAL);
            members.push(b.account(holder, Role::Unknown, region));
        }
        let scheme = b.scheme("cycle", members.iter().map(|&m| (m, "member")).collect());
        let tag = b.tag(vec![scheme]);
        let first_day = b.rng.random_range(0..days.clamp(1, 5));
        b.pop.cycles.push(CycleRing {
            members,
            first_day,
            tag,
        });
    }
}

fn build_markets(b: &mut Builder) {
    for (i, merchant) in b.pop.merchants.iter().enumerate() {
        b.pop.market_by_region[usize::from(merchant.region)].push(i as u32, merchant.weight);
        b.pop.market_all.push(i as u32, merchant.weight);
    }
}

/// `n` distinct 16-hex-digit ids that say nothing about what they name.
fn opaque_ids(rng: &mut SimRng, n: usize) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        let id = format!("{:016x}", rng.random::<u64>());
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    ids
}

fn assign_ids(b: &mut Builder, opaque: bool) {
    let n_accounts = b.pop.accounts.len();
    let n_merchants = b.pop.merchants.len();
    if opaque {
        b.pop.account_ids = opaque_ids(b.rng, n_accounts);
        b.pop.merchant_ids = opaque_ids(b.rng, n_merchants);
        b.pop.holder_ids = opaque_ids(b.rng, b.pop.holders.len());
        order_schemes(b);
        return;
    }
    b.pop.account_ids = fixed_width_ids(b.rng, &["A"], n_accounts, 8);
    b.pop.merchant_ids = fixed_width_ids(b.rng, &["M"], n_merchants, 8);
    let mut numbers = fixed_width_ids(b.rng, &[""], b.pop.holders.len(), 8);
    for (holder, number) in b.pop.holders.iter().zip(numbers.iter_mut()) {
        let prefix = if holder.kind == Kind::Personal {
            "P"
        } else {
            "C"
        };
        number.insert_str(0, prefix);
    }
    b.pop.holder_ids = numbers;
    order_schemes(b);
}

fn order_schemes(b: &mut Builder) {
    // Scheme ids: decoys D…, labelled schemes S…; reorder so index order is id order.
    let width = 4usize.max(b.pop.schemes.len().to_string().len());
    let (mut decoys, mut labelled) = (0usize, 0usize);
    for scheme in &mut b.pop.schemes {
        scheme.id = if scheme.decoy {
            decoys += 1;
            format!("D{decoys:0width$}")
        } else {
            labelled += 1;
            format!("S{labelled:0width$}")
        };
    }
    let mut order: Vec<usize> = (0..b.pop.schemes.len()).collect();
    order.sort_by(|&x, &y| b.pop.schemes[x].id.cmp(&b.pop.schemes[y].id));
    let mut new_index = vec![0u32; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new as u32;
    }
    let mut old_schemes: Vec<Option<Scheme>> = std::mem::take(&mut b.pop.schemes)
        .into_iter()
        .map(Some)
        .collect();
    b.pop.schemes = order
        .iter()
        .filter_map(|&old| old_schemes[old].take())
        .collect();
    for set in &mut b.pop.tag_sets {
        for scheme in set.iter_mut() {
            *scheme = new_index[*scheme as usize];
        }
    }
    for scheme in &mut b.pop.schemes {
        let ids = &b.pop.account_ids;
        scheme
            .members
            .sort_by(|x, y| ids[x.0 as usize].cmp(&ids[y.0 as usize]));
        scheme.members.dedup_by_key(|m| m.0);
    }
}

impl Population {
    pub(crate) fn labelled_schemes(&self) -> u64 {
        self.schemes.iter().filter(|s| !s.decoy).count() as u64
    }
}
