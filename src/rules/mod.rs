//! Rules: the YAML rule format, its compilation into runtime rules, and the registry of
//! detector kinds.

pub mod expr;
