//! Seeded random helpers: every draw goes through one ChaCha stream, in program order.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

pub(crate) type SimRng = ChaCha8Rng;

pub(crate) fn chance(rng: &mut SimRng, p: f64) -> bool {
    rng.random_bool(p.clamp(0.0, 1.0))
}

pub(crate) fn unit(rng: &mut SimRng) -> f64 {
    rng.random::<f64>()
}

pub(crate) fn standard_normal(rng: &mut SimRng) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Log-normal draw around `median`, clipped to `[lo, hi]`.
pub(crate) fn lognormal(rng: &mut SimRng, median: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
    (median * (sigma * standard_normal(rng)).exp()).clamp(lo, hi)
}

/// Log-normal amount in fen; `whole_yuan` is the chance of a round-yuan amount.
pub(crate) fn amount_fen(
    rng: &mut SimRng,
    median_fen: i64,
    sigma: f64,
    lo_fen: i64,
    hi_fen: i64,
    whole_yuan: f64,
) -> i64 {
    let raw = lognormal(rng, median_fen as f64, sigma, lo_fen as f64, hi_fen as f64) as i64;
    let fen = if chance(rng, whole_yuan) {
        raw / 100 * 100
    } else {
        raw
    };
    fen.clamp(lo_fen.max(1), hi_fen)
}

pub(crate) fn poisson(rng: &mut SimRng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        let draw = lambda + lambda.sqrt() * standard_normal(rng);
        return draw.round().max(0.0) as u32;
    }
    let limit = (-lambda).exp();
    let mut product = unit(rng);
    let mut count = 0;
    while product > limit {
        product *= unit(rng);
        count += 1;
    }
    count
}

/// Pareto-distributed popularity weight, heavy-tailed, capped.
pub(crate) fn pareto(rng: &mut SimRng, alpha: f64, cap: f64) -> f64 {
    (1.0 - unit(rng)).powf(-1.0 / alpha).min(cap)
}

/// `amount * (10000 - bp) / 10000`, rounded down, in integer arithmetic.
pub(crate) fn less_bp(amount: i64, bp: i64) -> i64 {
    let kept = i128::from(amount) * i128::from(10_000 - bp) / 10_000;
    kept as i64
}

/// `amount * bp / 10000`, rounded down.
pub(crate) fn bp_of(amount: i64, bp: i64) -> i64 {
    (i128::from(amount) * i128::from(bp) / 10_000) as i64
}

/// Cumulative-weight sampler over a fixed list of items.
#[derive(Debug, Default, Clone)]
pub(crate) struct Weighted {
    items: Vec<u32>,
    cumulative: Vec<f64>,
}

impl Weighted {
    pub(crate) fn push(&mut self, item: u32, weight: f64) {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        self.items.push(item);
        self.cumulative.push(total + weight.max(0.0));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty() || self.cumulative.last().copied().unwrap_or(0.0) <= 0.0
    }

    pub(crate) fn sample(&self, rng: &mut SimRng) -> Option<u32> {
        let total = *self.cumulative.last()?;
        if total <= 0.0 {
            return None;
        }
        let target = unit(rng) * total;
        let at = self.cumulative.partition_point(|&c| c <= target);
        self.items.get(at.min(self.items.len() - 1)).copied()
    }
}
