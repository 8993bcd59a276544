//! Scenario variants: which backgrounds, look-alikes and data-quality defects a run adds to
//! the default two-clear scenario. `Variant::Default` adds nothing, so its output is the
//! same bytes as before variants existed; every other variant also injects the AMLSim-named
//! laundering patterns.

use std::fmt;
use std::str::FromStr;

/// A named generator variant (see datasets/README.md for what each one holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// Today's scenario: two-clear schemes over the original background.
    #[default]
    Default,
    /// Monthly payroll runs, supplier runs and group treasuries.
    Payroll,
    /// Licensed marketplaces, payment facilitators, bill collectors, refund batches,
    /// family and rent transfers.
    Marketplace,
    /// Dense consumer → merchant → supplier → staff circulation.
    Dense,
    /// Data-quality defects: missing roles and licences, settlements typed as transfers,
    /// missing merchant ids, opaque ids.
    SparseRegistry,
    /// Small (3–4 shops), slow (money held over a week) two-clear operators.
    SmallSlow,
    /// Payroll + marketplace + dense backgrounds with the sparse-registry defects.
    Realistic,
}

impl Variant {
    /// Every variant, in documentation order.
    pub const ALL: [Variant; 7] = [
        Variant::Default,
        Variant::Payroll,
        Variant::Marketplace,
        Variant::Dense,
        Variant::SparseRegistry,
        Variant::SmallSlow,
        Variant::Realistic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::Payroll => "payroll",
            Variant::Marketplace => "marketplace",
            Variant::Dense => "dense",
            Variant::SparseRegistry => "sparse-registry",
            Variant::SmallSlow => "small-slow",
            Variant::Realistic => "realistic",
        }
    }

    pub(crate) fn features(self) -> Features {
        let none = Features::default();
        match self {
            Variant::Default => none,
            Variant::Payroll => Features {
                payroll: true,
                laundering: true,
                ..none
            },
            Variant::Marketplace => Features {
                marketplace: true,
                laundering: true,
                ..none
            },
            Variant::Dense => Features {
                dense: true,
                laundering: true,
                ..none
            },
            Variant::SparseRegistry => Features {
                sparse: true,
                laundering: true,
                ..none
            },
            Variant::SmallSlow => Features {
                small_slow: true,
                laundering: true,
                ..none
            },
            Variant::Realistic => Features {
                payroll: true,
                marketplace: true,
                dense: true,
                sparse: true,
                small_slow: false,
                laundering: true,
            },
        }
    }

    /// Approximate transactions per scale unit per simulated day (measured at seed 42 with
    /// the default population), used to pick a scale for a wanted transaction count.
    pub fn transactions_per_scale_day(self) -> f64 {
        match self {
            Variant::Default => 850.0,
            Variant::SparseRegistry => 870.0,
            Variant::SmallSlow => 880.0,
            Variant::Payroll => 900.0,
            Variant::Marketplace => 940.0,
            Variant::Dense => 1_360.0,
            Variant::Realistic => 1_500.0,
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(s: &str) -> Result<Variant, String> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
                format!("unknown variant {s:?} (valid: {})", names.join(", "))
            })
    }
}

/// What a variant switches on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Features {
    pub payroll: bool,
    pub marketplace: bool,
    pub dense: bool,
    pub sparse: bool,
    pub small_slow: bool,
    pub laundering: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_round_trip() {
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>(), Ok(v));
        }
        assert!("nope".parse::<Variant>().unwrap_err().contains("payroll"));
    }
}
