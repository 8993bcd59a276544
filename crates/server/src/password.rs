//! The password policy every new password meets (a user's own change, an administrator's
//! new user, `clearwatch users add`): at least [`MIN_PASSWORD`] characters, at most
//! [`MAX_PASSWORD`] bytes, not only white space, and not one of the 10,000 most common
//! passwords (`data/common-passwords.txt`, from Django; see `data/COMMON-PASSWORDS.md`),
//! nor one of them padded with digits and symbols or repeated.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::i18n::Catalog;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD: usize = 12;
/// Longest password accepted, in bytes (argon2 reads all of it).
pub const MAX_PASSWORD: usize = 1024;

const COMMON: &str = include_str!("../data/common-passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// Why a password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("the password needs at least {MIN_PASSWORD} characters")]
    TooShort,
    #[error("the password may have at most {MAX_PASSWORD} bytes")]
    TooLong,
    #[error("the password cannot be only spaces")]
    Blank,
    #[error("the password is one of the most common passwords: choose another")]
    Common,
}

impl PasswordProblem {
    /// The message catalogue's key for this problem.
    pub fn key(self) -> &'static str {
        match self {
            PasswordProblem::TooShort => "password.too_short",
            PasswordProblem::TooLong => "password.too_long",
            PasswordProblem::Blank => "password.blank",
            PasswordProblem::Common => "password.common",
        }
    }

    /// The message in `t`'s language (`{min}` and `{max}` filled in).
    pub fn message(self, t: &Catalog) -> String {
        t.get(self.key())
            .replace("{min}", &MIN_PASSWORD.to_string())
            .replace("{max}", &MAX_PASSWORD.to_string())
    }
}

/// Whether `lower` is a common password, padded at its end with digits or symbols, or
/// one repeated ("passwordpassword").
fn is_common(lower: &str) -> bool {
    let set = common();
    if set.contains(lower) {
        return true;
    }
    let core = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    if core.chars().count() >= 4 && set.contains(core) {
        return true;
    }
    let n = lower.len();
    (1..=n / 2).any(|len| {
        n.is_multiple_of(len)
            && lower.is_char_boundary(len)
            && set.contains(&lower[..len])
            && lower
                .as_bytes()
                .chunks(len)
                .all(|c| c == &lower.as_bytes()[..len])
    })
}

/// Checks `password` against the policy.
pub fn check(password: &str) -> Result<(), PasswordProblem> {
    if password.len() > MAX_PASSWORD {
        return Err(PasswordProblem::TooLong);
    }
    if password.trim().is_empty() {
        return Err(PasswordProblem::Blank);
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(PasswordProblem::TooShort);
    }
    if is_common(&password.to_lowercase()) {
        return Err(PasswordProblem::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused_by_length_list_and_blankness() {
        assert_eq!(check("short-pw1"), Err(PasswordProblem::TooShort));
        assert_eq!(check("              "), Err(PasswordProblem::Blank));
        assert_eq!(
            check(&"x".repeat(MAX_PASSWORD + 1)),
            Err(PasswordProblem::TooLong)
        );
        // In the list as it is, padded, repeated, in capitals.
        assert_eq!(check("qwerty123456"), Err(PasswordProblem::Common));
        assert_eq!(check("Password12345!"), Err(PasswordProblem::Common));
        assert_eq!(check("iloveyouiloveyou"), Err(PasswordProblem::Common));
        assert_eq!(check("QWERTY123456"), Err(PasswordProblem::Common));
        assert_eq!(check("violet-anchor-tundra"), Ok(()));
        assert!(common().len() >= 9_000);
    }

    #[test]
    fn every_problem_has_a_message_in_every_catalogue() {
        for p in [
            PasswordProblem::TooShort,
            PasswordProblem::TooLong,
            PasswordProblem::Blank,
            PasswordProblem::Common,
        ] {
            for t in [crate::i18n::english(), crate::i18n::chinese()] {
                let m = p.message(t);
                assert_ne!(m, p.key(), "{} has no {}", t.lang, p.key());
                assert!(!m.contains("{min}") && !m.contains("{max}"), "{m}");
            }
        }
        assert!(
            PasswordProblem::TooShort
                .message(crate::i18n::english())
                .contains("12")
        );
    }
}
