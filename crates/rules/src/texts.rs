//! A pack's texts in other languages: rule titles, summary templates and figure names,
//! written under `translations:` in `_shared` files (`rules/_shared/texts-zh-CN.yaml`).
//! They are kept apart from the rule files on purpose: a rule's version is the hash of its
//! file, so translating a title leaves every rule version and alert id as it was.
//! A stable rule without a title and summary in every language, or with a figure that has
//! no name in one, gets a lint warning; a translated summary that does not parse is a
//! warning too, and the English one stands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::aggregate::Unit;
use super::config::{RuleTextConfig, Text, TranslationConfig};
use super::diag::{self, Diagnostic};
use super::params::Params;
use super::template::Template;
use clearwatch_model::Lang;
use serde_saphyr::Spanned;

/// Where the docs describe translations.
const DOC: &str = "docs/rules.md#translations";

/// One rule's title and summary in one language, as written.
#[derive(Debug, Clone)]
pub struct TextSource {
    pub path: PathBuf,
    pub source: Arc<str>,
    pub title: Option<String>,
    pub summary: Option<Text>,
}

/// The translations of every `_shared` file, later files overriding earlier ones entry by
/// entry.
#[derive(Debug, Clone, Default)]
pub struct Texts {
    metrics: BTreeMap<(Lang, String), String>,
    rules: BTreeMap<(Lang, String), TextSource>,
}

impl Texts {
    /// Adds one file's `translations:`; a language clearwatch does not speak, or English
    /// rule texts (they are the rule's own), are errors.
    pub fn add(
        &mut self,
        path: &Path,
        text: &str,
        translations: &BTreeMap<String, Spanned<TranslationConfig>>,
        diags: &mut Vec<Diagnostic>,
    ) {
        let source: Arc<str> = Arc::from(text);
        for (tag, t) in translations {
            let Some(lang) = Lang::parse(tag) else {
                diags.push(
                    diag::at(path, text, t, format!("unknown language `{tag}`"))
                        .with_help(Some(format!("valid languages: {}", Lang::tags()))),
                );
                continue;
            };
            for (name, label) in &t.value.metrics {
                self.metrics
                    .insert((lang, name.clone()), label.trim().to_string());
            }
            for (id, r) in &t.value.rules {
                if lang == Lang::En {
                    diags.push(
                        diag::at(path, text, r, format!("English texts of `{id}`"))
                            .with_help(Some(
                            "a rule's English title and summary are its own `title` and `summary`"
                                .into(),
                        )),
                    );
                    continue;
                }
                // A later file overrides field by field: a title alone keeps the summary.
                let RuleTextConfig { title, summary } = &r.value;
                let entry = self
                    .rules
                    .entry((lang, id.clone()))
                    .or_insert_with(|| TextSource {
                        path: path.to_path_buf(),
                        source: source.clone(),
                        title: None,
                        summary: None,
                    });
                if let Some(t) = title {
                    entry.title = Some(t.trim().to_string());
                }
                if let Some(s) = summary {
                    // Positions in the summary point into the file that wrote it.
                    entry.path = path.to_path_buf();
                    entry.source = source.clone();
                    entry.summary = Some(s.clone());
                }
            }
        }
    }

    /// The name of figure `metric` in `lang`, if one is written.
    pub fn metric(&self, lang: Lang, metric: &str) -> Option<&str> {
        self.metrics
            .get(&(lang, metric.to_string()))
            .map(String::as_str)
    }

    /// The title of rule `id` in `lang` (not English: that is the rule's own).
    pub fn title(&self, lang: Lang, id: &str) -> Option<&str> {
        self.rules
            .get(&(lang, id.to_string()))
            .and_then(|t| t.title.as_deref())
    }

    /// The title of rule `id` in `lang`, else `english` (the rule's own).
    pub fn title_or<'a>(&'a self, lang: Lang, id: &str, english: &'a str) -> &'a str {
        self.title(lang, id).unwrap_or(english)
    }

    /// What figure `metric` is called in `lang`, else in English, else its name.
    pub fn metric_name<'a>(&'a self, lang: Lang, metric: &'a str) -> &'a str {
        self.metric(lang, metric)
            .or_else(|| self.metric(Lang::En, metric))
            .unwrap_or(metric)
    }

    /// The rule ids with texts in `lang`.
    pub fn rule_ids(&self, lang: Lang) -> impl Iterator<Item = &str> {
        self.rules
            .keys()
            .filter(move |(l, _)| *l == lang)
            .map(|(_, id)| id.as_str())
    }
}

/// A rule's title and summary in one language other than English.
#[derive(Debug, Clone)]
pub struct RuleText {
    pub title: Option<String>,
    pub summary: Option<Template>,
}

/// Compiles the translated texts of rule `id`; problems go to `warnings`. Only a stable
/// rule must have every text: drafts are not shown to analysts yet.
#[allow(clippy::too_many_arguments)]
pub fn compile(
    texts: &Texts,
    id: &Text,
    path: &Path,
    source: &str,
    metrics: &[(String, Unit)],
    params: &Params,
    stable: bool,
    warnings: &mut Vec<Diagnostic>,
) -> BTreeMap<Lang, RuleText> {
    let mut out = BTreeMap::new();
    for lang in Lang::ALL {
        if stable {
            let unnamed: Vec<&str> = metrics
                .iter()
                .map(|(m, _)| m.as_str())
                .filter(|m| texts.metric(lang, m).is_none())
                .collect();
            if !unnamed.is_empty() {
                warnings.push(
                    diag::at(
                        path,
                        source,
                        id,
                        format!("figures without a name in {lang}: {}", unnamed.join(", ")),
                    )
                    .with_help(Some(format!(
                        "name them under `translations: {lang}: metrics:` in a `_shared` file ({DOC})"
                    )))
                    .as_warning(),
                );
            }
        }
        if lang == Lang::En {
            continue;
        }
        let Some(src) = texts.rules.get(&(lang, id.value.clone())) else {
            if stable {
                warnings.push(
                    diag::at(path, source, id, format!("no {lang} title and summary"))
                        .with_help(Some(format!(
                            "write them under `translations: {lang}: rules: {}:` in a `_shared` file ({DOC})",
                            id.value
                        )))
                        .as_warning(),
                );
            }
            continue;
        };
        if stable && (src.title.is_none() || src.summary.is_none()) {
            let missing = match (&src.title, &src.summary) {
                (None, None) => "title and summary",
                (None, _) => "title",
                _ => "summary",
            };
            warnings.push(
                diag::at(path, source, id, format!("no {lang} {missing}"))
                    .with_help(Some(format!(
                        "write it under `translations: {lang}: rules: {}:` in {} ({DOC})",
                        id.value,
                        src.path.display()
                    )))
                    .as_warning(),
            );
        }
        let summary = src.summary.as_ref().and_then(|s| {
            Template::parse(&s.value, metrics, params)
                .map_err(|(offset, msg, help)| {
                    let (line, column) = diag::position_in_scalar(&src.source, s, offset);
                    warnings.push(
                        Diagnostic::new(&src.path, line, column, format!("{}: {msg}", id.value))
                            .with_snippet(&src.source)
                            .with_help(Some(help))
                            .as_warning(),
                    );
                })
                .ok()
        });
        out.insert(
            lang,
            RuleText {
                title: src.title.clone(),
                summary,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load;

    const RULE: &str = "id: X-1\ntitle: Many payers\nstatus: test\nseverity: low\ndetect:\n  \
                        kind: star\n  window: { length: 1d }\n  aggregates:\n    \
                        payers: { fn: count_distinct, over: in, field: counterparty }\n  \
                        condition: 'payers >= 1'\nsummary: '{subject} had {payers:payer|payers}'\n";

    /// The pack of `RULE` with `texts` as `_shared/texts.yaml` (none when empty).
    fn pack(texts: &str) -> (crate::load::RuleSet, Vec<Diagnostic>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("X-1-payers.yaml"), RULE).unwrap();
        if !texts.is_empty() {
            std::fs::create_dir(dir.path().join("_shared")).unwrap();
            std::fs::write(dir.path().join("_shared/texts.yaml"), texts).unwrap();
        }
        let (set, diags) = load(&[dir.path().to_path_buf()]);
        (set, diags, dir)
    }

    #[test]
    fn a_translation_names_the_rule_and_its_figures_and_leaves_its_version_alone() {
        let (plain, diags, _d) = pack("");
        assert!(diags.is_empty(), "{diags:?}");
        let (set, diags, _d) = pack(
            "translations:\n  zh-CN:\n    metrics:\n      payers: 付款方数\n    rules:\n      \
             X-1:\n        title: 众多付款方\n        summary: '{subject} 有 {payers:个付款方|个付款方}'\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let rule = &set.rules[0];
        assert_eq!(rule.title_in(Lang::ZhCn), "众多付款方");
        assert_eq!(rule.title_in(Lang::En), "Many payers");
        assert!(rule.texts[&Lang::ZhCn].summary.is_some());
        assert_eq!(
            set.shared.texts.metric(Lang::ZhCn, "payers"),
            Some("付款方数")
        );
        // The shipped names are there for every pack.
        assert_eq!(set.shared.texts.metric(Lang::En, "payers"), Some("payers"));
        assert_eq!(set.shared.texts.metric(Lang::En, "no_such_figure"), None);
        assert_eq!(
            rule.version, plain.rules[0].version,
            "a translation is not a new version"
        );
        assert!(set.shared.texts.rule_ids(Lang::ZhCn).any(|id| id == "X-1"));
    }

    #[test]
    fn a_later_file_overrides_a_translation_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("X-1-payers.yaml"), RULE).unwrap();
        std::fs::create_dir(dir.path().join("_shared")).unwrap();
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join("_shared").join(name), text).unwrap();
        };
        write(
            "a.yaml",
            "translations:\n  zh-CN:\n    rules:\n      X-1:\n        title: 旧标题\n        \
             summary: '{subject} 有 {payers:个付款方|个付款方}'\n",
        );
        write(
            "b.yaml",
            "translations:\n  zh-CN:\n    rules:\n      X-1: { title: 新标题 }\n",
        );
        let (set, diags) = load(&[dir.path().to_path_buf()]);
        assert!(diags.is_empty(), "{diags:?}");
        let rule = &set.rules[0];
        assert_eq!(rule.title_in(Lang::ZhCn), "新标题");
        assert!(
            rule.texts[&Lang::ZhCn].summary.is_some(),
            "the summary of a.yaml stays"
        );
    }

    #[test]
    fn a_bad_translation_is_reported_where_it_is_written() {
        let (_, diags, _d) = pack("translations:\n  fr:\n    metrics: { payers: payeurs }\n");
        let d = diags
            .iter()
            .find(|d| d.message.contains("unknown language `fr`"));
        let d = d.unwrap_or_else(|| panic!("{diags:?}"));
        assert!(
            d.path.ends_with("_shared/texts.yaml") && d.line == 3,
            "{d:?}"
        );
        assert_eq!(d.help.as_deref(), Some("valid languages: en, zh-CN"));
        let (_, diags, _d) = pack("translations:\n  en:\n    rules:\n      X-1: { title: t }\n");
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("English texts of `X-1`")),
            "{diags:?}"
        );
        let (set, diags, _d) = pack(
            "translations:\n  zh-CN:\n    rules:\n      X-1:\n        title: 标题\n        \
             summary: '{subject} 有 {payees}'\n",
        );
        assert!(
            diags.is_empty(),
            "a bad translated summary is a warning: {diags:?}"
        );
        let rule = &set.rules[0];
        let w = rule.warnings.iter().find(|w| w.message.contains("unknown"));
        let w = w.unwrap_or_else(|| panic!("{:?}", rule.warnings));
        assert!(
            w.path.ends_with("_shared/texts.yaml") && w.line == 6,
            "{w:?}"
        );
        assert!(w.message.starts_with("X-1: "), "{w:?}");
        assert!(rule.texts[&Lang::ZhCn].summary.is_none());
        assert_eq!(rule.title_in(Lang::ZhCn), "标题");
    }

    #[test]
    fn a_stable_rule_needs_every_text_and_a_draft_does_not() {
        let id: Text = serde_saphyr::from_str("X-1").unwrap();
        let metrics = [("payers".to_string(), Unit::Count)];
        let params = Params::default();
        let run = |stable: bool| {
            let mut warnings = Vec::new();
            compile(
                &Texts::default(),
                &id,
                Path::new("X-1.yaml"),
                "id: X-1\n",
                &metrics,
                &params,
                stable,
                &mut warnings,
            );
            warnings.into_iter().map(|w| w.message).collect::<Vec<_>>()
        };
        assert_eq!(
            run(true),
            [
                "figures without a name in en: payers",
                "figures without a name in zh-CN: payers",
                "no zh-CN title and summary",
            ]
        );
        assert!(run(false).is_empty());
    }
}
