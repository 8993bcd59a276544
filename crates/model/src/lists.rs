//! Watch lists and allow lists: named lists of accounts or holders that analysts keep by
//! hand, each entry with a reason and an expiry. Rules read them with
//! `in_list("name", value)`: a watch list raises attention (a rule may alert on a listed
//! account at a lower threshold), an allow list records a relationship checked and found
//! legitimate (a rule may pass over it). An entry counts from when it is added until it
//! expires or is removed; nothing is deleted.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::records::vocabulary;

/// The longest an entry may last: five years, so that every entry is reviewed again.
pub const MAX_ENTRY_MS: Millis = 5 * 366 * 86_400_000;
/// The longest value, reason and list description, in characters.
pub const MAX_VALUE_CHARS: usize = 200;
pub const MAX_REASON_CHARS: usize = 1000;
pub const MAX_DESCRIPTION_CHARS: usize = 500;

vocabulary!(
    /// What a list is for.
    ListKind {
        Watch => "watch",
        Allow => "allow",
    }
);

vocabulary!(
    /// What an entry names.
    EntryKind {
        Account => "account",
        Holder => "holder",
    }
);

/// Whether `name` can name a list: 1 to 64 lower-case letters, digits and `_`, as rules
/// write it.
pub fn valid_list_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A list with the number of its entries in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchList {
    pub name: String,
    pub kind: ListKind,
    pub description: String,
    pub created_by: String,
    pub created_at: String,
    pub active: u64,
}

/// An entry as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewListEntry {
    pub kind: EntryKind,
    /// The account id or the holder id.
    pub value: String,
    pub reason: String,
    /// UTC milliseconds; later than now and at most [`MAX_ENTRY_MS`] after it.
    pub expires_at: Millis,
}

impl NewListEntry {
    /// Why the entry cannot be added at `now`, if it cannot.
    pub fn check(&self, now: Millis) -> Result<(), EntryProblem> {
        let value = self.value.trim().chars().count();
        if value == 0 || value > MAX_VALUE_CHARS {
            return Err(EntryProblem::ValueLength);
        }
        let reason = self.reason.trim().chars().count();
        if reason == 0 {
            return Err(EntryProblem::NoReason);
        }
        if reason > MAX_REASON_CHARS {
            return Err(EntryProblem::LongReason);
        }
        if self.expires_at <= now {
            return Err(EntryProblem::Past);
        }
        if self.expires_at - now > MAX_ENTRY_MS {
            return Err(EntryProblem::TooLong);
        }
        Ok(())
    }
}

/// Why a list or an entry cannot be made. Each has a message key for the dashboard
/// (`list.problem.*`); the English text is its `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("the account or holder id must have 1 to {MAX_VALUE_CHARS} characters")]
    ValueLength,
    #[error("an entry needs a reason")]
    NoReason,
    #[error("a reason has at most {MAX_REASON_CHARS} characters")]
    LongReason,
    #[error("the expiry must be in the future")]
    Past,
    #[error("an entry may last at most five years")]
    TooLong,
    #[error("a list name has 1 to 64 lower-case letters, digits and _")]
    ListName,
    #[error("a description has at most {MAX_DESCRIPTION_CHARS} characters")]
    LongDescription,
}

impl EntryProblem {
    /// Its message key.
    pub fn key(self) -> &'static str {
        match self {
            EntryProblem::ValueLength => "list.problem.value_length",
            EntryProblem::NoReason => "list.problem.no_reason",
            EntryProblem::LongReason => "list.problem.long_reason",
            EntryProblem::Past => "list.problem.past",
            EntryProblem::TooLong => "list.problem.too_long",
            EntryProblem::ListName => "list.problem.list_name",
            EntryProblem::LongDescription => "list.problem.long_description",
        }
    }
}

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    Active,
    Expired,
    Removed,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Active => "active",
            EntryState::Expired => "expired",
            EntryState::Removed => "removed",
        }
    }
}

/// One entry of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListEntry {
    pub id: i64,
    pub list: String,
    pub kind: EntryKind,
    pub value: String,
    pub reason: String,
    pub expires_at: Millis,
    pub added_by: String,
    pub added_at: String,
    pub removed_by: Option<String>,
    pub removed_at: Option<String>,
}

impl ListEntry {
    pub fn state(&self, now: Millis) -> EntryState {
        if self.removed_at.is_some() {
            EntryState::Removed
        } else if self.expires_at <= now {
            EntryState::Expired
        } else {
            EntryState::Active
        }
    }
}

/// The entries in force when a scan starts, by list, kind and value, with when each ends:
/// what rules read. A long-running reader (a stream worker) still sees each end at its
/// time; a removal reaches it when it reads the lists again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListValues(BTreeMap<(String, EntryKind, String), Millis>);

impl ListValues {
    pub fn insert(&mut self, list: &str, kind: EntryKind, value: &str, expires_at: Millis) {
        let end = self
            .0
            .entry((list.to_string(), kind, value.to_string()))
            .or_insert(expires_at);
        *end = (*end).max(expires_at);
    }

    /// Whether `value` is an entry of `kind` in force at `now` in `list` (false for a list
    /// that does not exist, and for an absent value).
    pub fn contains(&self, list: &str, kind: EntryKind, value: &str, now: Millis) -> bool {
        !value.is_empty()
            && self
                .0
                .get(&(list.to_string(), kind, value.to_string()))
                .is_some_and(|end| *end > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_entries_and_states() {
        assert!(valid_list_name("known_aggregators_2026"));
        for bad in ["", "Known", "a-b", "a b", &"x".repeat(65)] {
            assert!(!valid_list_name(bad), "{bad:?}");
        }
        let now = 1_000_000;
        let e = NewListEntry {
            kind: EntryKind::Holder,
            value: "H1".into(),
            reason: "group treasury".into(),
            expires_at: now + 86_400_000,
        };
        assert_eq!(e.check(now), Ok(()));
        let late = NewListEntry {
            expires_at: now + MAX_ENTRY_MS + 1,
            ..e.clone()
        };
        assert!(late.check(now).is_err());
        let past = NewListEntry {
            expires_at: now,
            ..e.clone()
        };
        assert!(past.check(now).is_err());
        let blank = NewListEntry {
            reason: " ".into(),
            ..e.clone()
        };
        assert!(blank.check(now).is_err());
        let mut entry = ListEntry {
            id: 1,
            list: "x".into(),
            kind: EntryKind::Holder,
            value: "H1".into(),
            reason: "r".into(),
            expires_at: now + 10,
            added_by: "sue".into(),
            added_at: "t".into(),
            removed_by: None,
            removed_at: None,
        };
        assert_eq!(entry.state(now), EntryState::Active);
        assert_eq!(entry.state(now + 10), EntryState::Expired);
        entry.removed_at = Some("t".into());
        assert_eq!(entry.state(now), EntryState::Removed);
        let mut v = ListValues::default();
        v.insert("x", EntryKind::Holder, "H1", now + 10);
        v.insert("x", EntryKind::Holder, "H1", now + 5);
        let holder =
            |list: &str, value: &str, at: Millis| v.contains(list, EntryKind::Holder, value, at);
        assert!(holder("x", "H1", now) && !holder("x", "H2", now) && !holder("y", "H1", now));
        assert!(!holder("x", "H1", now + 10), "ends at its latest expiry");
        assert!(
            !v.contains("x", EntryKind::Account, "H1", now),
            "an account id is not a holder id"
        );
        assert!(!holder("x", "", now));
        assert_eq!("allow".parse::<ListKind>(), Ok(ListKind::Allow));
    }
}
