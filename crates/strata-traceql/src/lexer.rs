//! The TraceQL lexer: turns query text into tokens with positions.

use crate::ParseError;
use crate::ast::{Attribute, AttributeScope, Intrinsic, Pos};

/// Operators and punctuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Comma,
    LBrace,
    RBrace,
    LParen,
    RParen,
    Eq,
    Neq,
    Re,
    NotRe,
    Gt,
    Gte,
    Lt,
    Lte,
    Add,
    Sub,
    Div,
    Mod,
    Mul,
    Pow,
    And,
    Or,
    Not,
    Pipe,
    Desc,
    Ance,
    Sibl,
    NotChild,
    NotParent,
    NotDesc,
    NotAnce,
    UnionSibl,
    UnionChild,
    UnionParent,
    UnionDesc,
    UnionAnce,
}

impl Op {
    /// The operator's spelling.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Op::Comma => ",",
            Op::LBrace => "{",
            Op::RBrace => "}",
            Op::LParen => "(",
            Op::RParen => ")",
            Op::Eq => "=",
            Op::Neq => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Add => "+",
            Op::Sub => "-",
            Op::Div => "/",
            Op::Mod => "%",
            Op::Mul => "*",
            Op::Pow => "^",
            Op::And => "&&",
            Op::Or => "||",
            Op::Not => "!",
            Op::Pipe => "|",
            Op::Desc => ">>",
            Op::Ance => "<<",
            Op::Sibl => "~",
            Op::NotChild => "!>",
            Op::NotParent => "!<",
            Op::NotDesc => "!>>",
            Op::NotAnce => "!<<",
            Op::UnionSibl => "&~",
            Op::UnionChild => "&>",
            Op::UnionParent => "&<",
            Op::UnionDesc => "&>>",
            Op::UnionAnce => "&<<",
        }
    }
}

/// All operators, longest first, for maximal munch.
const OPS: &[Op] = &[
    Op::NotDesc,
    Op::NotAnce,
    Op::UnionDesc,
    Op::UnionAnce,
    Op::Neq,
    Op::Re,
    Op::NotRe,
    Op::Gte,
    Op::Lte,
    Op::And,
    Op::Or,
    Op::Desc,
    Op::Ance,
    Op::NotChild,
    Op::NotParent,
    Op::UnionSibl,
    Op::UnionChild,
    Op::UnionParent,
    Op::Comma,
    Op::LBrace,
    Op::RBrace,
    Op::LParen,
    Op::RParen,
    Op::Eq,
    Op::Gt,
    Op::Lt,
    Op::Add,
    Op::Sub,
    Op::Div,
    Op::Mod,
    Op::Mul,
    Op::Pow,
    Op::Not,
    Op::Pipe,
    Op::Sibl,
];

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokKind {
    /// End of the query.
    Eof,
    /// A bare word: keyword, function name, intrinsic, hint name, ...
    Ident(String),
    /// A string literal (escapes resolved).
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A duration literal, in nanoseconds.
    Duration(i64),
    /// A complete attribute reference: `.a`, `span."b c"`, `parent.resource.x`.
    Attr(Attribute),
    /// A scoped intrinsic: `span:duration`.
    Intrinsic(Intrinsic),
    /// An operator or punctuation.
    Op(Op),
}

/// A token and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) kind: TokKind,
    pub(crate) pos: Pos,
    /// Byte offset just after the token.
    pub(crate) end: usize,
}

/// Whether `c` may appear in an unquoted attribute name.
pub(crate) fn is_attribute_rune(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(
            c,
            '{' | '}' | '(' | ')' | '=' | '~' | '!' | '<' | '>' | '&' | '|' | '^' | ','
        )
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Maps a scoped intrinsic `scope:name` to the intrinsic.
pub(crate) fn scoped_intrinsic(scope: &str, name: &str) -> Option<Intrinsic> {
    Some(match (scope, name) {
        ("trace", "duration") => Intrinsic::TraceDuration,
        ("trace", "rootName") => Intrinsic::RootName,
        ("trace", "rootService") => Intrinsic::RootServiceName,
        ("trace", "id") => Intrinsic::TraceId,
        ("span", "duration") => Intrinsic::Duration,
        ("span", "name") => Intrinsic::Name,
        ("span", "kind") => Intrinsic::Kind,
        ("span", "status") => Intrinsic::Status,
        ("span", "statusMessage") => Intrinsic::StatusMessage,
        ("span", "id") => Intrinsic::SpanId,
        ("span", "parentID") => Intrinsic::ParentId,
        ("span", "childCount") => Intrinsic::ChildCount,
        ("event", "name") => Intrinsic::EventName,
        ("event", "timeSinceStart") => Intrinsic::EventTimeSinceStart,
        ("link", "traceID") => Intrinsic::LinkTraceId,
        ("link", "spanID") => Intrinsic::LinkSpanId,
        ("instrumentation", "name") => Intrinsic::InstrumentationName,
        ("instrumentation", "version") => Intrinsic::InstrumentationVersion,
        _ => return None,
    })
}

struct Lexer<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    off: usize,
    line: u32,
    column: u32,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.off..].chars().next()
    }

    fn peek_nth(&self, n: usize) -> Option<char> {
        self.text[self.off..].chars().nth(n)
    }

    fn rest(&self) -> &'a str {
        &self.text[self.off..]
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.off += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn bump_n(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
            offset: u32::try_from(self.off).unwrap_or(u32::MAX),
        }
    }

    fn err(pos: Pos, message: impl Into<String>) -> ParseError {
        ParseError {
            pos,
            message: message.into(),
        }
    }

    /// Skips whitespace and `//` / `/* */` comments.
    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('/') if self.peek_nth(1) == Some('/') => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some('/') if self.peek_nth(1) == Some('*') => {
                    let start = self.pos();
                    self.bump_n(2);
                    loop {
                        match self.peek() {
                            None => return Err(Self::err(start, "unterminated comment")),
                            Some('*') if self.peek_nth(1) == Some('/') => {
                                self.bump_n(2);
                                break;
                            }
                            Some(_) => {
                                self.bump();
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia()?;
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Ok(Token {
                kind: TokKind::Eof,
                pos,
                end: self.off,
            });
        };
        let kind = if c.is_ascii_digit()
            || (c == '.' && self.peek_nth(1).is_some_and(|d| d.is_ascii_digit()))
        {
            self.number(pos)?
        } else if c == '.' {
            self.bump();
            let name = self.attribute_name(pos, ".")?;
            TokKind::Attr(Attribute {
                scope: AttributeScope::None,
                parent: false,
                name,
            })
        } else if c == '"' {
            TokKind::Str(self.string(pos)?)
        } else if c == '`' {
            self.bump();
            let start = self.off;
            loop {
                match self.bump() {
                    None => return Err(Self::err(pos, "unterminated raw string")),
                    Some('`') => break,
                    Some(_) => {}
                }
            }
            TokKind::Str(self.text[start..self.off - 1].to_string())
        } else if is_ident_start(c) {
            self.word(pos)?
        } else if let Some(op) = OPS
            .iter()
            .copied()
            .find(|op| self.rest().starts_with(op.text()))
        {
            self.bump_n(op.text().chars().count());
            TokKind::Op(op)
        } else {
            return Err(Self::err(pos, format!("unexpected character `{c}`")));
        };
        Ok(Token {
            kind,
            pos,
            end: self.off,
        })
    }

    /// An identifier, a scoped attribute (`span.x`) or a scoped intrinsic (`span:id`).
    fn word(&mut self, pos: Pos) -> Result<TokKind, ParseError> {
        let start = self.off;
        while self.peek().is_some_and(is_ident_continue) {
            self.bump();
        }
        let word = &self.text[start..self.off];
        match self.peek() {
            Some('.') => {
                let scope = match word {
                    "span" => Some(AttributeScope::Span),
                    "resource" => Some(AttributeScope::Resource),
                    "event" => Some(AttributeScope::Event),
                    "link" => Some(AttributeScope::Link),
                    "instrumentation" => Some(AttributeScope::Instrumentation),
                    "parent" => Some(AttributeScope::None),
                    _ => None,
                };
                if let Some(mut scope) = scope {
                    self.bump();
                    let parent = word == "parent";
                    let mut prefix = format!("{word}.");
                    if parent {
                        for (w, s) in [
                            ("span.", AttributeScope::Span),
                            ("resource.", AttributeScope::Resource),
                        ] {
                            if self.rest().starts_with(w) {
                                self.bump_n(w.len());
                                scope = s;
                                prefix.push_str(w);
                                break;
                            }
                        }
                    }
                    let name = self.attribute_name(pos, &prefix)?;
                    return Ok(TokKind::Attr(Attribute {
                        scope,
                        parent,
                        name,
                    }));
                }
            }
            Some(':') => {
                if matches!(
                    word,
                    "trace" | "span" | "event" | "link" | "instrumentation"
                ) {
                    let word = word.to_string();
                    self.bump();
                    let name_start = self.off;
                    while self.peek().is_some_and(is_ident_continue) {
                        self.bump();
                    }
                    let name = &self.text[name_start..self.off];
                    if name.is_empty() {
                        return Err(Self::err(
                            self.pos(),
                            format!("expected an intrinsic name after `{word}:`"),
                        ));
                    }
                    return match scoped_intrinsic(&word, name) {
                        Some(i) => Ok(TokKind::Intrinsic(i)),
                        None => Err(Self::err(pos, format!("unknown intrinsic `{word}:{name}`"))),
                    };
                }
            }
            _ => {}
        }
        Ok(TokKind::Ident(word.to_string()))
    }

    /// An attribute name after its scope prefix: attribute runes and quoted parts.
    fn attribute_name(&mut self, pos: Pos, prefix: &str) -> Result<String, ParseError> {
        let mut name = String::new();
        let mut any = false;
        loop {
            match self.peek() {
                Some('"') => {
                    any = true;
                    let qpos = self.pos();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => {
                                return Err(Self::err(qpos, "unterminated quoted attribute name"));
                            }
                            Some('"') => break,
                            Some('\\') => match self.peek() {
                                Some(e @ ('"' | '\\')) => {
                                    self.bump();
                                    name.push(e);
                                }
                                _ => {
                                    return Err(Self::err(
                                        self.pos(),
                                        "invalid escape in quoted attribute name (only `\\\"` and `\\\\` are allowed)",
                                    ));
                                }
                            },
                            Some(c) => name.push(c),
                        }
                    }
                }
                Some(c) if is_attribute_rune(c) => {
                    any = true;
                    name.push(c);
                    self.bump();
                }
                _ => break,
            }
        }
        if !any {
            let found = match self.peek() {
                None => "end of query".to_string(),
                Some(c) if c.is_whitespace() => "whitespace".to_string(),
                Some(c) => format!("`{c}`"),
            };
            return Err(Self::err(
                pos,
                format!("expected an attribute name after `{prefix}`, found {found}"),
            ));
        }
        Ok(name)
    }

    fn string(&mut self, pos: Pos) -> Result<String, ParseError> {
        self.bump();
        let mut s = String::new();
        loop {
            let epos = self.pos();
            match self.bump() {
                None => return Err(Self::err(pos, "unterminated string")),
                Some('"') => return Ok(s),
                Some('\\') => {
                    let Some(e) = self.bump() else {
                        return Err(Self::err(pos, "unterminated string"));
                    };
                    let c = match e {
                        '"' => '"',
                        '\\' => '\\',
                        '\'' => '\'',
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'v' => '\u{b}',
                        'x' | 'u' | 'U' => {
                            let n = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            self.hex_escape(epos, n)?
                        }
                        '0'..='7' => {
                            let mut v = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                match self.peek().and_then(|d| d.to_digit(8)) {
                                    Some(d) => {
                                        self.bump();
                                        v = v * 8 + d;
                                    }
                                    None => {
                                        return Err(Self::err(epos, "invalid octal escape"));
                                    }
                                }
                            }
                            char::from_u32(v)
                                .ok_or_else(|| Self::err(epos, "invalid octal escape"))?
                        }
                        other => {
                            return Err(Self::err(
                                epos,
                                format!("unknown escape sequence `\\{other}` in string"),
                            ));
                        }
                    };
                    s.push(c);
                }
                Some(c) => s.push(c),
            }
        }
    }

    fn hex_escape(&mut self, epos: Pos, n: usize) -> Result<char, ParseError> {
        let mut v: u32 = 0;
        for _ in 0..n {
            match self.peek().and_then(|d| d.to_digit(16)) {
                Some(d) => {
                    self.bump();
                    v = v * 16 + d;
                }
                None => return Err(Self::err(epos, "invalid hex escape in string")),
            }
        }
        char::from_u32(v).ok_or_else(|| Self::err(epos, "escape is not a valid character"))
    }

    fn number(&mut self, pos: Pos) -> Result<TokKind, ParseError> {
        let start = self.off;
        let mut is_float = false;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') {
            is_float = true;
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let exp = match (self.peek_nth(1), self.peek_nth(2)) {
                (Some(d), _) if d.is_ascii_digit() => Some(1),
                (Some('+' | '-'), Some(d)) if d.is_ascii_digit() => Some(2),
                _ => None,
            };
            if let Some(n) = exp {
                is_float = true;
                self.bump_n(n);
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
        }
        let number = &self.text[start..self.off];
        // A duration continues with digits, unit letters and dots up to the next other rune.
        let suffix_len: usize = self
            .rest()
            .chars()
            .take_while(|&c| {
                c.is_ascii_digit()
                    || c == '.'
                    || matches!(c, 'n' | 's' | 'u' | 'm' | 'h' | 'µ' | 'μ' | 'd' | 'w' | 'y')
            })
            .map(char::len_utf8)
            .sum();
        if suffix_len > 0 {
            let text = &self.text[start..self.off + suffix_len];
            if let Some(d) = parse_duration(text) {
                let chars = self.text[self.off..self.off + suffix_len].chars().count();
                self.bump_n(chars);
                return Ok(TokKind::Duration(d));
            }
        }
        if is_float {
            match number.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(TokKind::Float(f)),
                _ => Err(Self::err(pos, format!("number `{number}` is out of range"))),
            }
        } else {
            number
                .parse::<i64>()
                .map(TokKind::Int)
                .map_err(|_| Self::err(pos, format!("integer `{number}` is out of range")))
        }
    }
}

/// Parses a duration the way Tempo does: Prometheus style (`1d`, `1h30m`, `2w`) first, then Go
/// style (`1.5s`, `100us`, `1h0m0s`). Returns nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    prometheus_duration(s).or_else(|| go_duration(s))
}

fn prometheus_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000_000_000),
        ("w", 7 * 24 * 3_600_000_000_000),
        ("d", 24 * 3_600_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let v: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return None;
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let idx = UNITS.iter().position(|(u, _)| *u == unit)?;
        if last.is_some_and(|l| idx <= l) {
            return None;
        }
        last = Some(idx);
        let mult = UNITS[idx].1;
        if v > (1u64 << 63) / mult {
            return None;
        }
        total = total.checked_add(v * mult)?;
        if total > i64::MAX as u64 {
            return None;
        }
    }
    i64::try_from(total).ok()
}

fn go_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let first = rest.chars().next()?;
        if !(first == '.' || first.is_ascii_digit()) {
            return None;
        }
        // Integer part.
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let pre = digits > 0;
        let mut v: u64 = 0;
        for b in rest[..digits].bytes() {
            if v > (1u64 << 63) / 10 {
                return None;
            }
            v = v * 10 + u64::from(b - b'0');
            if v > 1u64 << 63 {
                return None;
            }
        }
        rest = &rest[digits..];
        // Fraction.
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            post = digits > 0;
            let mut overflow = false;
            for b in rest[..digits].bytes() {
                if overflow {
                    continue;
                }
                if f > (i64::MAX as u64) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(b - b'0');
                if y > i64::MAX as u64 {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            rest = &rest[digits..];
        }
        if !pre && !post {
            return None;
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return None;
        }
        let unit: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        if v > (1u64 << 63) / unit {
            return None;
        }
        v *= unit;
        if f > 0 {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let frac = (f as f64 * (unit as f64 / scale)) as u64;
            v = v.checked_add(frac)?;
            if v > 1u64 << 63 {
                return None;
            }
        }
        total = total.checked_add(v)?;
        if total > 1u64 << 63 {
            return None;
        }
    }
    i64::try_from(total).ok()
}

/// Lexes the whole text. On a lexical error returns the tokens before it and the error; the token
/// list always ends with an `Eof` token (placed at the error when there is one).
pub(crate) fn lex(text: &str) -> (Vec<Token>, Option<ParseError>) {
    let mut lexer = Lexer {
        text,
        off: 0,
        line: 1,
        column: 1,
    };
    let mut tokens = Vec::new();
    loop {
        match lexer.next_token() {
            Ok(tok) => {
                let eof = tok.kind == TokKind::Eof;
                tokens.push(tok);
                if eof {
                    return (tokens, None);
                }
            }
            Err(e) => {
                let pos = e.pos;
                tokens.push(Token {
                    kind: TokKind::Eof,
                    pos,
                    end: pos.offset as usize,
                });
                return (tokens, Some(e));
            }
        }
    }
}
