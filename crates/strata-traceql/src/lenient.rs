//! Lenient parsing of half-typed queries, for autocomplete.
//!
//! Grafana sends the query being edited, e.g. `{ resource.service.name="cart" && span.http.method=`,
//! and wants the tag values that remain possible given the *complete* conditions. The repair is
//! done on tokens:
//!
//! 1. a matcher with nothing after its operator (`name = }`, `.a = &&`) is removed together with
//!    one `&&` / `||` next to it;
//! 2. trailing tokens that cannot end a query (operators, `(`, `{`, `,`, a comparison and its
//!    left side) are dropped, the brackets still open are closed, and the result is parsed;
//! 3. if that fails, one more token is dropped from the end and step 2 repeats (a bounded number
//!    of times).
//!
//! Dropped tokens are replaced by spaces, so positions in the result still point into the
//! original text (line and column exactly; byte offsets may drift after non-ASCII dropped text).

use crate::ast::Query;
use crate::lexer::{Op, TokKind, Token, lex};
use crate::parse;
use crate::parser::LIMIT_MARK;

/// How many shortened candidates are tried before giving up.
const MAX_ATTEMPTS: usize = 64;

fn is_operand(t: &Token) -> bool {
    matches!(
        t.kind,
        TokKind::Attr(_) | TokKind::Intrinsic(_) | TokKind::Ident(_)
    )
}

fn is_comparison(t: &Token) -> bool {
    matches!(
        t.kind,
        TokKind::Op(Op::Eq | Op::Neq | Op::Lt | Op::Lte | Op::Gt | Op::Gte | Op::Re | Op::NotRe)
    )
}

fn is_connector(t: &Token) -> bool {
    matches!(t.kind, TokKind::Op(Op::And | Op::Or))
}

fn is_terminator(t: &Token) -> bool {
    matches!(
        t.kind,
        TokKind::Op(Op::RBrace | Op::RParen | Op::And | Op::Or | Op::Pipe)
    )
}

/// Tokens after which a query cannot end: every operator except closing brackets.
fn is_dangling(t: &Token) -> bool {
    matches!(t.kind, TokKind::Op(op) if !matches!(op, Op::RBrace | Op::RParen))
}

fn is_bracket(t: &Token) -> bool {
    matches!(
        t.kind,
        TokKind::Op(Op::LBrace | Op::RBrace | Op::LParen | Op::RParen)
    )
}

/// Parses `text`; if it is incomplete, parses what is left after dropping the incomplete
/// conditions at its end (and empty matchers such as `name = }` inside it), closing open
/// brackets. `None` when nothing usable remains (e.g. `{ .a = `).
pub fn parse_lenient(text: &str) -> Option<Query> {
    match parse(text) {
        Ok(q) => return Some(q),
        // Shortening the end cannot fix a query that is too deep.
        Err(e) if e.message.starts_with(LIMIT_MARK) => return None,
        Err(_) => {}
    }
    let (mut toks, _) = lex(text);
    toks.pop(); // Eof
    let n = toks.len();

    // 1. Empty matchers anywhere.
    let mut keep = vec![true; n];
    for i in 1..n {
        if !is_comparison(&toks[i]) || !is_operand(&toks[i - 1]) || !keep[i - 1] {
            continue;
        }
        if i + 1 < n && !is_terminator(&toks[i + 1]) {
            continue;
        }
        keep[i - 1] = false;
        keep[i] = false;
        if i >= 2 && keep[i - 2] && is_connector(&toks[i - 2]) {
            keep[i - 2] = false;
        } else if i + 1 < n && is_connector(&toks[i + 1]) {
            keep[i + 1] = false;
        }
    }
    let kept: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();

    // 2./3. Trim the end until something parses.
    let mut end = kept.len();
    for _ in 0..MAX_ATTEMPTS {
        while end > 0 {
            let t = &toks[kept[end - 1]];
            if is_comparison(t) {
                end -= 1;
                if end > 0 && is_operand(&toks[kept[end - 1]]) {
                    end -= 1;
                }
            } else if is_dangling(t) {
                end -= 1;
            } else {
                break;
            }
        }
        let used = &kept[..end];
        if !used.iter().any(|&i| !is_bracket(&toks[i])) {
            return None;
        }
        let candidate = build(text, &toks, used);
        if let Ok(q) = parse(&candidate) {
            return Some(q);
        }
        end -= 1;
    }
    None
}

/// The text up to the last used token, with unused tokens blanked out, plus closing brackets.
fn build(text: &str, toks: &[Token], used: &[usize]) -> String {
    let Some(&last) = used.last() else {
        return String::new();
    };
    let cut = toks[last].end;
    let mut dropped: Vec<(usize, usize)> = Vec::new();
    let mut u = used.iter().peekable();
    for (i, t) in toks.iter().enumerate().take(last + 1) {
        if u.peek() == Some(&&i) {
            u.next();
        } else {
            dropped.push((t.pos.offset as usize, t.end));
        }
    }
    let mut out = String::with_capacity(cut + 8);
    let mut d = dropped.iter().peekable();
    for (off, c) in text.get(..cut).unwrap_or("").char_indices() {
        while d.peek().is_some_and(|&&(_, e)| e <= off) {
            d.next();
        }
        let blank = d.peek().is_some_and(|&&(s, e)| s <= off && off < e);
        out.push(if blank && c != '\n' { ' ' } else { c });
    }
    let mut open: Vec<char> = Vec::new();
    for &i in used {
        match toks[i].kind {
            TokKind::Op(Op::LBrace) => open.push('}'),
            TokKind::Op(Op::LParen) => open.push(')'),
            TokKind::Op(Op::RBrace | Op::RParen) => {
                open.pop();
            }
            _ => {}
        }
    }
    while let Some(c) = open.pop() {
        out.push(' ');
        out.push(c);
    }
    out
}
