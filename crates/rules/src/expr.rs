//! Rule expressions: CEL parsed by the `cel` crate, then type-checked against the
//! variables a detector binds and compiled into a small typed tree that evaluates without
//! allocating. The `cel` interpreter is not used for evaluation: it works on dynamic
//! values in maps (an allocation and a map lookup per variable per row), while detectors
//! evaluate filters once per edge of graphs with millions of edges, and rule authors
//! need type errors at lint time rather than at run time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use clearwatch_model::lists::{EntryKind, ListValues, valid_list_name};

use cel::common::ast::{Expr, IdedExpr, LiteralValue, SourceInfo, operators};

/// The static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    Float,
    Str,
    List(Elem),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    Int,
    Float,
    Str,
}

impl Ty {
    fn is_numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Float => f.write_str("double"),
            Ty::Str => f.write_str("string"),
            Ty::List(Elem::Int) => f.write_str("list(int)"),
            Ty::List(Elem::Float) => f.write_str("list(double)"),
            Ty::List(Elem::Str) => f.write_str("list(string)"),
        }
    }
}

/// A constant value (parameters, shared lists, literals).
#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    List(Arc<[Const]>),
}

impl Const {
    pub fn ty(&self) -> Ty {
        match self {
            Const::Bool(_) => Ty::Bool,
            Const::Int(_) => Ty::Int,
            Const::Float(_) => Ty::Float,
            Const::Str(_) => Ty::Str,
            Const::List(items) => Ty::List(match items.first() {
                Some(Const::Int(_)) => Elem::Int,
                Some(Const::Float(_)) => Elem::Float,
                _ => Elem::Str,
            }),
        }
    }

    fn val(&self) -> Val<'_> {
        match self {
            Const::Bool(b) => Val::Bool(*b),
            Const::Int(i) => Val::Int(*i),
            Const::Float(x) => Val::Float(*x),
            Const::Str(s) => Val::Str(s),
            Const::List(l) => Val::List(l),
        }
    }
}

/// A value during evaluation; strings borrow from the environment or the program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val<'a> {
    /// The result of an error (division by zero, a missing value): comparisons with it
    /// are false.
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    List(&'a [Const]),
}

impl Val<'_> {
    fn num(self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(i as f64),
            Val::Float(x) => Some(x),
            _ => None,
        }
    }

    pub fn truthy(self) -> bool {
        matches!(self, Val::Bool(true))
    }

    pub fn as_f64(self) -> f64 {
        self.num().unwrap_or(f64::NAN)
    }
}

/// Where a detector's variables come from at evaluation time.
pub trait Env {
    fn get(&self, var: VarId) -> Val<'_>;
    /// The position in its vocabulary of a variable declared with [`Schema::var_enum`];
    /// -1 when absent.
    fn code(&self, _var: VarId) -> i64 {
        -1
    }
}

/// Index of a variable in a [`Schema`].
pub type VarId = u16;

/// The watch and allow lists that `in_list` reads, filled from the store once a pack is
/// loaded for a scan (empty until then, and for scans of files).
#[derive(Debug, Default)]
pub struct ListTable {
    values: OnceLock<ListValues>,
    /// The list names `in_list` calls read, noted as they compile.
    named: Mutex<BTreeSet<String>>,
}

impl ListTable {
    /// Sets the entries in force; a table is set once, for the scan it serves.
    pub fn set(&self, values: ListValues) {
        let _ = self.values.set(values);
    }

    /// The list names that `in_list` calls compiled since the last call read, sorted; the
    /// noted names are cleared. A rule's compilation takes them for that rule
    /// ([`crate::Rule::lists`]), one rule at a time.
    pub fn take_noted(&self) -> Vec<String> {
        let mut named = self.named.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *named).into_iter().collect()
    }

    fn note(&self, name: &str) {
        self.named
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string());
    }

    fn contains(&self, list: &str, kind: EntryKind, value: &str) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.values
            .get()
            .is_some_and(|v| v.contains(list, kind, value, now))
    }
}

/// The variables an expression may use, by dotted name, with their types.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    vars: BTreeMap<String, (VarId, Ty)>,
    vocab: BTreeMap<VarId, &'static [&'static str]>,
    consts: BTreeMap<String, Const>,
    macros: BTreeMap<String, Arc<Macro>>,
    lists: Arc<ListTable>,
}

/// A named expression from `rules/_shared/`, expanded where its name is used.
#[derive(Debug)]
pub struct Macro {
    pub source: String,
    pub ast: IdedExpr,
    pub info: SourceInfo,
}

impl Schema {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn var(&mut self, name: &str, id: VarId, ty: Ty) -> &mut Self {
        self.vars.insert(name.to_string(), (id, ty));
        self
    }

    /// A string variable with a closed vocabulary: comparisons with constants compile to
    /// integer tests, and a constant outside the vocabulary is a compile error.
    pub fn var_enum(
        &mut self,
        name: &str,
        id: VarId,
        values: &'static [&'static str],
    ) -> &mut Self {
        self.vars.insert(name.to_string(), (id, Ty::Str));
        self.vocab.insert(id, values);
        self
    }

    /// The dotted name of a variable.
    pub fn name_of(&self, id: VarId) -> Option<&str> {
        self.vars
            .iter()
            .find(|(_, (v, _))| *v == id)
            .map(|(n, _)| n.as_str())
    }

    pub fn constant(&mut self, name: &str, value: Const) -> &mut Self {
        self.consts.insert(name.to_string(), value);
        self
    }

    /// The lists `in_list` reads.
    pub fn lists(&mut self, lists: Arc<ListTable>) -> &mut Self {
        self.lists = lists;
        self
    }

    pub fn add_macro(&mut self, name: &str, m: Arc<Macro>) -> &mut Self {
        self.macros.insert(name.to_string(), m);
        self
    }

    /// The name of variable `id`, for messages.
    pub fn var_name(&self, id: VarId) -> Option<&str> {
        self.vars
            .iter()
            .find(|(_, (v, _))| *v == id)
            .map(|(name, _)| name.as_str())
    }

    pub fn var_names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// Names that may start a valid path, for "did you mean" lists.
    fn valid_names(&self) -> String {
        let mut names: Vec<&str> = self
            .vars
            .keys()
            .chain(self.consts.keys())
            .chain(self.macros.keys())
            .map(String::as_str)
            .collect();
        names.sort();
        names.join(", ")
    }
}

/// A compile error at a character offset range of the expression text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// Character offset in the expression where the problem starts.
    pub offset: usize,
    pub message: String,
    pub help: Option<String>,
    /// Set when the error is inside a shared macro rather than the rule's own text.
    pub in_macro: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Abs,
    Min,
    Max,
    Size,
    Double,
    Int,
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug, Clone)]
enum Node {
    Const(Const),
    Var(VarId),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(ArOp, Box<Node>, Box<Node>),
    In(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
    /// `var == "value"` for a vocabulary variable: compares codes.
    EnumEq(VarId, i64),
    /// `var in [...]` for a vocabulary variable: a bit per code.
    EnumIn(VarId, u64),
    /// `in_list("name", value)`: whether the value is an entry in force of the list, as
    /// a holder id when the value is a `.holder` field, else as an account id.
    InList(Arc<ListTable>, Arc<str>, EntryKind, Box<Node>),
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Program {
    root: Node,
    ty: Ty,
    source: String,
}

impl Program {
    pub fn ty(&self) -> Ty {
        self.ty
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn eval<'a>(&'a self, env: &'a dyn Env) -> Val<'a> {
        eval(&self.root, env)
    }

    /// Evaluates a boolean expression; errors count as false.
    pub fn test(&self, env: &dyn Env) -> bool {
        self.eval(env).truthy()
    }

    /// The codes of vocabulary variable `v` under which the expression can hold, a bit
    /// per code, read from the `v == "…"` and `v in […]` tests that every way of being
    /// true passes (both sides of `&&`, each side of `||`); `None` when the expression
    /// implies nothing about `v`. Under any other code it tests false, so a detector may
    /// skip such an edge without binding or evaluating anything.
    pub fn required_codes(&self, v: VarId) -> Option<u64> {
        required_codes(&self.root, v)
    }

    /// The inequalities (`!=`, not under a negation) that hold when a text variable for
    /// which `optional` is true is absent (`""`), with no `var != ""` guard beside them in
    /// the same conjunction: a missing value would pass for a difference. Each finding is
    /// the unguarded variable and what it is compared with (another variable or `None`
    /// for a literal).
    pub fn unguarded_inequalities(
        &self,
        optional: &dyn Fn(VarId) -> bool,
    ) -> Vec<(VarId, Option<VarId>)> {
        let mut out = Vec::new();
        unguarded(&self.root, true, &mut Vec::new(), optional, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The `variable OP constant` tests of the top-level conjunction (`double(v)` counts
    /// as `v`), turned so that the variable is on the left: what each figure is held
    /// against. Tests between two variables, or under `||` or `!`, are not listed.
    pub fn thresholds(&self) -> Vec<(VarId, &'static str, f64)> {
        let mut out = Vec::new();
        threshold_tests(&self.root, &mut out);
        out
    }

    /// Whether the expression reads a variable for which `pred` holds.
    pub fn reads(&self, pred: &dyn Fn(VarId) -> bool) -> bool {
        reads_var(&self.root, pred)
    }

    /// The constant value, when the expression uses no variables.
    pub fn constant(&self) -> Option<Const> {
        match &self.root {
            Node::Const(c) => Some(c.clone()),
            _ => None,
        }
    }
}

fn threshold_tests(node: &Node, out: &mut Vec<(VarId, &'static str, f64)>) {
    let var = |n: &Node| match n {
        Node::Var(v) => Some(*v),
        Node::Call(Func::Double, args) => match args.as_slice() {
            [Node::Var(v)] => Some(*v),
            _ => None,
        },
        _ => None,
    };
    // Constant arithmetic is not folded inside a comparison (`3.0 * params.x`).
    let number = |n: &Node| {
        if has_vars(n) {
            return None;
        }
        match eval(n, &NoVars) {
            Val::Int(i) => Some(i as f64),
            Val::Float(x) => Some(x),
            _ => None,
        }
    };
    match node {
        Node::And(a, b) => {
            threshold_tests(a, out);
            threshold_tests(b, out);
        }
        Node::Cmp(op, a, b) => {
            let turned = match op {
                CmpOp::Lt => CmpOp::Gt,
                CmpOp::Le => CmpOp::Ge,
                CmpOp::Gt => CmpOp::Lt,
                CmpOp::Ge => CmpOp::Le,
                other => *other,
            };
            let test = match (var(a), number(b), number(a), var(b)) {
                (Some(v), Some(x), _, _) => Some((v, *op, x)),
                (_, _, Some(x), Some(v)) => Some((v, turned, x)),
                _ => None,
            };
            if let Some((v, op, x)) = test {
                let symbol = match op {
                    CmpOp::Eq => "=",
                    CmpOp::Ne => "≠",
                    CmpOp::Lt => "<",
                    CmpOp::Le => "≤",
                    CmpOp::Gt => ">",
                    CmpOp::Ge => "≥",
                };
                out.push((v, symbol, x));
            }
        }
        _ => {}
    }
}

/// The variable `v` guarded as present: `v != ""` or `"" != v`.
fn presence_guard(node: &Node) -> Option<VarId> {
    let Node::Cmp(CmpOp::Ne, a, b) = node else {
        return None;
    };
    match (a.as_ref(), b.as_ref()) {
        (Node::Var(v), Node::Const(Const::Str(s))) | (Node::Const(Const::Str(s)), Node::Var(v))
            if s.is_empty() =>
        {
            Some(*v)
        }
        _ => None,
    }
}

fn conjuncts<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
    match node {
        Node::And(l, r) => {
            conjuncts(l, out);
            conjuncts(r, out);
        }
        other => out.push(other),
    }
}

/// The walk behind [`Program::unguarded_inequalities`]: `positive` is false under an odd
/// number of negations; `guards` are the variables known present on this path.
fn unguarded(
    node: &Node,
    positive: bool,
    guards: &mut Vec<VarId>,
    optional: &dyn Fn(VarId) -> bool,
    out: &mut Vec<(VarId, Option<VarId>)>,
) {
    match node {
        Node::And(..) if positive => {
            let mut parts = Vec::new();
            conjuncts(node, &mut parts);
            let before = guards.len();
            guards.extend(parts.iter().filter_map(|p| presence_guard(p)));
            for p in parts {
                unguarded(p, positive, guards, optional, out);
            }
            guards.truncate(before);
        }
        // Only a difference asserted outright: a negated equality is an exclusion (`not
        // the same holder`), which an absent field leaves in place rather than proves.
        Node::Cmp(CmpOp::Ne, a, b) if positive => {
            if presence_guard(node).is_some() {
                return;
            }
            let var = |n: &Node| match n {
                Node::Var(v) if optional(*v) => Some(*v),
                _ => None,
            };
            let other = |n: &Node| match n {
                Node::Var(v) => Some(Some(*v)),
                Node::Const(Const::Str(s)) if !s.is_empty() => Some(None),
                _ => None,
            };
            for (x, y) in [(a, b), (b, a)] {
                if let (Some(v), Some(with)) = (var(x), other(y))
                    && !guards.contains(&v)
                {
                    out.push((v, with));
                }
            }
        }
        Node::Not(x) => unguarded(x, !positive, guards, optional, out),
        Node::And(l, r) | Node::Or(l, r) => {
            unguarded(l, positive, guards, optional, out);
            unguarded(r, positive, guards, optional, out);
        }
        Node::Cond(c, t, e) => {
            for n in [c, t, e] {
                unguarded(n, positive, guards, optional, out);
            }
        }
        _ => {}
    }
}

/// The largest expression text accepted.
pub const MAX_EXPR_BYTES: usize = 16 * 1024;
/// The most operators (`&&`, `+`, `.`, `!`, `in`, …) an expression may hold: the parser
/// and the compiler recurse once per operator of a chain like `a + b + c`, so without a
/// bound one expression could overflow a thread's stack. The longest shipped condition
/// has 26.
pub const MAX_EXPR_OPERATORS: usize = 256;
/// The deepest nesting of brackets, parentheses and braces accepted.
pub const MAX_EXPR_NESTING: usize = 32;
/// The deepest compiled tree accepted, shared macros expanded.
const MAX_TREE_DEPTH: usize = 512;

/// Refuses an expression too large or too deep to parse safely, before the parser sees
/// it: a cheap scan of its tokens, skipping string literals.
fn check_bounds(source: &str) -> Result<(), ExprError> {
    let refuse = |offset: usize, message: String| ExprError {
        offset,
        message,
        help: Some("split the expression into shared macros or aggregates".into()),
        in_macro: None,
    };
    if source.len() > MAX_EXPR_BYTES {
        return Err(refuse(
            0,
            format!(
                "expression is {} bytes long; the limit is {MAX_EXPR_BYTES}",
                source.len()
            ),
        ));
    }
    let chars: Vec<char> = source.chars().collect();
    let (mut i, mut nesting, mut operators, mut conditionals) = (0, 0usize, 0usize, 0usize);
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => {
                // A string literal (raw if an `r` prefix stands before it): skip it.
                let raw = i > 0 && matches!(chars[i - 1], 'r' | 'R');
                let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
                let quote_len = if triple { 3 } else { 1 };
                i += quote_len;
                while i < chars.len() {
                    if !raw && chars[i] == '\\' {
                        i += 2;
                        continue;
                    }
                    if chars[i] == c
                        && (!triple
                            || (chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c)))
                    {
                        i += quote_len;
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            '(' | '[' | '{' => {
                nesting += 1;
                if nesting > MAX_EXPR_NESTING {
                    return Err(refuse(
                        i,
                        format!("expression nests deeper than {MAX_EXPR_NESTING} levels"),
                    ));
                }
            }
            ')' | ']' | '}' => nesting = nesting.saturating_sub(1),
            '&' | '|' | '=' if chars.get(i + 1) == Some(&c) => {
                operators += 1;
                i += 1;
            }
            '!' | '<' | '>' if chars.get(i + 1) == Some(&'=') => {
                operators += 1;
                i += 1;
            }
            '?' => {
                // `a ? b : c ? d : …` nests one level per `?` in the parser.
                operators += 1;
                conditionals += 1;
                if conditionals > MAX_EXPR_NESTING {
                    return Err(refuse(
                        i,
                        format!("expression has more than {MAX_EXPR_NESTING} conditionals (`?`)"),
                    ));
                }
            }
            '+' | '-' | '*' | '/' | '%' | '!' | '<' | '>' => operators += 1,
            '.' => {
                let digit = |j: Option<&char>| j.is_some_and(char::is_ascii_digit);
                if !(i > 0 && digit(chars.get(i - 1)) && digit(chars.get(i + 1))) {
                    operators += 1;
                }
            }
            'i' if chars.get(i + 1) == Some(&'n')
                && !(i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
                && !chars
                    .get(i + 2)
                    .is_some_and(|n| n.is_alphanumeric() || *n == '_') =>
            {
                operators += 1;
                i += 1;
            }
            _ => {}
        }
        if operators > MAX_EXPR_OPERATORS {
            return Err(refuse(
                i,
                format!("expression has more than {MAX_EXPR_OPERATORS} operators"),
            ));
        }
        i += 1;
    }
    Ok(())
}

/// Parses CEL text, reporting every syntax error.
pub fn parse(source: &str) -> Result<(IdedExpr, SourceInfo), Vec<ExprError>> {
    check_bounds(source).map_err(|e| vec![e])?;
    cel::parser::Parser::new()
        .parse_with_source_info(source)
        .map_err(|errs| {
            errs.errors
                .into_iter()
                .map(|e| ExprError {
                    offset: offset_of(source, e.pos.0, e.pos.1),
                    message: format!("syntax error: {}", parser_message(&e.msg)),
                    help: None,
                    in_macro: None,
                })
                .collect()
        })
}

/// The parser's message as a sentence: without its `Syntax error:` prefix, and with the
/// text of an error it wraps (`OtherError(ParseError { … msg: "…" … })`) instead of a
/// debug dump.
fn parser_message(msg: &str) -> &str {
    let msg = msg.strip_prefix("Syntax error: ").unwrap_or(msg);
    if let Some(rest) = msg.split_once("msg: \"").map(|(_, r)| r)
        && let Some((inner, _)) = rest.split_once('"')
    {
        return inner;
    }
    msg
}

/// Character offset of a 1-based line and 0-based column.
fn offset_of(source: &str, line: isize, col: isize) -> usize {
    let mut offset = 0;
    for (i, l) in source.split('\n').enumerate() {
        if i as isize + 1 == line {
            return offset + col.max(0) as usize;
        }
        offset += l.chars().count() + 1;
    }
    offset
}

/// Parses and compiles `source` against `schema`, expecting a result of type `want`.
pub fn compile(source: &str, schema: &Schema, want: Ty) -> Result<Program, Vec<ExprError>> {
    let (ast, info) = parse(source)?;
    let mut c = Compiler {
        schema,
        info: &info,
        errors: Vec::new(),
        macro_name: None,
        depth: 0,
        nesting: 0,
    };
    let compiled = c.node(&ast);
    if let Some((node, ty)) = compiled {
        let ok = ty == want || (want == Ty::Float && ty == Ty::Int);
        if !ok && c.errors.is_empty() {
            c.errors.push(ExprError {
                offset: 0,
                message: format!("expression has type {ty}, expected {want}"),
                help: None,
                in_macro: None,
            });
        }
        if c.errors.is_empty() {
            return Ok(Program {
                root: fold(node),
                ty,
                source: source.to_string(),
            });
        }
    }
    Err(c.errors)
}

struct Compiler<'s> {
    schema: &'s Schema,
    info: &'s SourceInfo,
    errors: Vec<ExprError>,
    macro_name: Option<String>,
    /// Shared macros being expanded around this one.
    depth: usize,
    /// Tree levels above the node being compiled, macros included.
    nesting: usize,
}

fn path_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Ident(n) => Some(n.clone()),
        Expr::Select(s) if !s.test => Some(format!("{}.{}", path_of(&s.operand.expr)?, s.field)),
        _ => None,
    }
}

impl Compiler<'_> {
    fn error(&mut self, e: &IdedExpr, message: String, help: Option<String>) {
        // A selection `a.b.c` is reported where its root name starts.
        let mut at = e;
        while let Expr::Select(s) = &at.expr {
            at = &s.operand;
        }
        let offset = self.info.offset_for(at.id).map_or(0, |(s, _)| s as usize);
        self.errors.push(ExprError {
            offset,
            message,
            help,
            in_macro: self.macro_name.clone(),
        });
    }

    /// `Some(result)` when one side is a vocabulary variable and the other a constant.
    fn enum_eq(&mut self, e: &IdedExpr, l: &Node, r: &Node) -> Option<Option<Node>> {
        let (v, s) = match (l, r) {
            (Node::Var(v), Node::Const(Const::Str(s)))
            | (Node::Const(Const::Str(s)), Node::Var(v)) => (v, s),
            _ => return None,
        };
        let values = self.schema.vocab.get(v)?;
        Some(match values.iter().position(|x| *x == s.as_ref()) {
            Some(i) => Some(Node::EnumEq(*v, i as i64)),
            None => {
                self.unknown_value(e, s, values);
                None
            }
        })
    }

    fn unknown_value(&mut self, e: &IdedExpr, value: &str, values: &[&str]) {
        let shown: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        self.error(
            e,
            format!("{value:?} is not a possible value here"),
            Some(format!("valid values: {}", shown.join(", "))),
        );
    }

    fn node(&mut self, e: &IdedExpr) -> Option<(Node, Ty)> {
        if self.nesting >= MAX_TREE_DEPTH {
            self.error(
                e,
                format!(
                    "expression nests deeper than {MAX_TREE_DEPTH} levels with its macros expanded"
                ),
                None,
            );
            return None;
        }
        self.nesting += 1;
        let out = self.node_inner(e);
        self.nesting -= 1;
        out
    }

    fn node_inner(&mut self, e: &IdedExpr) -> Option<(Node, Ty)> {
        match &e.expr {
            Expr::Literal(lit) => {
                let c = match lit {
                    LiteralValue::Boolean(b) => Const::Bool(*b.inner()),
                    LiteralValue::Int(i) => Const::Int(*i.inner()),
                    LiteralValue::UInt(u) => Const::Int(*u.inner() as i64),
                    LiteralValue::Double(d) => Const::Float(*d.inner()),
                    LiteralValue::String(s) => Const::Str(Arc::from(s.inner())),
                    LiteralValue::Null | LiteralValue::Bytes(_) => {
                        self.error(e, "null and bytes literals are not supported".into(), None);
                        return None;
                    }
                };
                let ty = c.ty();
                Some((Node::Const(c), ty))
            }
            Expr::Ident(_) | Expr::Select(_) => self.path(e),
            Expr::List(list) => {
                let mut items = Vec::new();
                for el in &list.elements {
                    let (n, _) = self.node(el)?;
                    match fold(n) {
                        Node::Const(c) if !matches!(c, Const::List(_) | Const::Bool(_)) => {
                            items.push(c)
                        }
                        _ => {
                            self.error(
                                el,
                                "list elements must be string or number constants".into(),
                                None,
                            );
                            return None;
                        }
                    }
                }
                let first = items.first().map(Const::ty);
                if items.iter().any(|c| Some(c.ty()) != first) {
                    self.error(e, "list elements must all have one type".into(), None);
                    return None;
                }
                let c = Const::List(items.into());
                let ty = c.ty();
                Some((Node::Const(c), ty))
            }
            Expr::Call(call) => self.call(e, call),
            Expr::Comprehension(_) | Expr::Map(_) | Expr::Struct(_) => {
                self.error(
                    e,
                    "comprehensions, maps and messages are not supported in rule expressions"
                        .into(),
                    Some("aggregates over transactions are declared under `aggregates`".into()),
                );
                None
            }
            Expr::Unspecified => {
                self.error(e, "empty expression".into(), None);
                None
            }
        }
    }

    fn path(&mut self, e: &IdedExpr) -> Option<(Node, Ty)> {
        let Some(path) = path_of(&e.expr) else {
            self.error(e, "unsupported field selection".into(), None);
            return None;
        };
        if let Some(&(id, ty)) = self.schema.vars.get(&path) {
            return Some((Node::Var(id), ty));
        }
        if let Some(c) = self.schema.consts.get(&path) {
            return Some((Node::Const(c.clone()), c.ty()));
        }
        if let Some(m) = self.schema.macros.get(&path).cloned() {
            if self.depth > 8 {
                self.error(
                    e,
                    format!("macro {path} expands too deeply (recursive?)"),
                    None,
                );
                return None;
            }
            let mut inner = Compiler {
                schema: self.schema,
                info: &m.info,
                errors: Vec::new(),
                macro_name: Some(path.clone()),
                depth: self.depth + 1,
                nesting: self.nesting,
            };
            let out = inner.node(&m.ast);
            self.errors.extend(inner.errors);
            return out;
        }
        let root = path.split('.').next().unwrap_or_default();
        let same_root: Vec<&str> = self
            .schema
            .var_names()
            .filter(|n| n.split('.').next() == Some(root))
            .collect();
        let help = if same_root.is_empty() {
            format!("valid names: {}", self.schema.valid_names())
        } else {
            format!("valid fields: {}", same_root.join(", "))
        };
        self.error(e, format!("unknown variable `{path}`"), Some(help));
        None
    }

    fn call(&mut self, e: &IdedExpr, call: &cel::common::ast::CallExpr) -> Option<(Node, Ty)> {
        let name = call.func_name.as_str();
        let mut args = Vec::new();
        if let Some(t) = &call.target {
            args.push(t.as_ref());
        }
        args.extend(call.args.iter());
        let mut compiled = Vec::new();
        let mut failed = false;
        for a in &args {
            match self.node(a) {
                Some(x) => compiled.push(x),
                None => failed = true,
            }
        }
        if failed {
            return None;
        }
        let tys: Vec<Ty> = compiled.iter().map(|(_, t)| *t).collect();
        let mut nodes: Vec<Node> = compiled.into_iter().map(|(n, _)| n).collect();
        let mismatch = |c: &mut Self, what: &str| {
            let shown: Vec<String> = tys.iter().map(ToString::to_string).collect();
            c.error(
                e,
                format!("type mismatch: {what} cannot take ({})", shown.join(", ")),
                None,
            );
            None
        };
        let b = |n: Node| Box::new(n);
        match name {
            operators::LOGICAL_AND | operators::LOGICAL_OR => {
                if tys != [Ty::Bool, Ty::Bool] {
                    return mismatch(
                        self,
                        if name == operators::LOGICAL_AND {
                            "&&"
                        } else {
                            "||"
                        },
                    );
                }
                let r = nodes.pop()?;
                let l = nodes.pop()?;
                Some((
                    if name == operators::LOGICAL_AND {
                        Node::And(b(l), b(r))
                    } else {
                        Node::Or(b(l), b(r))
                    },
                    Ty::Bool,
                ))
            }
            operators::LOGICAL_NOT => {
                if tys != [Ty::Bool] {
                    return mismatch(self, "!");
                }
                Some((Node::Not(b(nodes.pop()?)), Ty::Bool))
            }
            operators::NEGATE => {
                if tys.len() != 1 || !tys[0].is_numeric() {
                    return mismatch(self, "unary -");
                }
                Some((Node::Neg(b(nodes.pop()?)), tys[0]))
            }
            operators::EQUALS
            | operators::NOT_EQUALS
            | operators::LESS
            | operators::LESS_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS => {
                let op = match name {
                    operators::EQUALS => CmpOp::Eq,
                    operators::NOT_EQUALS => CmpOp::Ne,
                    operators::LESS => CmpOp::Lt,
                    operators::LESS_EQUALS => CmpOp::Le,
                    operators::GREATER => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                let comparable = (tys[0].is_numeric() && tys[1].is_numeric())
                    || (tys[0] == tys[1]
                        && (tys[0] == Ty::Str
                            || (tys[0] == Ty::Bool && matches!(op, CmpOp::Eq | CmpOp::Ne))));
                if !comparable {
                    return mismatch(self, "comparison");
                }
                let r = nodes.pop()?;
                let l = nodes.pop()?;
                if matches!(op, CmpOp::Eq | CmpOp::Ne)
                    && let Some(n) = self.enum_eq(e, &l, &r)
                {
                    let n = n?;
                    return Some((if op == CmpOp::Ne { Node::Not(b(n)) } else { n }, Ty::Bool));
                }
                Some((Node::Cmp(op, b(l), b(r)), Ty::Bool))
            }
            operators::ADD
            | operators::SUBSTRACT
            | operators::MULTIPLY
            | operators::DIVIDE
            | operators::MODULO => {
                if !(tys[0].is_numeric() && tys[1].is_numeric()) {
                    return mismatch(self, "arithmetic");
                }
                let op = match name {
                    operators::ADD => ArOp::Add,
                    operators::SUBSTRACT => ArOp::Sub,
                    operators::MULTIPLY => ArOp::Mul,
                    operators::DIVIDE => ArOp::Div,
                    _ => ArOp::Mod,
                };
                let ty = if tys[0] == Ty::Int && tys[1] == Ty::Int {
                    Ty::Int
                } else {
                    Ty::Float
                };
                let r = nodes.pop()?;
                let l = nodes.pop()?;
                Some((Node::Arith(op, b(l), b(r)), ty))
            }
            operators::IN => {
                let ok = match (tys[0], tys[1]) {
                    (Ty::Str, Ty::List(Elem::Str)) => true,
                    (t, Ty::List(Elem::Int | Elem::Float)) => t.is_numeric(),
                    _ => false,
                };
                if !ok {
                    return mismatch(self, "in");
                }
                let r = nodes.pop()?;
                let l = nodes.pop()?;
                if let (Node::Var(v), Node::Const(Const::List(items))) = (&l, &r)
                    && let Some(values) = self.schema.vocab.get(v)
                {
                    let mut mask = 0u64;
                    for item in items.iter() {
                        let Const::Str(s) = item else { continue };
                        match values.iter().position(|x| *x == s.as_ref()) {
                            Some(i) => mask |= 1 << i,
                            None => {
                                self.unknown_value(e, s, values);
                                return None;
                            }
                        }
                    }
                    return Some((Node::EnumIn(*v, mask), Ty::Bool));
                }
                Some((Node::In(b(l), b(r)), Ty::Bool))
            }
            operators::CONDITIONAL => {
                let same = tys[1] == tys[2] || (tys[1].is_numeric() && tys[2].is_numeric());
                if tys[0] != Ty::Bool || !same {
                    return mismatch(self, "? :");
                }
                let ty = if tys[1] == tys[2] { tys[1] } else { Ty::Float };
                let f = nodes.pop()?;
                let t = nodes.pop()?;
                let c = nodes.pop()?;
                Some((Node::Cond(b(c), b(t), b(f)), ty))
            }
            "abs" | "double" | "int" if tys.len() == 1 && tys[0].is_numeric() => {
                let (f, ty) = match name {
                    "abs" => (Func::Abs, tys[0]),
                    "double" => (Func::Double, Ty::Float),
                    _ => (Func::Int, Ty::Int),
                };
                Some((Node::Call(f, nodes), ty))
            }
            "min" | "max" if tys.len() == 2 && tys.iter().all(|t| t.is_numeric()) => {
                let ty = if tys == [Ty::Int, Ty::Int] {
                    Ty::Int
                } else {
                    Ty::Float
                };
                let f = if name == "min" { Func::Min } else { Func::Max };
                Some((Node::Call(f, nodes), ty))
            }
            "size" if tys.len() == 1 && matches!(tys[0], Ty::Str | Ty::List(_)) => {
                Some((Node::Call(Func::Size, nodes), Ty::Int))
            }
            "startsWith" | "endsWith" | "contains" if tys == [Ty::Str, Ty::Str] => {
                let f = match name {
                    "startsWith" => Func::StartsWith,
                    "endsWith" => Func::EndsWith,
                    _ => Func::Contains,
                };
                Some((Node::Call(f, nodes), Ty::Bool))
            }
            "in_list" if tys == [Ty::Str, Ty::Str] => {
                let value = nodes.pop()?;
                let Some(Node::Const(Const::Str(list))) = nodes.pop() else {
                    self.error(
                        e,
                        "in_list takes the list's name as a literal: in_list(\"name\", value)"
                            .into(),
                        None,
                    );
                    return None;
                };
                if !valid_list_name(&list) {
                    self.error(
                        e,
                        format!("`{list}` cannot name a list"),
                        Some("a list name has 1 to 64 lower-case letters, digits and _".into()),
                    );
                    return None;
                }
                let table = self.schema.lists.clone();
                table.note(&list);
                let holder = args
                    .last()
                    .and_then(|a| path_of(&a.expr))
                    .is_some_and(|p| p.ends_with(".holder"));
                let kind = if holder {
                    EntryKind::Holder
                } else {
                    EntryKind::Account
                };
                Some((Node::InList(table, list, kind, Box::new(value)), Ty::Bool))
            }
            "abs" | "double" | "int" | "min" | "max" | "size" | "startsWith" | "endsWith"
            | "contains" | "in_list" => mismatch(self, name),
            other => {
                self.error(
                    e,
                    format!("unknown function `{other}`"),
                    Some("valid functions: abs, contains, double, endsWith, in_list, int, max, min, size, startsWith".into()),
                );
                None
            }
        }
    }
}

struct NoVars;
impl Env for NoVars {
    fn get(&self, _: VarId) -> Val<'_> {
        Val::Null
    }
}

fn required_codes(n: &Node, v: VarId) -> Option<u64> {
    match n {
        Node::EnumEq(x, code) if *x == v => {
            Some(if (0..64).contains(code) { 1 << code } else { 0 })
        }
        Node::EnumIn(x, mask) if *x == v => Some(*mask),
        // `&&` and `||` test truthiness: a false side makes `&&` false, two make `||` false.
        Node::And(a, b) => match (required_codes(a, v), required_codes(b, v)) {
            (Some(x), Some(y)) => Some(x & y),
            (x, None) | (None, x) => x,
        },
        Node::Or(a, b) => Some(required_codes(a, v)? | required_codes(b, v)?),
        _ => None,
    }
}

fn reads_var(n: &Node, pred: &dyn Fn(VarId) -> bool) -> bool {
    match n {
        Node::Const(_) => false,
        Node::Var(v) | Node::EnumEq(v, _) | Node::EnumIn(v, _) => pred(*v),
        Node::Not(a) | Node::Neg(a) => reads_var(a, pred),
        Node::And(a, b)
        | Node::Or(a, b)
        | Node::Cmp(_, a, b)
        | Node::Arith(_, a, b)
        | Node::In(a, b) => reads_var(a, pred) || reads_var(b, pred),
        Node::Cond(a, b, c) => reads_var(a, pred) || reads_var(b, pred) || reads_var(c, pred),
        Node::Call(_, args) => args.iter().any(|a| reads_var(a, pred)),
        Node::InList(_, _, _, a) => reads_var(a, pred),
    }
}

fn has_vars(n: &Node) -> bool {
    match n {
        Node::Const(_) => false,
        Node::Var(_) | Node::EnumEq(..) | Node::EnumIn(..) => true,
        Node::Not(a) | Node::Neg(a) => has_vars(a),
        Node::And(a, b)
        | Node::Or(a, b)
        | Node::Cmp(_, a, b)
        | Node::Arith(_, a, b)
        | Node::In(a, b) => has_vars(a) || has_vars(b),
        Node::Cond(a, b, c) => has_vars(a) || has_vars(b) || has_vars(c),
        Node::Call(_, args) => args.iter().any(has_vars),
        // The lists are read at run time: never folded.
        Node::InList(..) => true,
    }
}

/// Folds constant subtrees (parameters and literals) once, at compile time.
fn fold(node: Node) -> Node {
    if has_vars(&node) {
        return node;
    }
    let c = match eval(&node, &NoVars) {
        Val::Bool(b) => Const::Bool(b),
        Val::Int(i) => Const::Int(i),
        Val::Float(x) => Const::Float(x),
        Val::Str(s) => Const::Str(Arc::from(s)),
        Val::List(l) => Const::List(l.into()),
        Val::Null => return node,
    };
    Node::Const(c)
}

fn cmp_vals(op: CmpOp, l: Val<'_>, r: Val<'_>) -> bool {
    use std::cmp::Ordering;
    let ord = match (l, r) {
        (Val::Int(a), Val::Int(b)) => Some(a.cmp(&b)),
        (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
        (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(&b)),
        (a, b) => match (a.num(), b.num()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        },
    };
    match (op, ord) {
        (_, None) => false,
        (CmpOp::Eq, Some(o)) => o == Ordering::Equal,
        (CmpOp::Ne, Some(o)) => o != Ordering::Equal,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
    }
}

fn eval<'a>(node: &'a Node, env: &'a dyn Env) -> Val<'a> {
    match node {
        Node::Const(c) => c.val(),
        Node::Var(v) => env.get(*v),
        Node::EnumEq(v, code) => Val::Bool(env.code(*v) == *code),
        Node::EnumIn(v, mask) => {
            let c = env.code(*v);
            Val::Bool((0..64).contains(&c) && mask >> c & 1 == 1)
        }
        Node::Not(a) => match eval(a, env) {
            Val::Bool(b) => Val::Bool(!b),
            _ => Val::Null,
        },
        Node::Neg(a) => match eval(a, env) {
            Val::Int(i) => Val::Int(i.wrapping_neg()),
            Val::Float(x) => Val::Float(-x),
            _ => Val::Null,
        },
        Node::And(a, b) => Val::Bool(eval(a, env).truthy() && eval(b, env).truthy()),
        Node::Or(a, b) => Val::Bool(eval(a, env).truthy() || eval(b, env).truthy()),
        Node::Cmp(op, a, b) => Val::Bool(cmp_vals(*op, eval(a, env), eval(b, env))),
        Node::Arith(op, a, b) => {
            let (l, r) = (eval(a, env), eval(b, env));
            if let (Val::Int(x), Val::Int(y)) = (l, r) {
                return match op {
                    ArOp::Add => x.checked_add(y).map_or(Val::Null, Val::Int),
                    ArOp::Sub => x.checked_sub(y).map_or(Val::Null, Val::Int),
                    ArOp::Mul => x.checked_mul(y).map_or(Val::Null, Val::Int),
                    ArOp::Div => x.checked_div(y).map_or(Val::Null, Val::Int),
                    ArOp::Mod => x.checked_rem(y).map_or(Val::Null, Val::Int),
                };
            }
            match (l.num(), r.num()) {
                (Some(x), Some(y)) => {
                    let v = match op {
                        ArOp::Add => x + y,
                        ArOp::Sub => x - y,
                        ArOp::Mul => x * y,
                        ArOp::Div => x / y,
                        ArOp::Mod => x % y,
                    };
                    if v.is_finite() {
                        Val::Float(v)
                    } else {
                        Val::Null
                    }
                }
                _ => Val::Null,
            }
        }
        Node::In(a, b) => {
            let needle = eval(a, env);
            match eval(b, env) {
                Val::List(items) => {
                    Val::Bool(items.iter().any(|c| cmp_vals(CmpOp::Eq, needle, c.val())))
                }
                _ => Val::Null,
            }
        }
        Node::Cond(c, t, f) => match eval(c, env) {
            Val::Bool(true) => eval(t, env),
            Val::Bool(false) => eval(f, env),
            _ => Val::Null,
        },
        Node::InList(table, list, kind, value) => match eval(value, env) {
            Val::Str(s) => Val::Bool(table.contains(list, *kind, s)),
            _ => Val::Null,
        },
        Node::Call(func, args) => {
            let v: Vec<Val<'a>> = args.iter().map(|a| eval(a, env)).collect();
            match (func, v.as_slice()) {
                (Func::Abs, [Val::Int(i)]) => Val::Int(i.wrapping_abs()),
                (Func::Abs, [Val::Float(x)]) => Val::Float(x.abs()),
                (Func::Double, [x]) => x.num().map_or(Val::Null, Val::Float),
                (Func::Int, [Val::Int(i)]) => Val::Int(*i),
                (Func::Int, [Val::Float(x)]) if x.is_finite() => Val::Int(x.trunc() as i64),
                (Func::Min | Func::Max, [Val::Int(a), Val::Int(b)]) => {
                    Val::Int(if *func == Func::Min {
                        *a.min(b)
                    } else {
                        *a.max(b)
                    })
                }
                (Func::Min | Func::Max, [a, b]) => match (a.num(), b.num()) {
                    (Some(x), Some(y)) => Val::Float(if *func == Func::Min {
                        x.min(y)
                    } else {
                        x.max(y)
                    }),
                    _ => Val::Null,
                },
                (Func::Size, [Val::Str(s)]) => Val::Int(s.chars().count() as i64),
                (Func::Size, [Val::List(l)]) => Val::Int(l.len() as i64),
                (Func::StartsWith, [Val::Str(s), Val::Str(p)]) => Val::Bool(s.starts_with(p)),
                (Func::EndsWith, [Val::Str(s), Val::Str(p)]) => Val::Bool(s.ends_with(p)),
                (Func::Contains, [Val::Str(s), Val::Str(p)]) => Val::Bool(s.contains(p)),
                _ => Val::Null,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars(Vec<Val<'static>>);
    impl Env for Vars {
        fn get(&self, v: VarId) -> Val<'_> {
            self.0[v as usize]
        }
    }

    fn schema() -> Schema {
        let mut s = Schema::new();
        s.var("tx.amount", 0, Ty::Float)
            .var("tx.type", 1, Ty::Str)
            .var("hub.licensed", 2, Ty::Bool)
            .var("payees", 3, Ty::Int)
            .constant("params.min_payees", Const::Int(10))
            .constant(
                "settlement_types",
                Const::List(vec![Const::Str("settlement".into())].into()),
            );
        s
    }

    fn env() -> Vars {
        Vars(vec![
            Val::Float(120.5),
            Val::Str("settlement"),
            Val::Bool(false),
            Val::Int(12),
        ])
    }

    #[test]
    fn in_list_reads_the_lists_set_for_the_scan_and_is_never_folded() {
        let table = Arc::new(ListTable::default());
        let mut s = schema();
        s.lists(table.clone());
        s.var("hub.holder", 4, Ty::Str);
        let on_list = compile(r#"in_list("vip", tx.type)"#, &s, Ty::Bool).unwrap();
        let literal = compile(r#"in_list("vip", "settlement")"#, &s, Ty::Bool).unwrap();
        let holder = compile(r#"in_list("vip", hub.holder)"#, &s, Ty::Bool).unwrap();
        let mut vars = env();
        vars.0.push(Val::Str("settlement"));
        assert!(!on_list.test(&vars), "an unset table lists nothing");
        let mut values = ListValues::default();
        let in_a_minute = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + 60_000;
        values.insert("vip", EntryKind::Account, "settlement", in_a_minute);
        values.insert("vip", EntryKind::Holder, "ended", 1);
        table.set(values);
        assert!(on_list.test(&vars));
        assert!(
            !holder.test(&vars),
            "a `.holder` value is looked up among holder entries"
        );
        vars.0[4] = Val::Str("ended");
        assert!(!holder.test(&vars), "an entry past its expiry is out");
        assert!(
            literal.test(&vars),
            "a constant argument is read at run time too"
        );
        let other = compile(r#"in_list("other", tx.type)"#, &s, Ty::Bool).unwrap();
        assert!(!other.test(&env()));
        assert_eq!(
            table.take_noted(),
            ["other", "vip"],
            "the names read are noted, for a warning about a list that does not exist"
        );
        assert!(table.take_noted().is_empty(), "taking clears them");
        for (bad, want) in [
            (r#"in_list(tx.type, "vip")"#, "as a literal"),
            (r#"in_list("Not-a-name", tx.type)"#, "cannot name a list"),
            (r#"in_list("vip", payees)"#, "type mismatch: in_list"),
        ] {
            let errs = compile(bad, &s, Ty::Bool).unwrap_err();
            assert!(
                errs.iter().any(|e| e.message.contains(want)),
                "{bad}: {errs:?}"
            );
        }
    }

    /// Compiles `src` on a thread with a small stack, as the dashboard's workers would.
    fn compile_on_small_stack(src: String) -> Result<Program, Vec<ExprError>> {
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || compile(&src, &schema(), Ty::Bool))
            .unwrap()
            .join()
            .expect("compiling does not overflow the stack")
    }

    #[test]
    fn thresholds_are_the_conjunction_tests_of_a_variable_against_a_constant() {
        let s = schema();
        let p = compile(
            "payees >= params.min_payees && 2.5 > tx.amount && double(payees) <= 3.0 * 4.0 \
             && (payees > 1 || hub.licensed) && payees != tx.amount",
            &s,
            Ty::Bool,
        )
        .unwrap();
        let named: Vec<(&str, &str, f64)> = p
            .thresholds()
            .into_iter()
            .map(|(v, op, x)| (s.name_of(v).unwrap(), op, x))
            .collect();
        assert_eq!(
            named,
            vec![
                ("payees", "≥", 10.0),
                ("tx.amount", "<", 2.5),
                ("payees", "≤", 12.0)
            ]
        );
    }

    #[test]
    fn a_long_operator_chain_is_refused_not_a_stack_overflow() {
        for terms in [2_500, 100_000] {
            let src = format!("payees >= {}", vec!["1"; terms].join(" + "));
            let errors = compile_on_small_stack(src).unwrap_err();
            assert!(
                errors[0].message.contains("more than 256 operators")
                    || errors[0].message.contains("bytes long"),
                "{errors:?}"
            );
        }
        let nested = format!("{}payees > 1{}", "(".repeat(5_000), ")".repeat(5_000));
        let errors = compile_on_small_stack(nested).unwrap_err();
        assert!(
            errors[0].message.contains("nests deeper than 32"),
            "{errors:?}"
        );
    }

    /// A chain of conditionals nested past the parser's own limit used to come back as
    /// `OtherError(ParseError { … })`: it is refused with a sentence first.
    #[test]
    fn a_conditional_chain_is_refused_with_a_sentence_not_a_parser_dump() {
        let chain = format!("{}1", "payees > 1 ? 1 : ".repeat(40));
        let errors = compile_on_small_stack(format!("({chain}) > 0")).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.contains("more than 32 conditionals"),
            "{errors:?}"
        );
        assert_eq!(
            parser_message(
                "OtherError(ParseError { source: None, msg: \"Recursion limit of 96 exceeded\", expr_id: 0 })"
            ),
            "Recursion limit of 96 exceeded"
        );
    }

    #[test]
    fn expressions_at_the_limits_compile_and_evaluate() {
        let chain = format!(
            "payees >= {}",
            vec!["0"; MAX_EXPR_OPERATORS - 1].join(" + ")
        );
        let p = compile_on_small_stack(chain).unwrap();
        assert!(p.test(&env()));
        let nested = format!(
            "{}payees > 1{}",
            "(".repeat(MAX_EXPR_NESTING),
            ")".repeat(MAX_EXPR_NESTING)
        );
        assert!(compile_on_small_stack(nested).unwrap().test(&env()));
        // Operators inside string literals are text, not operators.
        let quoted = format!(
            "tx.type in [\"{}\", 'settlement'] && tx.type != r'a+b'",
            "+".repeat(5_000)
        );
        assert!(compile_on_small_stack(quoted).unwrap().test(&env()));
        // Decimal points and words containing `in` are not operators either.
        let floats = format!("tx.amount in [{}]", vec!["1.5"; 1_000].join(", "));
        assert!(compile_on_small_stack(floats).is_ok());
    }

    fn run(src: &str) -> Val<'static> {
        let p = compile(src, &schema(), Ty::Bool).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        let env = env();
        match p.eval(&env) {
            Val::Bool(b) => Val::Bool(b),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn evaluates_rule_conditions() {
        assert_eq!(
            run("payees >= params.min_payees && !hub.licensed"),
            Val::Bool(true)
        );
        assert_eq!(
            run("tx.type in settlement_types && tx.amount > 100"),
            Val::Bool(true)
        );
        assert_eq!(run("tx.type in ['payment', 'fee']"), Val::Bool(false));
        assert_eq!(run("payees * 2 == 24 && abs(-3) == 3"), Val::Bool(true));
        assert_eq!(
            run("tx.type.startsWith('settle') ? true : false"),
            Val::Bool(true)
        );
        assert_eq!(run("size(tx.type) == 10"), Val::Bool(true));
        assert_eq!(
            run("double(payees) / 0.0 > 1.0"),
            Val::Bool(false),
            "errors are false"
        );
    }

    #[test]
    fn constants_fold_at_compile_time() {
        let p = compile("params.min_payees * 2 > 5", &schema(), Ty::Bool).unwrap();
        assert_eq!(p.constant(), Some(Const::Bool(true)));
    }

    #[test]
    fn unknown_variables_are_errors_at_their_position_with_valid_fields() {
        let errs = compile("payees > 1 && hub.licenced", &schema(), Ty::Bool).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].offset, 14);
        assert!(errs[0].message.contains("hub.licenced"));
        assert!(errs[0].help.as_deref().unwrap().contains("hub.licensed"));
    }

    #[test]
    fn every_error_of_an_expression_is_reported() {
        let errs = compile("foo > 1 && bar", &schema(), Ty::Bool).unwrap_err();
        assert_eq!(errs.len(), 2);
    }

    #[test]
    fn syntax_errors_carry_offsets() {
        let errs = compile("payees >= ", &schema(), Ty::Bool).unwrap_err();
        assert!(errs[0].message.starts_with("syntax error"), "{errs:?}");
    }

    #[test]
    fn type_mismatches_are_errors() {
        let errs = compile("tx.type > 3", &schema(), Ty::Bool).unwrap_err();
        assert!(errs[0].message.contains("type mismatch"), "{errs:?}");
        let errs = compile("payees + 1", &schema(), Ty::Bool).unwrap_err();
        assert!(errs[0].message.contains("expected bool"), "{errs:?}");
    }

    #[test]
    fn vocabulary_comparisons_compile_to_codes_and_check_values() {
        struct Codes;
        impl Env for Codes {
            fn get(&self, _: VarId) -> Val<'_> {
                Val::Str("settlement")
            }
            fn code(&self, _: VarId) -> i64 {
                1
            }
        }
        let mut s = Schema::new();
        s.var_enum("tx.type", 0, &["payment", "settlement", "transfer"]);
        let p = compile(
            "tx.type == 'settlement' && tx.type in ['settlement', 'payment']",
            &s,
            Ty::Bool,
        )
        .unwrap();
        assert!(p.test(&Codes));
        let p = compile("tx.type != 'settlement'", &s, Ty::Bool).unwrap();
        assert!(!p.test(&Codes));
        let errs = compile("tx.type == 'setlement'", &s, Ty::Bool).unwrap_err();
        assert!(
            errs[0].help.as_deref().unwrap().contains("\"settlement\""),
            "{errs:?}"
        );
        let errs = compile("tx.type in ['payment', 'wire']", &s, Ty::Bool).unwrap_err();
        assert!(errs[0].message.contains("wire"), "{errs:?}");
    }

    #[test]
    fn required_codes_hold_on_every_value_of_the_other_variables() {
        struct Vars(i64, bool, bool);
        impl Env for Vars {
            fn get(&self, v: VarId) -> Val<'_> {
                match v {
                    1 => Val::Bool(self.1),
                    2 => Val::Bool(self.2),
                    _ => Val::Null,
                }
            }
            fn code(&self, _: VarId) -> i64 {
                self.0
            }
        }
        let mut s = Schema::new();
        s.var_enum("tx.type", 0, &["payment", "settlement", "transfer"]);
        s.var("x", 1, Ty::Bool);
        s.var("y", 2, Ty::Bool);
        for (text, want) in [
            ("tx.type == 'transfer' && x", Some(0b100)),
            ("x && tx.type in ['payment', 'transfer']", Some(0b101)),
            (
                "tx.type == 'settlement' || (tx.type == 'payment' && y)",
                Some(0b011),
            ),
            ("tx.type == 'settlement' || x", None),
            ("!(tx.type == 'settlement')", None),
            ("tx.type != 'settlement' && x", None),
            ("tx.type == 'payment' && tx.type == 'transfer'", Some(0)),
            (
                "(x || tx.type == 'payment') && tx.type in ['payment', 'settlement']",
                Some(0b011),
            ),
            ("x ? tx.type == 'payment' : y", None),
        ] {
            let p = compile(text, &s, Ty::Bool).unwrap();
            assert_eq!(p.required_codes(0), want, "{text}");
            assert_eq!(p.required_codes(1), None, "{text}: x is no vocabulary");
            // Outside the codes, no value of x and y makes it true.
            for code in 0..3 {
                let admitted = want.is_none_or(|m| m >> code & 1 == 1);
                let holds = [(false, false), (false, true), (true, false), (true, true)]
                    .into_iter()
                    .any(|(x, y)| p.test(&Vars(code, x, y)));
                assert!(admitted || !holds, "{text} holds on code {code}");
            }
        }
    }

    #[test]
    fn macros_expand_in_place() {
        let mut s = schema();
        let (ast, info) = parse("tx.type in settlement_types").unwrap();
        s.add_macro(
            "is_settlement",
            Arc::new(Macro {
                source: "tx.type in settlement_types".into(),
                ast,
                info,
            }),
        );
        let p = compile("is_settlement && payees > 3", &s, Ty::Bool).unwrap();
        assert!(p.test(&env()));
    }
}
