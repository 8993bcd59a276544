//! The message catalogue: every user-facing string of the dashboard by key, one JSON file
//! per language in `dashboards/messages/`, every one with the same keys (a test checks);
//! a key missing at run time falls back to English. The language comes from the browser's
//! `Accept-Language`.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::{HeaderMap, header};
use clearwatch_model::Lang;

/// One language's messages, with English behind it.
#[derive(Debug)]
pub struct Catalog {
    pub lang: &'static str,
    pub language: Lang,
    messages: HashMap<String, String>,
    fallback: Option<&'static Catalog>,
}

const EN: &str = include_str!("../../../dashboards/messages/en.json");
const ZH_CN: &str = include_str!("../../../dashboards/messages/zh-CN.json");

fn parse(text: &str) -> HashMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

pub fn english() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| Catalog {
        lang: "en",
        language: Lang::En,
        messages: parse(EN),
        fallback: None,
    })
}

pub fn chinese() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| Catalog {
        lang: "zh-CN",
        language: Lang::ZhCn,
        messages: parse(ZH_CN),
        fallback: Some(english()),
    })
}

/// A message worded from the catalogue in the reader's language: each part is a key whose
/// `{name}` placeholders are filled from its arguments, the parts joined by ": ".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Worded(Vec<(&'static str, Vec<(&'static str, Arg)>)>);

/// A placeholder's value: a text shown as it is, or the key of a term (a status's label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    Term(String),
}

impl Worded {
    pub fn new(key: &'static str) -> Worded {
        Worded(vec![(key, Vec::new())])
    }

    /// Fills `{name}` of the last part with `value`.
    pub fn arg(mut self, name: &'static str, value: impl ToString) -> Worded {
        if let Some((_, args)) = self.0.last_mut() {
            args.push((name, Arg::Text(value.to_string())));
        }
        self
    }

    /// Fills `{name}` of the last part with the term of key `key`.
    pub fn term(mut self, name: &'static str, key: String) -> Worded {
        if let Some((_, args)) = self.0.last_mut() {
            args.push((name, Arg::Term(key)));
        }
        self
    }

    /// This message, then `more` after a colon.
    pub fn then(mut self, more: Worded) -> Worded {
        self.0.extend(more.0);
        self
    }

    /// The message in `t`'s language: placeholders filled in one pass (a value is never
    /// read as a placeholder), parts joined by a colon of that language.
    pub fn render(&self, t: &Catalog) -> String {
        let colon = if t.language == Lang::ZhCn {
            "："
        } else {
            ": "
        };
        self.0
            .iter()
            .map(|(key, args)| {
                let template = t.get(key);
                let mut out = String::with_capacity(template.len());
                let mut rest = template;
                while let Some(open) = rest.find('{') {
                    out.push_str(&rest[..open]);
                    let after = &rest[open + 1..];
                    let filled = after.find('}').and_then(|close| {
                        let name = &after[..close];
                        let value =
                            args.iter()
                                .find(|(n, _)| *n == name)
                                .map(|(_, a)| match a {
                                    Arg::Text(v) => v.as_str(),
                                    Arg::Term(k) => t.get(k),
                                })?;
                        Some((value, close))
                    });
                    match filled {
                        Some((value, close)) => {
                            out.push_str(value);
                            rest = &after[close + 1..];
                        }
                        None => {
                            out.push('{');
                            rest = after;
                        }
                    }
                }
                out.push_str(rest);
                out
            })
            .collect::<Vec<_>>()
            .join(colon)
    }
}

impl Catalog {
    /// The message for `key`, else the English one, else the key itself.
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        match self.messages.get(key) {
            Some(m) => m,
            None => match self.fallback {
                Some(f) => f.get(key),
                None => key,
            },
        }
    }

    /// The first language of `Accept-Language` that has a catalogue; English otherwise.
    pub fn for_request(headers: &HeaderMap) -> &'static Catalog {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        for part in accept.split(',') {
            let tag = part.split(';').next().unwrap_or("").trim().to_lowercase();
            if tag.starts_with("zh") {
                return chinese();
            }
            if tag.starts_with("en") {
                return english();
            }
        }
        english()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_parses_and_english_has_every_key() {
        let en = parse(EN);
        assert!(en.len() > 20);
        let zh = parse(ZH_CN);
        assert!(!zh.is_empty());
        for k in zh.keys() {
            assert!(en.contains_key(k), "zh-CN key {k} missing in en.json");
        }
        assert_eq!(english().get("no.such.key"), "no.such.key");
        assert_eq!(chinese().get("nav.alerts"), zh["nav.alerts"]);
    }

    #[test]
    fn every_catalogue_has_the_same_keys() {
        let en = parse(EN);
        let zh = parse(ZH_CN);
        let missing: Vec<&String> = en.keys().filter(|k| !zh.contains_key(*k)).collect();
        let extra: Vec<&String> = zh.keys().filter(|k| !en.contains_key(*k)).collect();
        assert!(missing.is_empty(), "zh-CN.json lacks {missing:?}");
        assert!(
            extra.is_empty(),
            "zh-CN.json has keys en.json lacks: {extra:?}"
        );
        for (k, v) in &zh {
            assert!(!v.trim().is_empty(), "zh-CN {k} is empty");
        }
    }

    /// Every action the store audits (a literal `"case.assign"` in its source, or a field a
    /// user change names) and every value of the vocabularies shown has a name.
    #[test]
    fn every_audited_action_and_vocabulary_value_has_a_name() {
        let en = parse(EN);
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/src");
        let mut actions = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for literal in text.split('"').skip(1).step_by(2) {
                let group = literal.split('.').next().unwrap_or("");
                let known = crate::audit::ACTION_GROUPS.contains(&format!("{group}.").as_str());
                if known
                    && literal.len() > group.len() + 1
                    && literal
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
                {
                    actions.push(literal.to_string());
                }
            }
        }
        actions.extend(
            ["role", "time_zone", "disable", "enable", "availability"].map(|f| format!("user.{f}")),
        );
        assert!(actions.len() > 15, "{actions:?}");
        for a in &actions {
            assert!(
                en.contains_key(&format!("action.{a}")),
                "no name for action {a}"
            );
        }
        use clearwatch_model::{AccountKind, Role, SubjectKind, TxType};
        let values = TxType::ALL.iter().map(|t| format!("txtype.{}", t.as_str()));
        let values = values
            .chain(
                AccountKind::ALL
                    .iter()
                    .map(|k| format!("account_kind.{}", k.as_str())),
            )
            .chain(Role::ALL.iter().map(|r| format!("role.{}", r.as_str())))
            .chain(
                SubjectKind::ALL
                    .iter()
                    .map(|k| format!("subject_kind.{}", k.as_str())),
            );
        for key in values {
            assert!(en.contains_key(&key), "no name for {key}");
        }
    }

    #[test]
    fn language_follows_accept_language() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9".parse().unwrap());
        assert_eq!(Catalog::for_request(&h).lang, "zh-CN");
        h.insert(header::ACCEPT_LANGUAGE, "fr, en;q=0.5".parse().unwrap());
        assert_eq!(Catalog::for_request(&h).lang, "en");
    }

    /// A worded message fills each placeholder once, leaves a value that looks like a
    /// placeholder as it is, and joins its parts with the language's colon.
    #[test]
    fn worded_messages_fill_placeholders_once() {
        let w = Worded::new("case.problem.bulk")
            .arg("alert", "{found}")
            .then(
                Worded::new("case.problem.conflict")
                    .arg("alert", "a1")
                    .arg("found", 3)
                    .arg("expected", 2),
            );
        assert_eq!(
            w.render(english()),
            "nothing was changed: alert {found}: alert a1 was changed by someone else (version 3, you had 2): reload and try again"
        );
        let zh = w.render(chinese());
        assert!(
            zh.starts_with("未做任何修改：预警 {found}：预警 a1"),
            "{zh}"
        );
        let status =
            Worded::new("case.problem.needs_approval").term("to", "status.escalated".into());
        assert_eq!(
            status.render(chinese()),
            format!(
                "将案件转为“{}”需要主管审批：请提交申请",
                chinese().get("status.escalated")
            )
        );
    }
}
