//! The STIX 2.1 patterning language: a parser (after the OASIS ANTLR grammar), a canonical
//! rendering, and the reduction of simple patterns to indicators.
//!
//! Two reasons to parse rather than pattern-match text: OpenCTI's duplicates came from the same
//! pattern written with different whitespace or quoting (`hashes.MD5` vs `hashes.'MD5'`), which
//! the canonical rendering removes; and `[a:value = 'x' OR b:value = 'y']` means two indicators
//! a firewall can use, while `[a] AND [b] WITHIN 60 SECONDS` means neither alone and must stay a
//! pattern.

use std::fmt::{self, Write as _};

/// Nesting beyond this is refused (a pattern is a line of text, not a program).
const MAX_DEPTH: usize = 64;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=` or `==`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `IN`
    In,
    /// `LIKE`
    Like,
    /// `MATCHES`
    Matches,
    /// `ISSUBSET`
    IsSubset,
    /// `ISSUPERSET`
    IsSuperset,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "IN",
            Op::Like => "LIKE",
            Op::Matches => "MATCHES",
            Op::IsSubset => "ISSUBSET",
            Op::IsSuperset => "ISSUPERSET",
        }
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `'text'`
    Str(String),
    /// An integer.
    Int(i64),
    /// A float, as written.
    Float(String),
    /// `true` / `false`
    Bool(bool),
    /// `t'2016-01-01T00:00:00Z'`
    Timestamp(String),
    /// `h'0a1b'`
    Hex(String),
    /// `b'AAEC'`
    Binary(String),
    /// `(lit, lit, …)` for `IN`.
    Set(Vec<Lit>),
}

/// One step of an object path after the object type.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `.name` or `.'quoted name'`
    Key(String),
    /// `[3]`
    Index(i64),
    /// `[*]`
    Any,
}

/// `type:first.rest[...]`
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The SCO type (`ipv4-addr`).
    pub object: String,
    /// The property steps, the first always a key.
    pub steps: Vec<Step>,
}

/// A comparison expression (inside `[ ]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Cmp {
    /// `a OR b`
    Or(Vec<Cmp>),
    /// `a AND b`
    And(Vec<Cmp>),
    /// `path [NOT] op value`
    Test {
        /// The property.
        path: Path,
        /// `NOT` before the operator.
        negated: bool,
        /// The operator.
        op: Op,
        /// The value.
        value: Lit,
    },
    /// `[NOT] EXISTS path`
    Exists {
        /// The property.
        path: Path,
        /// `NOT` before `EXISTS`.
        negated: bool,
    },
}

/// A qualifier after an observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Qualifier {
    /// `WITHIN n SECONDS`
    Within(String),
    /// `REPEATS n TIMES`
    Repeats(i64),
    /// `START t'…' STOP t'…'`
    StartStop(String, String),
}

/// An observation expression (the whole pattern is one).
#[derive(Debug, Clone, PartialEq)]
pub enum Obs {
    /// `[ cmp ] qualifiers`
    Single(Cmp, Vec<Qualifier>),
    /// `( obs ) qualifiers`
    Group(Box<Obs>, Vec<Qualifier>),
    /// `a OR b`
    Or(Vec<Obs>),
    /// `a AND b`
    And(Vec<Obs>),
    /// `a FOLLOWEDBY b`
    FollowedBy(Vec<Obs>),
}

/// Where and why a pattern failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid STIX pattern at column {column}: {message}")]
pub struct PatternError {
    /// 1-based character column.
    pub column: usize,
    /// What was expected.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Colon,
    Dot,
    Comma,
    Star,
    Op(Op),
    Word(String),
    Str(String),
    Num(String),
    Typed(char, String),
}

struct Lexer {
    toks: Vec<(Tok, usize)>,
}

fn lex(text: &str) -> Result<Lexer, PatternError> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let err = |column: usize, message: &str| PatternError {
        column: column + 1,
        message: message.to_owned(),
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let single = match c {
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ':' => Some(Tok::Colon),
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => Some(Tok::Dot),
            ',' => Some(Tok::Comma),
            '*' => Some(Tok::Star),
            _ => None,
        };
        if let Some(t) = single {
            toks.push((t, start));
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let op = match two.as_str() {
            "==" => Some((Op::Eq, 2)),
            "!=" | "<>" => Some((Op::Ne, 2)),
            "<=" => Some((Op::Le, 2)),
            ">=" => Some((Op::Ge, 2)),
            _ => match c {
                '=' => Some((Op::Eq, 1)),
                '<' => Some((Op::Lt, 1)),
                '>' => Some((Op::Gt, 1)),
                _ => None,
            },
        };
        if let Some((op, len)) = op {
            toks.push((Tok::Op(op), start));
            i += len;
            continue;
        }
        let quoted = |i: usize| -> Result<(String, usize), PatternError> {
            // chars[i] is the opening quote.
            let mut out = String::new();
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => return Err(err(i, "unterminated string")),
                    Some('\\') => match chars.get(j + 1) {
                        Some(&e @ ('\'' | '\\')) => {
                            out.push(e);
                            j += 2;
                        }
                        _ => return Err(err(j, "only \\' and \\\\ may be escaped")),
                    },
                    Some('\'') => return Ok((out, j + 1)),
                    Some(&ch) => {
                        out.push(ch);
                        j += 1;
                    }
                }
            }
        };
        if c == '\'' {
            let (s, next) = quoted(i)?;
            toks.push((Tok::Str(s), start));
            i = next;
            continue;
        }
        if matches!(c, 't' | 'h' | 'b') && chars.get(i + 1) == Some(&'\'') {
            let (s, next) = quoted(i + 1)?;
            toks.push((Tok::Typed(c, s), start));
            i = next;
            continue;
        }
        if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' {
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let num: String = chars[i..j].iter().collect();
            if num == "-" || num == "+" {
                return Err(err(i, "sign without a number"));
            }
            toks.push((Tok::Num(num), start));
            i = j;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let mut j = i + 1;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric() || chars[j] == '_' || chars[j] == '-')
            {
                j += 1;
            }
            toks.push((Tok::Word(chars[i..j].iter().collect()), start));
            i = j;
            continue;
        }
        return Err(err(i, &format!("unexpected character `{c}`")));
    }
    Ok(Lexer { toks })
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn column(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(_, c)| *c) + 1
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, PatternError> {
        Err(PatternError {
            column: self.column(),
            message: message.into(),
        })
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.is_word(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), PatternError> {
        if self.peek() == Some(tok) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(format!("expected {what}"))
        }
    }

    fn enter(&mut self) -> Result<(), PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail(format!("nesting deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn observations(&mut self) -> Result<Obs, PatternError> {
        self.enter()?;
        let mut parts = vec![self.obs_or()?];
        while self.eat_word("FOLLOWEDBY") {
            parts.push(self.obs_or()?);
        }
        self.depth -= 1;
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Obs::FollowedBy(parts)
        })
    }

    fn obs_or(&mut self) -> Result<Obs, PatternError> {
        let mut parts = vec![self.obs_and()?];
        while self.eat_word("OR") {
            parts.push(self.obs_and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Obs::Or(parts)
        })
    }

    fn obs_and(&mut self) -> Result<Obs, PatternError> {
        let mut parts = vec![self.observation()?];
        while self.eat_word("AND") {
            parts.push(self.observation()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Obs::And(parts)
        })
    }

    fn observation(&mut self) -> Result<Obs, PatternError> {
        match self.peek() {
            Some(Tok::LBracket) => {
                self.pos += 1;
                let cmp = self.comparisons()?;
                self.expect(&Tok::RBracket, "`]`")?;
                let quals = self.qualifiers()?;
                Ok(Obs::Single(cmp, quals))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.observations()?;
                self.expect(&Tok::RParen, "`)`")?;
                let quals = self.qualifiers()?;
                Ok(Obs::Group(Box::new(inner), quals))
            }
            _ => self.fail("expected `[` or `(` to start an observation"),
        }
    }

    fn qualifiers(&mut self) -> Result<Vec<Qualifier>, PatternError> {
        let mut out = Vec::new();
        loop {
            if self.eat_word("WITHIN") {
                let Some(Tok::Num(n)) = self.peek().cloned() else {
                    return self.fail("expected a number after WITHIN");
                };
                self.pos += 1;
                if !self.eat_word("SECONDS") {
                    return self.fail("expected SECONDS");
                }
                out.push(Qualifier::Within(n));
            } else if self.eat_word("REPEATS") {
                let n = self.int()?;
                if !self.eat_word("TIMES") {
                    return self.fail("expected TIMES");
                }
                out.push(Qualifier::Repeats(n));
            } else if self.eat_word("START") {
                let start = self.timestamp()?;
                if !self.eat_word("STOP") {
                    return self.fail("expected STOP");
                }
                let stop = self.timestamp()?;
                out.push(Qualifier::StartStop(start, stop));
            } else {
                return Ok(out);
            }
        }
    }

    fn int(&mut self) -> Result<i64, PatternError> {
        match self.peek().cloned() {
            Some(Tok::Num(n)) => match n.parse() {
                Ok(v) => {
                    self.pos += 1;
                    Ok(v)
                }
                Err(_) => self.fail("expected an integer"),
            },
            _ => self.fail("expected an integer"),
        }
    }

    fn timestamp(&mut self) -> Result<String, PatternError> {
        match self.peek().cloned() {
            Some(Tok::Typed('t', s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => self.fail("expected a timestamp t'…'"),
        }
    }

    fn comparisons(&mut self) -> Result<Cmp, PatternError> {
        self.enter()?;
        let mut parts = vec![self.cmp_and()?];
        while self.eat_word("OR") {
            parts.push(self.cmp_and()?);
        }
        self.depth -= 1;
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Cmp::Or(parts)
        })
    }

    fn cmp_and(&mut self) -> Result<Cmp, PatternError> {
        let mut parts = vec![self.test()?];
        while self.eat_word("AND") {
            parts.push(self.test()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Cmp::And(parts)
        })
    }

    fn test(&mut self) -> Result<Cmp, PatternError> {
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let inner = self.comparisons()?;
            self.expect(&Tok::RParen, "`)`")?;
            return Ok(inner);
        }
        let exists_negated = self.is_word("NOT")
            && matches!(self.toks.get(self.pos + 1), Some((Tok::Word(w), _)) if w.eq_ignore_ascii_case("EXISTS"));
        if exists_negated {
            self.pos += 1;
        }
        if self.eat_word("EXISTS") {
            return Ok(Cmp::Exists {
                path: self.path()?,
                negated: exists_negated,
            });
        }
        let path = self.path()?;
        let negated = self.eat_word("NOT");
        let op = match self.peek().cloned() {
            Some(Tok::Op(op)) => {
                self.pos += 1;
                op
            }
            Some(Tok::Word(w)) => {
                let op = match w.to_ascii_uppercase().as_str() {
                    "IN" => Op::In,
                    "LIKE" => Op::Like,
                    "MATCHES" => Op::Matches,
                    "ISSUBSET" => Op::IsSubset,
                    "ISSUPERSET" => Op::IsSuperset,
                    _ => return self.fail("expected a comparison operator"),
                };
                self.pos += 1;
                op
            }
            _ => return self.fail("expected a comparison operator"),
        };
        if matches!(op, Op::Like | Op::Matches | Op::IsSubset | Op::IsSuperset)
            && !matches!(self.peek(), Some(Tok::Str(_)))
        {
            return self.fail(format!("{} takes a string", op.as_str()));
        }
        let value = if op == Op::In {
            self.set()?
        } else {
            self.literal()?
        };
        Ok(Cmp::Test {
            path,
            negated,
            op,
            value,
        })
    }

    fn set(&mut self) -> Result<Lit, PatternError> {
        self.expect(&Tok::LParen, "`(` to open a set")?;
        let mut items = vec![self.literal()?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            items.push(self.literal()?);
        }
        self.expect(&Tok::RParen, "`)` to close the set")?;
        Ok(Lit::Set(items))
    }

    fn literal(&mut self) -> Result<Lit, PatternError> {
        let lit = match self.peek().cloned() {
            Some(Tok::Str(s)) => Lit::Str(s),
            Some(Tok::Num(n)) => match n.parse::<i64>() {
                Ok(v) => Lit::Int(v),
                Err(_) if n.parse::<f64>().is_ok() => Lit::Float(n),
                Err(_) => return self.fail("invalid number"),
            },
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Lit::Bool(false),
            Some(Tok::Typed('t', s)) => Lit::Timestamp(s),
            Some(Tok::Typed('h', s)) => Lit::Hex(s),
            Some(Tok::Typed(_, s)) => Lit::Binary(s),
            _ => return self.fail("expected a value"),
        };
        self.pos += 1;
        Ok(lit)
    }

    fn path(&mut self) -> Result<Path, PatternError> {
        let Some(Tok::Word(object)) = self.peek().cloned() else {
            return self.fail("expected an object type such as `ipv4-addr`");
        };
        self.pos += 1;
        self.expect(&Tok::Colon, "`:` after the object type")?;
        let mut steps = vec![self.key()?];
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.pos += 1;
                    steps.push(self.key()?);
                }
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    if self.peek() == Some(&Tok::Star) {
                        self.pos += 1;
                        steps.push(Step::Any);
                    } else {
                        steps.push(Step::Index(self.int()?));
                    }
                    self.expect(&Tok::RBracket, "`]` after a list index")?;
                }
                _ => break,
            }
        }
        Ok(Path { object, steps })
    }

    fn key(&mut self) -> Result<Step, PatternError> {
        match self.peek().cloned() {
            Some(Tok::Word(w)) => {
                self.pos += 1;
                Ok(Step::Key(w))
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Step::Key(s))
            }
            _ => self.fail("expected a property name"),
        }
    }
}

/// Parses a STIX pattern.
pub fn parse(text: &str) -> Result<Obs, PatternError> {
    let lexer = lex(text)?;
    let mut parser = Parser {
        toks: lexer.toks,
        pos: 0,
        depth: 0,
        end: text.chars().count(),
    };
    let obs = parser.observations()?;
    if parser.pos != parser.toks.len() {
        return parser.fail("unexpected text after the pattern");
    }
    Ok(obs)
}

fn write_str_lit(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

fn is_plain_key(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        out.push_str(&self.object);
        out.push(':');
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Key(k) => {
                    if i > 0 {
                        out.push('.');
                    }
                    if is_plain_key(k) {
                        out.push_str(k);
                    } else {
                        write_str_lit(&mut out, k);
                    }
                }
                Step::Index(n) => {
                    let _ = write!(out, "[{n}]");
                }
                Step::Any => out.push_str("[*]"),
            }
        }
        f.write_str(&out)
    }
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        match self {
            Lit::Str(s) => write_str_lit(&mut out, s),
            Lit::Int(n) => out.push_str(&n.to_string()),
            Lit::Float(x) => out.push_str(x),
            Lit::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Lit::Timestamp(s) => {
                out.push('t');
                write_str_lit(&mut out, s);
            }
            Lit::Hex(s) => {
                out.push('h');
                write_str_lit(&mut out, &s.to_ascii_lowercase());
            }
            Lit::Binary(s) => {
                out.push('b');
                write_str_lit(&mut out, s);
            }
            Lit::Set(items) => {
                out.push('(');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&item.to_string());
                }
                out.push(')');
            }
        }
        f.write_str(&out)
    }
}

fn join<T: fmt::Display>(f: &mut fmt::Formatter<'_>, parts: &[T], sep: &str) -> fmt::Result {
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{p}")?;
    }
    Ok(())
}

impl fmt::Display for Cmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cmp::Or(parts) => join(f, parts, " OR "),
            Cmp::And(parts) => {
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" AND ")?;
                    }
                    if matches!(p, Cmp::Or(_)) {
                        write!(f, "({p})")?;
                    } else {
                        write!(f, "{p}")?;
                    }
                }
                Ok(())
            }
            Cmp::Test {
                path,
                negated,
                op,
                value,
            } => {
                write!(
                    f,
                    "{path} {}{} {value}",
                    if *negated { "NOT " } else { "" },
                    op.as_str()
                )
            }
            Cmp::Exists { path, negated } => {
                write!(f, "{}EXISTS {path}", if *negated { "NOT " } else { "" })
            }
        }
    }
}

fn write_quals(f: &mut fmt::Formatter<'_>, quals: &[Qualifier]) -> fmt::Result {
    for q in quals {
        match q {
            Qualifier::Within(n) => write!(f, " WITHIN {n} SECONDS")?,
            Qualifier::Repeats(n) => write!(f, " REPEATS {n} TIMES")?,
            Qualifier::StartStop(a, b) => write!(
                f,
                " START {} STOP {}",
                Lit::Timestamp(a.clone()),
                Lit::Timestamp(b.clone())
            )?,
        }
    }
    Ok(())
}

impl fmt::Display for Obs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Obs::Single(cmp, quals) => {
                write!(f, "[{cmp}]")?;
                write_quals(f, quals)
            }
            Obs::Group(inner, quals) => {
                write!(f, "({inner})")?;
                write_quals(f, quals)
            }
            Obs::Or(parts) => join(f, parts, " OR "),
            Obs::And(parts) => join(f, parts, " AND "),
            Obs::FollowedBy(parts) => join(f, parts, " FOLLOWEDBY "),
        }
    }
}

/// If the pattern is only a disjunction of `path = 'value'` (or `path = 123`) tests with no
/// qualifiers, those tests (each one alone is a match); otherwise `None`.
pub fn simple_equalities(obs: &Obs) -> Option<Vec<(&Path, String)>> {
    fn cmp<'a>(c: &'a Cmp, out: &mut Vec<(&'a Path, String)>) -> bool {
        match c {
            Cmp::Or(parts) => parts.iter().all(|p| cmp(p, out)),
            Cmp::Test {
                path,
                negated: false,
                op: Op::Eq,
                value: Lit::Str(v),
            } => {
                out.push((path, v.clone()));
                true
            }
            Cmp::Test {
                path,
                negated: false,
                op: Op::Eq,
                value: Lit::Int(n),
            } => {
                out.push((path, n.to_string()));
                true
            }
            _ => false,
        }
    }
    fn walk<'a>(o: &'a Obs, out: &mut Vec<(&'a Path, String)>) -> bool {
        match o {
            Obs::Single(c, quals) => quals.is_empty() && cmp(c, out),
            Obs::Group(inner, quals) => quals.is_empty() && walk(inner, out),
            Obs::Or(parts) => parts.iter().all(|p| walk(p, out)),
            Obs::And(_) | Obs::FollowedBy(_) => false,
        }
    }
    let mut out = Vec::new();
    walk(obs, &mut out).then_some(out)
}

/// If the pattern is exactly one observation of a destination address and port
/// (`network-traffic:dst_ref.value = '…' AND network-traffic:dst_port = N`, with or without
/// `dst_ref.type`), the address text and the port: the form Rampart exports `ip_port` in.
pub fn destination_ip_port(obs: &Obs) -> Option<(String, u16)> {
    let Obs::Single(Cmp::And(parts), quals) = obs else {
        return None;
    };
    if !quals.is_empty() {
        return None;
    }
    let (mut addr, mut port) = (None, None);
    for part in parts {
        let Cmp::Test {
            path,
            negated: false,
            op: Op::Eq,
            value,
        } = part
        else {
            return None;
        };
        match (path.plain().as_str(), value) {
            ("network-traffic:dst_ref.value", Lit::Str(v)) if addr.is_none() => addr = Some(v),
            ("network-traffic:dst_port", Lit::Int(n)) if port.is_none() => {
                port = Some(u16::try_from(*n).ok()?);
            }
            ("network-traffic:dst_ref.type", Lit::Str(t))
                if t == "ipv4-addr" || t == "ipv6-addr" => {}
            _ => return None,
        }
    }
    Some((addr?.clone(), port?))
}

impl Path {
    /// `type:a.b` as a plain string with unquoted keys (`file:hashes.SHA-256`), for matching
    /// against known property paths.
    pub fn plain(&self) -> String {
        let mut out = format!("{}:", self.object);
        for (i, step) in self.steps.iter().enumerate() {
            if let Step::Key(k) = step {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(k);
            } else {
                out.push_str("[]");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        match parse(text) {
            Ok(obs) => obs.to_string(),
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn whitespace_and_quoting_do_not_change_the_canonical_form() {
        let a = canonical("[file:hashes.'MD5'  =   'd41d8cd98f00b204e9800998ecf8427e']");
        let b = canonical("[ file:hashes.MD5 == 'd41d8cd98f00b204e9800998ecf8427e' ]");
        assert_eq!(a, b);
        assert_eq!(a, "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']");
        assert_eq!(
            canonical("[file:hashes.'SHA-256' = 'ab']"),
            "[file:hashes.'SHA-256' = 'ab']"
        );
    }

    #[test]
    fn complex_patterns_round_trip() {
        for text in [
            "[email-message:body_multipart[*].body_raw_ref.name MATCHES '^Final Report.+\\\\.exe$']",
            "[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'x.example'] WITHIN 60 SECONDS",
            "([file:name = 'a'] FOLLOWEDBY [file:name = 'b']) REPEATS 5 TIMES",
            "[network-traffic:dst_port IN (80, 443) AND NOT EXISTS network-traffic:src_ref] START t'2016-01-01T00:00:00Z' STOP t'2016-02-01T00:00:00Z'",
            "[x509-certificate:serial_number NOT = 'it\\'s']",
            "[file:size >= 1024 AND (file:name LIKE 'a%' OR file:name LIKE 'b%')]",
        ] {
            let first = canonical(text);
            assert_eq!(canonical(&first), first, "{text}");
        }
    }

    #[test]
    fn or_patterns_reduce_to_equalities_and_others_do_not() {
        let obs = parse("[domain-name:value = 'a.example' OR ipv4-addr:value = '1.2.3.4'] OR [url:value = 'http://x/']")
            .unwrap_or_else(|e| panic!("{e}"));
        let tests = simple_equalities(&obs).unwrap_or_default();
        let plain: Vec<(String, &str)> =
            tests.iter().map(|(p, v)| (p.plain(), v.as_str())).collect();
        assert_eq!(
            plain,
            [
                ("domain-name:value".to_owned(), "a.example"),
                ("ipv4-addr:value".to_owned(), "1.2.3.4"),
                ("url:value".to_owned(), "http://x/")
            ]
        );
        for complex in [
            "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'x']",
            "[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS",
            "[ipv4-addr:value != '1.2.3.4']",
            "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.5']",
        ] {
            let obs = parse(complex).unwrap_or_else(|e| panic!("{e}"));
            assert!(simple_equalities(&obs).is_none(), "{complex}");
        }
    }

    #[test]
    fn errors_name_the_column() {
        for (text, column) in [
            ("[ipv4-addr:value = '1.2.3.4'", 29),
            ("ipv4-addr:value = '1.2.3.4'", 1),
            ("[ipv4-addr:value = '1.2.3.4]", 20),
            ("[ipv4-addr:value ~ 'x']", 18),
            ("[ipv4-addr:value = 'x'] junk", 25),
            ("[ipv4-addr:value MATCHES 5]", 26),
        ] {
            match parse(text) {
                Err(e) => assert_eq!(e.column, column, "{text}: {e}"),
                Ok(obs) => panic!("{text} parsed as {obs}"),
            }
        }
        let deep = format!("{}[a:b = 'c']{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err_and(|e| e.message.contains("nesting")));
    }
}
