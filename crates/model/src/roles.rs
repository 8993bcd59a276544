//! Roles inferred from behaviour, for accounts the registry gives no role (absent from the
//! account file, or `unknown` there). Real registries are often silent for everyone but
//! the acquirers; what an account does with money says what it is in the payment chain.
//!
//! Over the whole loaded period:
//! - **acquirer**: paid by `payment` transactions from at least [`MIN_PAYMENT_PAYERS`]
//!   distinct accounts, and paying `settlement` transactions to at least
//!   [`MIN_SETTLED_PAYEES`] distinct accounts, settlements being at least half of what it
//!   sends: it collects shoppers' payments and settles merchants.
//! - **merchant**: sends no `settlement`, and either is paid by `payment` transactions from
//!   at least [`MIN_PAYMENT_PAYERS`] distinct accounts (a shop its customers pay), or is
//!   paid settlement money by a registered acquirer or a licensed institution (an acquirer
//!   settles it as a merchant): a `settlement`, or a `transfer` that carries a merchant id
//!   (settlements typed as plain transfers, as TC-11 reads them).
//! - otherwise nothing is inferred.
//!
//! A pool that an acquirer settles is a merchant to that acquirer, and is inferred as one:
//! the inferred role says where an account sits in the chain, not that it is legitimate.
//! Rules read it as `inferred_role` beside the registry's `role`, never in its place; the
//! dashboard marks an inferred role as inferred.

use crate::Role;

/// Distinct `payment` payers that make a collector of shoppers' money.
pub const MIN_PAYMENT_PAYERS: u32 = 20;
/// Distinct accounts settled that make an acquirer of such a collector.
pub const MIN_SETTLED_PAYEES: u32 = 5;

/// What an account did over the loaded period, as the inference reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleEvidence {
    /// Distinct accounts that paid it by `payment`.
    pub payment_payers: u32,
    /// Distinct accounts it paid by `settlement`.
    pub settlement_payees: u32,
    /// Its `settlement` transactions sent.
    pub settlements_sent: u32,
    /// All its transactions sent.
    pub sent: u32,
    /// Whether a registered acquirer or a licensed institution paid it settlement money: a
    /// `settlement`, or a `transfer` carrying a merchant id.
    pub settled_by_acquirer: bool,
}

/// The role `e` shows for an account whose registry role is `registered`; `None` where the
/// registry gives a role or the behaviour shows none.
pub fn infer_role(registered: Role, e: &RoleEvidence) -> Option<Role> {
    if registered != Role::Unknown {
        return None;
    }
    let collects = e.payment_payers >= MIN_PAYMENT_PAYERS;
    let mostly_settles = u64::from(e.settlements_sent) * 2 >= u64::from(e.sent);
    if collects && e.settlement_payees >= MIN_SETTLED_PAYEES && mostly_settles {
        return Some(Role::Acquirer);
    }
    if e.settlements_sent == 0 && (collects || e.settled_by_acquirer) {
        return Some(Role::Merchant);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquirer() -> RoleEvidence {
        RoleEvidence {
            payment_payers: MIN_PAYMENT_PAYERS,
            settlement_payees: MIN_SETTLED_PAYEES,
            settlements_sent: 10,
            sent: 20,
            settled_by_acquirer: false,
        }
    }

    #[test]
    fn collectors_that_settle_others_are_acquirers() {
        assert_eq!(infer_role(Role::Unknown, &acquirer()), Some(Role::Acquirer));
        let few_payers = RoleEvidence {
            payment_payers: MIN_PAYMENT_PAYERS - 1,
            ..acquirer()
        };
        assert_eq!(infer_role(Role::Unknown, &few_payers), None);
        let few_settled = RoleEvidence {
            settlement_payees: MIN_SETTLED_PAYEES - 1,
            ..acquirer()
        };
        assert_eq!(infer_role(Role::Unknown, &few_settled), None);
        let mostly_other = RoleEvidence {
            sent: 21,
            ..acquirer()
        };
        assert_eq!(infer_role(Role::Unknown, &mostly_other), None);
    }

    #[test]
    fn shops_and_settled_accounts_are_merchants() {
        let shop = RoleEvidence {
            payment_payers: MIN_PAYMENT_PAYERS,
            sent: 3,
            ..RoleEvidence::default()
        };
        assert_eq!(infer_role(Role::Unknown, &shop), Some(Role::Merchant));
        let settled = RoleEvidence {
            settled_by_acquirer: true,
            ..RoleEvidence::default()
        };
        assert_eq!(infer_role(Role::Unknown, &settled), Some(Role::Merchant));
        let settles_too = RoleEvidence {
            settlements_sent: 1,
            sent: 1,
            settlement_payees: 1,
            ..settled
        };
        assert_eq!(infer_role(Role::Unknown, &settles_too), None);
        assert_eq!(infer_role(Role::Unknown, &RoleEvidence::default()), None);
    }

    #[test]
    fn the_registry_is_never_overruled() {
        for &r in Role::ALL {
            if r != Role::Unknown {
                assert_eq!(infer_role(r, &acquirer()), None, "{r}");
            }
        }
    }
}
