//! TraceQL for Strata: lexer, parser, AST, validation and printing.
//!
//! - [`parse`] turns query text into a [`Query`], or a [`ParseError`] saying where and what was
//!   expected.
//! - [`Query::validate`] type-checks it the way Tempo does; a [`ValidateError`] with
//!   `unsupported: true` marks valid TraceQL that is not implemented.
//! - `Display` on every node prints TraceQL that parses back to an equal tree.
//! - [`parse_lenient`] recovers the complete part of a half-typed query (autocomplete).

pub mod ast;
mod display;
mod lenient;
mod lexer;
mod parser;
mod validate;

pub use ast::*;
pub use display::{format_duration, quote_string};
pub use lenient::parse_lenient;
pub use validate::{StaticType, compile_regex, types_compatible};

/// Parses a duration literal the way TraceQL does (`1h30m`, `1.5s`, `100us`, `2d`), in
/// nanoseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    lexer::parse_duration(text)
}

/// The deepest nesting of brackets and prefix operators the parser accepts.
pub const MAX_NESTING: u32 = parser::MAX_NESTING;

/// The deepest expression tree the parser accepts (long `&&` chains count too).
pub const MAX_TREE_DEPTH: u32 = parser::MAX_TREE_DEPTH;

/// A query that could not be parsed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("parse error at {pos}: {message}")]
pub struct ParseError {
    /// Where the offending token starts.
    pub pos: Pos,
    /// What was expected and what was found.
    pub message: String,
}

/// A query that parsed but is wrong (`unsupported: false`) or uses something not implemented
/// (`unsupported: true`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} at {}: {}", if *.unsupported { "unsupported" } else { "invalid query" }, .pos, .message)]
pub struct ValidateError {
    /// Where the offending construct starts (or its operator).
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// Valid TraceQL that is not supported yet.
    pub unsupported: bool,
}

/// Parses a TraceQL query.
pub fn parse(text: &str) -> Result<Query, ParseError> {
    parser::Parser::new(text)?.query()
}

impl std::str::FromStr for Query {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}
