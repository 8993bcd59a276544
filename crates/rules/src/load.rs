//! Loading rule packs: the pack shipped in the binary, or rule files under the given
//! paths with the `_shared` lists and macros beside them; parses and compiles every rule,
//! and collects every diagnostic of the whole set in one pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use include_dir::{Dir, include_dir};

use super::compile::{Rule, Shared, compile_rule};
use super::config::{RuleConfig, SharedConfig};
use super::diag::{self, Diagnostic};
use super::expr::{self, Const, Macro};
use super::texts::Texts;
use clearwatch_model::Zone;

/// The shipped rule pack (`rules/` of the sources), embedded in the binary so that a
/// binary copied anywhere has it.
static SHIPPED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../rules");

/// The folder name under which the shipped pack's files are labelled (the path they have
/// in the sources, so a rule's version is the same whether it is read from the embedded
/// pack or from `rules/` in a checkout).
const SHIPPED_ROOT: &str = "rules";

/// Where the fields of a rule file are documented.
const RULES_DOC: &str = "docs/rules.md";

/// The largest rule or shared file accepted (the dashboard's request limit is the same).
pub const MAX_RULE_FILE_BYTES: usize = 256 * 1024;

/// Parses rule YAML within a budget fit for rule files: a few levels of nesting and some
/// thousands of nodes, so that no file can exhaust memory or the stack while parsing.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 24,
            max_nodes: 50_000,
            max_documents: 1,
            max_total_scalar_bytes: MAX_RULE_FILE_BYTES,
            max_aliases: 100,
            max_anchors: 100,
        },
    };
    serde_saphyr::from_str_with_options(text, options)
}

/// The rule id a text declares, when it parses that far and is a valid id: it names the
/// file a draft is compiled as, so that lint reports what adding the file would.
pub fn declared_id(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Declared {
        id: String,
    }
    if text.len() > MAX_RULE_FILE_BYTES {
        return None;
    }
    parse_yaml::<Declared>(text)
        .ok()
        .map(|d| d.id)
        .filter(|id| {
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// A diagnostic when `text` is larger than a rule file may be.
pub(crate) fn too_large(path: &Path, text: &str) -> Option<Diagnostic> {
    (text.len() > MAX_RULE_FILE_BYTES).then(|| {
        Diagnostic::new(
            path,
            0,
            0,
            format!(
                "the file is {} bytes; a rule file may have at most {MAX_RULE_FILE_BYTES}",
                text.len()
            ),
        )
    })
}

/// Where a rule pack comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackSource {
    /// The pack shipped inside the binary.
    Shipped,
    /// Rule files and folders on disk.
    Paths(Vec<PathBuf>),
}

impl PackSource {
    /// `paths` if any are given; else a `rules/` folder in the working directory if there
    /// is one; else the shipped pack.
    pub fn resolve(paths: &[PathBuf]) -> PackSource {
        if !paths.is_empty() {
            return PackSource::Paths(paths.to_vec());
        }
        let local = Path::new(SHIPPED_ROOT);
        if local.is_dir() {
            return PackSource::Paths(vec![local.to_path_buf()]);
        }
        PackSource::Shipped
    }

    /// How `rules list` names the source.
    pub fn describe(&self) -> String {
        match self {
            PackSource::Shipped => "the pack shipped in the binary".to_string(),
            PackSource::Paths(p) => p
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Where one rule's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The pack shipped in the binary.
    Shipped,
    /// A rule file on disk.
    File,
    /// A version published from the dashboard, kept in the store.
    Published,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Shipped => "shipped",
            Origin::File => "file",
            Origin::Published => "published",
        }
    }
}

/// A rule file as parsed, kept so that tests can recompile it with other parameters.
pub struct RuleSource {
    pub path: PathBuf,
    pub text: String,
    pub config: RuleConfig,
}

/// A loaded rule pack.
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub sources: Vec<RuleSource>,
    pub shared: Shared,
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::new(
                dir,
                0,
                0,
                format!("cannot read folder: {e}"),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.file_name().and_then(|n| n.to_str()) == Some("_shared") {
            continue;
        }
        if p.is_dir() {
            walk(&p, out, diags);
        } else if is_yaml(&p) {
            out.push(p);
        }
    }
}

/// The `_shared` folder that applies to `path`: in it or in the nearest ancestor.
fn shared_dir_for(path: &Path) -> Option<PathBuf> {
    let start = if path.is_dir() {
        Some(path)
    } else {
        path.parent()
    };
    let mut dir = start?.to_path_buf();
    loop {
        let candidate = dir.join("_shared");
        if candidate.is_dir() {
            return Some(candidate);
        }
        if !dir.pop() {
            return None;
        }
    }
}

/// A YAML or serde error as a diagnostic at its position; an unknown field's help points
/// to `fields_doc`, the document that lists the valid fields.
pub(crate) fn yaml_error(
    path: &Path,
    source: &str,
    e: &serde_saphyr::Error,
    fields_doc: &str,
) -> Diagnostic {
    let (line, column) = e
        .location()
        .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
    let full = e.to_string();
    let first = full.lines().next().unwrap_or("invalid YAML").trim();
    // serde-saphyr prefixes "error: line N column M: "; the diagnostic says that itself.
    let message = first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("line "))
        .map_or(first, |(_, rest)| rest)
        .to_string();
    let message = plain_message(&message, key_at(source, line, column));
    let help = message
        .contains("unknown field")
        .then(|| format!("see {fields_doc} for every field"));
    Diagnostic::new(path, line, column, message)
        .with_snippet(source)
        .with_help(help)
}

/// The key whose value is in error at 1-based `line` and `column` of `source`: the key
/// written on that line (`title` in `  - title: x`), or, when the error points at the start
/// of the line (a nested block where a list or text was due), the key that block belongs to.
fn key_at(source: &str, line: usize, column: usize) -> Option<&str> {
    let lines: Vec<&str> = source.lines().collect();
    let at = line.checked_sub(1)?;
    fn indent(l: &str) -> usize {
        l.len() - l.trim_start().len()
    }
    fn key_of(l: &str) -> Option<(&str, usize)> {
        let body = l.trim_start();
        let (dash, body) = match body.strip_prefix("- ") {
            Some(rest) => (2, rest),
            None => (0, body),
        };
        let (key, _) = body.split_once(':')?;
        let key = key.trim();
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        ok.then_some((key, indent(l) + dash + 1))
    }
    let text = lines.get(at)?;
    match key_of(text) {
        Some((key, key_column)) if column > key_column => Some(key),
        _ => lines[..at]
            .iter()
            .rev()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .find(|l| indent(l) < indent(text))
            .and_then(|l| key_of(l))
            .map(|(key, _)| key),
    }
}

/// The parser's message as a sentence a rule author can act on: serde-saphyr speaks of
/// Rust types and parser events (`cannot deserialize null into string; use
/// Option<String>`, `expected mapping start`).
fn plain_message(message: &str, key: Option<&str>) -> String {
    let subject = key.map_or_else(|| "this value".to_string(), |k| format!("`{k}`"));
    if message.starts_with("cannot deserialize null") {
        return format!("{subject} has no value: write one after the colon, or remove the line");
    }
    if message.starts_with("expected string scalar") {
        return format!(
            "{subject} must be text here; quote it when it starts with [, {{, *, & or !"
        );
    }
    if message.starts_with("expected mapping") {
        return format!(
            "{subject} must be a mapping: indented `name: value` lines, or {{ name: value }}"
        );
    }
    if message.starts_with("expected sequence") {
        return format!("{subject} must be a list: `- item` lines, or [a, b]");
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("the required field {rest} is missing");
    }
    message.to_string()
}

/// The YAML files of a `_shared` folder on disk, in name order.
fn read_shared_dir(dir: &Path, diags: &mut Vec<Diagnostic>) -> Vec<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_yaml(p))
            .collect(),
        Err(e) => {
            diags.push(Diagnostic::new(
                dir,
                0,
                0,
                format!("cannot read folder: {e}"),
            ));
            Vec::new()
        }
    };
    files.sort();
    let mut out = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(t) => out.push((path, t)),
            Err(e) => diags.push(Diagnostic::new(&path, 0, 0, format!("cannot read: {e}"))),
        }
    }
    out
}

fn parse_shared(files: Vec<(PathBuf, String)>, diags: &mut Vec<Diagnostic>) -> Shared {
    let mut shared = Shared::default();
    for (path, text) in files {
        if let Some(d) = too_large(&path, &text) {
            diags.push(d);
            continue;
        }
        let cfg: SharedConfig = match parse_yaml(&text) {
            Ok(c) => c,
            Err(e) => {
                diags.push(yaml_error(&path, &text, &e, RULES_DOC));
                continue;
            }
        };
        for (name, items) in &cfg.lists {
            let consts: Result<Vec<Const>, String> = items
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Ok(Const::Str(Arc::from(s.as_str()))),
                    serde_json::Value::Number(n) if n.is_i64() => {
                        Ok(Const::Int(n.as_i64().unwrap_or(0)))
                    }
                    serde_json::Value::Number(n) => Ok(Const::Float(n.as_f64().unwrap_or(0.0))),
                    other => Err(format!(
                        "list `{name}`: items must be strings or numbers, found {other}"
                    )),
                })
                .collect();
            match consts {
                Ok(c) => {
                    shared.consts.insert(name.clone(), Const::List(c.into()));
                }
                Err(e) => diags.push(Diagnostic::new(&path, 0, 0, e)),
            }
        }
        shared.texts.add(&path, &text, &cfg.translations, diags);
        if let Some(z) = &cfg.time_zone {
            match Zone::parse(&z.value) {
                Ok(zone) => shared.time_zone = Some(zone),
                Err(e) => {
                    let (line, column) = diag::position_in_scalar(&text, z, 0);
                    diags.push(Diagnostic::new(&path, line, column, e).with_snippet(&text));
                }
            }
        }
        for (name, m) in &cfg.macros {
            match expr::parse(&m.value) {
                Ok((ast, info)) => {
                    shared.macros.insert(
                        name.clone(),
                        Arc::new(Macro {
                            source: m.value.clone(),
                            ast,
                            info,
                        }),
                    );
                }
                Err(errs) => {
                    for e in errs {
                        let (line, column) = diag::position_in_scalar(&text, m, e.offset);
                        diags.push(
                            Diagnostic::new(&path, line, column, e.message).with_snippet(&text),
                        );
                    }
                }
            }
        }
    }
    shared
}

/// Loads and compiles the pack of `source`. Returns the rules that compiled and every
/// diagnostic, across all files.
pub fn load_pack(source: &PackSource) -> (RuleSet, Vec<Diagnostic>) {
    match source {
        PackSource::Shipped => load_shipped(),
        PackSource::Paths(p) => load(p),
    }
}

/// The shipped `_shared` files (lists and macros), in name order.
fn shipped_shared_files() -> Vec<(PathBuf, String)> {
    let mut shared = Vec::new();
    if let Some(dir) = SHIPPED.get_dir("_shared") {
        for f in dir.files().filter(|f| is_yaml(f.path())) {
            let text = String::from_utf8_lossy(f.contents()).into_owned();
            shared.push((Path::new(SHIPPED_ROOT).join(f.path()), text));
        }
    }
    shared.sort_by(|a, b| a.0.cmp(&b.0));
    shared
}

/// Loads and compiles the pack shipped in the binary.
pub fn load_shipped() -> (RuleSet, Vec<Diagnostic>) {
    fn collect(dir: &Dir<'_>, out: &mut Vec<(PathBuf, String)>) {
        for f in dir.files() {
            if is_yaml(f.path()) {
                let text = String::from_utf8_lossy(f.contents()).into_owned();
                out.push((Path::new(SHIPPED_ROOT).join(f.path()), text));
            }
        }
        for d in dir.dirs() {
            if d.path().file_name().and_then(|n| n.to_str()) != Some("_shared") {
                collect(d, out);
            }
        }
    }
    let mut files = Vec::new();
    collect(&SHIPPED, &mut files);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut diags = Vec::new();
    let shared = parse_shared(shipped_shared_files(), &mut diags);
    compile_files(
        files.into_iter().map(Ok).collect(),
        shared,
        Origin::Shipped,
        diags,
    )
}

/// The `_shared` files of a pack on disk: the shipped lists and macros first, so that a
/// rule written anywhere can use them by name; the `_shared` folder beside the rules (or
/// above them) overrides them by name.
fn shared_files(paths: &[PathBuf], diags: &mut Vec<Diagnostic>) -> Vec<(PathBuf, String)> {
    let mut shared = shipped_shared_files();
    if let Some(dir) = paths.first().and_then(|p| shared_dir_for(p)) {
        shared.extend(read_shared_dir(&dir, diags));
    }
    shared
}

/// The texts in other languages of `source`'s `_shared` files, without compiling a rule:
/// what the dashboard names rules and figures with. Problems are `rules lint`'s to report.
pub fn load_texts(source: &PackSource) -> Texts {
    let mut diags = Vec::new();
    let files = match source {
        PackSource::Shipped => shipped_shared_files(),
        PackSource::Paths(paths) => shared_files(paths, &mut diags),
    };
    parse_shared(files, &mut diags).texts
}

/// Loads and compiles every rule under `paths` (files or folders). Returns the rules that
/// compiled and every diagnostic, across all files.
pub fn load(paths: &[PathBuf]) -> (RuleSet, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut found = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut found, &mut diags);
        } else if p.is_file() {
            found.push(p.clone());
        } else {
            diags.push(Diagnostic::new(p, 0, 0, "no such file or folder"));
        }
    }
    let shared = shared_files(paths, &mut diags);
    let shared = parse_shared(shared, &mut diags);
    let files = found
        .into_iter()
        .map(|path| match std::fs::read_to_string(&path) {
            Ok(text) => Ok((path, text)),
            Err(e) => Err(Diagnostic::new(&path, 0, 0, format!("cannot read: {e}"))),
        })
        .collect();
    compile_files(files, shared, Origin::File, diags)
}

/// Parses and compiles rule files (`(path, text)`, or why one could not be read).
fn compile_files(
    files: Vec<Result<(PathBuf, String), Diagnostic>>,
    shared: Shared,
    origin: Origin,
    mut diags: Vec<Diagnostic>,
) -> (RuleSet, Vec<Diagnostic>) {
    let mut rules = Vec::new();
    let mut sources = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        let (path, text) = match file {
            Ok(f) => f,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        if let Some(d) = too_large(&path, &text) {
            diags.push(d);
            continue;
        }
        let config: RuleConfig = match parse_yaml(&text) {
            Ok(c) => c,
            Err(e) => {
                diags.push(yaml_error(&path, &text, &e, RULES_DOC));
                continue;
            }
        };
        if let Some(first) = seen.get(&config.id.value) {
            diags.push(
                diag::at(
                    &path,
                    &text,
                    &config.id,
                    format!("duplicate rule id `{}`", config.id.value),
                )
                .with_help(Some(format!("first defined in {}", first.display()))),
            );
            continue;
        }
        seen.insert(config.id.value.clone(), path.clone());
        match compile_rule(&config, &path, &text, &shared, &BTreeMap::new()) {
            Ok(mut rule) => {
                rule.origin = origin;
                rules.push(rule)
            }
            Err(d) => diags.extend(d),
        }
        sources.push(RuleSource { path, text, config });
    }
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    (
        RuleSet {
            rules,
            sources,
            shared,
        },
        diags,
    )
}

/// Compiles `text` as if it were the rule file at `path` of the pack `set` (with the pack's
/// `_shared` lists and macros, so the version is the one a file with this text would get).
pub fn compile_text(set: &RuleSet, path: &Path, text: &str) -> Result<Rule, Vec<Diagnostic>> {
    compile_text_with(set, path, text, &BTreeMap::new())
}

/// `rule` compiled again with parameter `overrides` (a tuning sweep).
pub fn with_params(
    set: &RuleSet,
    rule: &Rule,
    overrides: &BTreeMap<String, serde_json::Value>,
) -> Result<Rule, Vec<Diagnostic>> {
    compile_text_with(set, &rule.path, &rule.text, overrides)
}

fn compile_text_with(
    set: &RuleSet,
    path: &Path,
    text: &str,
    overrides: &BTreeMap<String, serde_json::Value>,
) -> Result<Rule, Vec<Diagnostic>> {
    if let Some(d) = too_large(path, text) {
        return Err(vec![d]);
    }
    let config: RuleConfig =
        parse_yaml(text).map_err(|e| vec![yaml_error(path, text, &e, RULES_DOC)])?;
    compile_rule(&config, path, text, &set.shared, overrides)
}

/// A rule of the pack replaced by a text published from the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub rule_id: String,
    /// The version of the rule file.
    pub file_version: String,
    /// The version that runs instead (equal to `file_version` when the texts agree).
    pub version: String,
}

/// Replaces every rule of `set` that has a published text (`(rule id, text)`) by the rule
/// compiled from that text, in place of its file. A text whose id has no file in the pack
/// is ignored (the file was removed: the rule is retired); a text that no longer compiles
/// (say, a `_shared` macro changed) leaves the file's rule and is reported as diagnostics.
pub fn apply_published(
    set: &mut RuleSet,
    published: &[(String, String)],
) -> (Vec<Replaced>, Vec<Diagnostic>) {
    let mut replaced = Vec::new();
    let mut diags = Vec::new();
    for (id, text) in published {
        let Some(i) = set.rules.iter().position(|r| &r.id == id) else {
            continue;
        };
        let path = set.rules[i].path.clone();
        let label = PathBuf::from(format!("published:{id}"));
        match compile_text(set, &path, text) {
            Ok(mut rule) if &rule.id == id => {
                rule.origin = Origin::Published;
                replaced.push(Replaced {
                    rule_id: id.clone(),
                    file_version: set.rules[i].version.clone(),
                    version: rule.version.clone(),
                });
                set.rules[i] = rule;
                if let Some(src) = set.sources.iter_mut().find(|s| s.path == path)
                    && let Ok(config) = parse_yaml::<RuleConfig>(text)
                {
                    src.text = text.clone();
                    src.config = config;
                }
            }
            Ok(rule) => diags.push(Diagnostic::new(
                &label,
                0,
                0,
                format!("the published text defines rule {}, not {id}", rule.id),
            )),
            Err(d) => diags.extend(d.into_iter().map(|mut d| {
                d.message = format!("published version of {id}: {}", d.message);
                d
            })),
        }
    }
    (replaced, diags)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The diagnostics of compiling `text`, on a thread with a small stack.
    fn compile_on_small_stack(text: String) -> Vec<Diagnostic> {
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let (set, _) = load_shipped();
                compile_text(&set, Path::new("rules/x/TC-99-x.yaml"), &text)
                    .err()
                    .unwrap_or_default()
            })
            .unwrap()
            .join()
            .expect("parsing does not overflow the stack")
    }

    #[test]
    fn deeply_nested_rule_yaml_is_refused_within_its_budget() {
        for text in [
            format!("id: TC-99\ntags: {}", "[".repeat(100_000)),
            format!(
                "id: TC-99\ntags:\n{}",
                (0..400)
                    .map(|i| format!("{}- ", " ".repeat(i)))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        ] {
            let diags = compile_on_small_stack(text);
            assert_eq!(diags.len(), 1, "{diags:?}");
            assert!(diags[0].line > 0, "the error has a place: {diags:?}");
        }
    }

    #[test]
    fn yaml_errors_read_as_sentences_naming_the_key() {
        let cases = [
            ("id: TC-99\ntitle:\n", "`title` has no value"),
            ("id: TC-99\ntitle: [unclosed\n", "`title` must be text here"),
            (
                "id: TC-99\ntitle: x\ndetect: 3\n",
                "`detect` must be a mapping",
            ),
            ("id: TC-99\ntitle: x\ntags: 3\n", "`tags` must be a list"),
            (
                "id: TC-99\ntitle: x\ntags:\n  a: b\n",
                "`tags` must be a list",
            ),
            (
                "id: TC-99\ntitle: x\ndetect:\n  - kind: star\n",
                "`detect` must be a mapping",
            ),
        ];
        for (text, expected) in cases {
            let diags = compile_on_small_stack(text.to_string());
            let message = &diags[0].message;
            assert!(message.starts_with(expected), "{text:?}: {message}");
            assert!(!message.contains("Option<"), "{message}");
        }
    }

    #[test]
    fn a_rule_file_over_the_size_limit_is_refused() {
        let text = format!(
            "id: TC-99\ndescription: {}\n",
            "x".repeat(MAX_RULE_FILE_BYTES)
        );
        let diags = compile_on_small_stack(text);
        assert!(diags[0].message.contains("at most 262144"), "{diags:?}");
    }

    #[test]
    fn history_aggregates_are_refused_where_they_cannot_run() {
        let rule = |kind: &str, agg: &str| {
            format!(
                "id: TC-99\ntitle: t\nstatus: test\nseverity: low\ndetect:\n  kind: {kind}\n  \
                 window: {{ length: 7d }}\n  aggregates:\n    n: {agg}\n  condition: 'n >= 1'\n\
                 summary: s\n"
            )
        };
        let cases = [
            (
                "relation\n  group_by: payee",
                "{ fn: novel, over: edges }",
                "only kind `star` keeps",
            ),
            ("star", "{ fn: recurring, over: out }", "needs `period`"),
            (
                "star",
                "{ fn: count, over: out, history: 30d }",
                "`history` is read only by `novel`",
            ),
            (
                "star",
                "{ fn: novel, over: out, period: 30d }",
                "`period` is read only by `recurring`",
            ),
        ];
        for (kind, agg, want) in cases {
            let diags = compile_on_small_stack(rule(kind, agg));
            assert!(
                diags.iter().any(|d| d.message.contains(want)),
                "{kind} {agg}: {diags:?}"
            );
        }
        let ok = compile_on_small_stack(rule("star", "{ fn: novel, over: out, history: 30d }"));
        assert!(ok.is_empty(), "{ok:?}");
    }

    /// Versions of the pack in `dir` after `edit` of its `_shared/lists.yaml`, by rule id.
    fn versions_after(dir: &Path, edit: impl Fn(&str) -> String) -> BTreeMap<String, String> {
        let lists = dir.join("_shared/lists.yaml");
        let text = std::fs::read_to_string(&lists).unwrap();
        std::fs::write(&lists, edit(&text)).unwrap();
        let (set, diags) = load(&[dir.to_path_buf()]);
        assert!(diags.is_empty(), "{diags:?}");
        std::fs::write(&lists, text).unwrap();
        set.rules.into_iter().map(|r| (r.id, r.version)).collect()
    }

    #[test]
    fn a_rule_outside_the_pack_uses_the_shipped_macros_and_its_folder_overrides_them() {
        let dir = tempfile::tempdir().unwrap();
        let rule = "id: X-1\ntitle: t\nstatus: test\nseverity: low\ndetect:\n  kind: star\n  \
                    subject: '!is_institution'\n  window: { length: 1d }\n  aggregates:\n    \
                    n: { fn: count, over: in }\n  condition: 'n >= 1 && size(institution_roles) == 2'\n\
                    summary: x\n";
        std::fs::write(dir.path().join("X-1-t.yaml"), rule).unwrap();
        let (set, diags) = load(&[dir.path().to_path_buf()]);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(set.rules.len(), 1);
        let shipped = set.shared.macros["is_institution"].source.clone();
        std::fs::create_dir(dir.path().join("_shared")).unwrap();
        std::fs::write(
            dir.path().join("_shared/mine.yaml"),
            "macros:\n  is_institution: 'hub.licensed'\n",
        )
        .unwrap();
        let (set, diags) = load(&[dir.path().join("X-1-t.yaml")]);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(set.shared.macros["is_institution"].source, "hub.licensed");
        assert_ne!(shipped, "hub.licensed");
        assert!(
            set.shared.consts.contains_key("institution_roles"),
            "shipped lists stay"
        );
    }

    #[test]
    fn an_unrelated_shared_macro_leaves_rule_versions_alone() {
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let p = e.unwrap().path();
                let dest = to.join(p.file_name().unwrap());
                if p.is_dir() {
                    copy(&p, &dest);
                } else {
                    std::fs::copy(&p, &dest).unwrap();
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        copy(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"),
            dir.path(),
        );
        let before = versions_after(dir.path(), str::to_string);
        assert!(before.len() > 10);
        let unrelated = versions_after(dir.path(), |t| {
            format!("{t}  never_used_here: 'tx.amount > 1.0'\n")
        });
        assert_eq!(before, unrelated, "an added macro that no rule names");
        let edited = versions_after(dir.path(), |t| {
            t.replace(
                "is_institution: 'hub.licensed ||",
                "is_institution: 'hub.licensed  ||",
            )
        });
        let changed: Vec<&String> = before
            .keys()
            .filter(|id| before[*id] != edited[*id])
            .collect();
        assert!(changed.iter().any(|id| *id == "ML-02"), "{changed:?}");
        assert!(
            changed.len() < before.len(),
            "only the rules naming it: {changed:?}"
        );
    }
}
