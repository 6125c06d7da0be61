//! The part of Go's `text/template` that Prometheus rule files use, with Prometheus's template
//! functions and its `missingkey=zero` option (a missing label prints as an empty string).
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and `/* */` comments; pipelines
//! with `|`; variables (`$x := …`, `$x = …`, `$`); field chains (`.Labels.job`, `$labels.job`);
//! string, raw-string, number, `true`/`false`/`nil` literals; parenthesised pipelines; `if`/`else
//! if`/`else`, `with`, `range` over maps (sorted keys, as Go), `end`. Functions: Go's `printf`,
//! `print`, `println`, `len`, `index`, `not`, `and`, `or`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `html`,
//! `urlquery`, and Prometheus's `humanize`, `humanize1024`, `humanizeDuration`,
//! `humanizePercentage`, `humanizeTimestamp`, `toUpper`, `toLower`, `title`, `match`,
//! `reReplaceAll`, `stripPort`, `stripDomain`, `safeHtml`, `externalURL`. Not supported (a parse
//! error names them): `query` and the functions over its results (`first`, `label`, `value`,
//! `sortByLabel`), `define`/`template`/`block`, `tmpl`, `pathPrefix`. See ARCHITECTURE.md for why
//! this is hand-written.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::gofmt;

/// A template that failed to parse or to execute; the message is worded like Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// A value inside a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go's `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer literal or `len` result.
    Int(i64),
    /// A float64 (`$value`).
    Float(f64),
    /// A string.
    Str(String),
    /// A map (`$labels`) or the template's data struct.
    Map(BTreeMap<String, Value>),
}

impl Value {
    fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Map(_) => "map[string]string",
        }
    }

    /// Go's `fmt.Sprint` of the value (`%v`).
    fn print(&self) -> String {
        match self {
            Value::Nil => "<no value>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => gofmt::format_v(*f),
            Value::Str(s) => s.clone(),
            Value::Map(m) => {
                let inner: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.print()))
                    .collect();
                format!("map[{}]", inner.join(" "))
            }
        }
    }

    /// Prometheus's `convertToFloat`: floats, integers and numeric strings.
    fn to_float(&self) -> Result<f64, TemplateError> {
        match self {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::Str(s) => s
                .trim()
                .parse::<f64>()
                .or_else(|_| err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))),
            other => err(format!("can't convert {} to float", other.type_name())),
        }
    }
}

/// The data a rule's templates see: `.Labels`, `.Value`, `.ExternalLabels`, `.ExternalURL`, and
/// the variables `$labels`, `$value`, `$externalLabels`, `$externalURL` Prometheus defines.
pub fn alert_data(
    labels: &edgeprom_model::Labels,
    value: f64,
    external_labels: &edgeprom_model::Labels,
    external_url: &str,
) -> Value {
    let map = |l: &edgeprom_model::Labels| {
        Value::Map(
            l.iter()
                .map(|l| (l.name.clone(), Value::Str(l.value.clone())))
                .collect(),
        )
    };
    let mut m = BTreeMap::new();
    m.insert("Labels".into(), map(labels));
    m.insert("Value".into(), Value::Float(value));
    m.insert("ExternalLabels".into(), map(external_labels));
    m.insert("ExternalURL".into(), Value::Str(external_url.into()));
    Value::Map(m)
}

/// The variables Prometheus prepends to every rule template.
const DEFS: [(&str, &str); 4] = [
    ("$labels", "Labels"),
    ("$externalLabels", "ExternalLabels"),
    ("$externalURL", "ExternalURL"),
    ("$value", "Value"),
];

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Vec<(Pipeline, Vec<Node>)>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Var(String),
    Field(String),
    Dot,
    Str(String),
    Num(String),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

const FUNCS: &[&str] = &[
    "printf",
    "print",
    "println",
    "len",
    "index",
    "not",
    "and",
    "or",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "urlquery",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toUpper",
    "toLower",
    "title",
    "match",
    "reReplaceAll",
    "stripPort",
    "stripDomain",
    "safeHtml",
    "externalURL",
];

fn lex_action(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                // A field chain may follow a parenthesised pipeline: `(index $x 0).Name`.
                out.push(Tok::Close);
                i += 1;
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            b'"' => {
                let mut s = String::new();
                i += 1;
                let mut chars = src[i..].char_indices();
                let mut closed = false;
                while let Some((k, ch)) = chars.next() {
                    match ch {
                        '"' => {
                            i += k + 1;
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, 'n')) => s.push('\n'),
                            Some((_, 't')) => s.push('\t'),
                            Some((_, 'r')) => s.push('\r'),
                            Some((_, '\\')) => s.push('\\'),
                            Some((_, '"')) => s.push('"'),
                            Some((_, '\'')) => s.push('\''),
                            Some((_, other)) => {
                                return err(format!("unknown escape sequence \\{other}"));
                            }
                            None => break,
                        },
                        '\n' => break,
                        _ => s.push(ch),
                    }
                }
                if !closed {
                    return err("unterminated quoted string");
                }
                out.push(Tok::Str(s));
            }
            b'`' => {
                let rest = &src[i + 1..];
                let Some(end) = rest.find('`') else {
                    return err("unterminated raw quoted string");
                };
                out.push(Tok::Str(rest[..end].to_string()));
                i += end + 2;
            }
            b'$' => {
                let start = i;
                i += 1;
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                out.push(Tok::Var(src[start..i].to_string()));
            }
            b'.' => {
                i += 1;
                if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
                    let start = i;
                    while i < b.len() && ident_char(b[i]) {
                        i += 1;
                    }
                    out.push(Tok::Field(src[start..i].to_string()));
                } else if i < b.len() && b[i].is_ascii_digit() {
                    let start = i - 1;
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                        i += 1;
                    }
                    out.push(Tok::Num(src[start..i].to_string()));
                } else {
                    out.push(Tok::Dot);
                }
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let start = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'.'
                        || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                out.push(Tok::Num(src[start..i].to_string()));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(src[start..i].to_string()));
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return err(format!("unexpected {ch:?} in command"));
            }
        }
    }
    Ok(out)
}

fn parse_num(s: &str) -> Result<Value, TemplateError> {
    let clean = s.replace('_', "");
    if let Some(h) = clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
        && let Ok(i) = i64::from_str_radix(h, 16)
    {
        return Ok(Value::Int(i));
    }
    if let Ok(i) = clean.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    if let Ok(f) = clean.parse::<f64>()
        && !clean.contains("inf")
        && !clean.contains("nan")
    {
        return Ok(Value::Float(f));
    }
    err(format!("bad number syntax: {s:?}"))
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    vars: &'a mut Vec<String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn fields(&mut self) -> Vec<String> {
        let mut f = Vec::new();
        while let Some(Tok::Field(name)) = self.peek() {
            f.push(name.clone());
            self.pos += 1;
        }
        f
    }

    fn pipeline(&mut self, allow_decl: bool) -> Result<Pipeline, TemplateError> {
        let mut decl = Vec::new();
        let mut assign = false;
        if allow_decl && let Some(Tok::Var(_)) = self.peek() {
            // `$x :=`, `$x =`, `$k, $v :=`.
            let save = self.pos;
            let mut names = Vec::new();
            while let Some(Tok::Var(v)) = self.peek() {
                names.push(v.clone());
                self.pos += 1;
                if self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            match self.peek() {
                Some(Tok::Declare) => {
                    self.pos += 1;
                    decl = names;
                }
                Some(Tok::Assign) => {
                    self.pos += 1;
                    for n in &names {
                        if !self.vars.contains(n) {
                            return err(format!("undefined variable {n:?}"));
                        }
                    }
                    decl = names;
                    assign = true;
                }
                _ => self.pos = save,
            }
        }
        let mut cmds = Vec::new();
        loop {
            let mut cmd = Vec::new();
            while let Some(t) = self.peek() {
                match t {
                    Tok::Pipe | Tok::Close => break,
                    _ => cmd.push(self.operand()?),
                }
            }
            if cmd.is_empty() {
                return err("missing value for command");
            }
            cmds.push(cmd);
            if self.peek() == Some(&Tok::Pipe) {
                self.pos += 1;
            } else {
                break;
            }
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipeline { decl, assign, cmds })
    }

    fn operand(&mut self) -> Result<Arg, TemplateError> {
        let Some(t) = self.peek().cloned() else {
            return err("unexpected end of action");
        };
        self.pos += 1;
        Ok(match t {
            Tok::Dot => Arg::Dot(Vec::new()),
            Tok::Field(f) => {
                let mut fields = vec![f];
                fields.extend(self.fields());
                Arg::Dot(fields)
            }
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return err(format!("undefined variable {v:?}"));
                }
                Arg::Var(v, self.fields())
            }
            Tok::Str(s) => Arg::Lit(Value::Str(s)),
            Tok::Num(n) => Arg::Lit(parse_num(&n)?),
            Tok::Ident(id) => match id.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Lit(Value::Nil),
                f if FUNCS.contains(&f) => Arg::Func(id),
                _ => return err(format!("function {id:?} not defined")),
            },
            Tok::Open => {
                let p = self.pipeline(true)?;
                if self.peek() != Some(&Tok::Close) {
                    return err("unclosed left paren");
                }
                self.pos += 1;
                Arg::Sub(Box::new(p), self.fields())
            }
            other => return err(format!("unexpected {other:?} in operand")),
        })
    }
}

enum Item {
    Text(String),
    Action(Vec<Tok>),
}

/// Splits the source into text and actions, applying trim markers and dropping comments.
fn split(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner = &rest[open + 2..];
        if let Some(r) = inner
            .strip_prefix("- ")
            .or_else(|| inner.strip_prefix("-\t"))
        {
            text = text.trim_end();
            inner = r;
        } else if let Some(r) = inner.strip_prefix("-\n") {
            text = text.trim_end();
            inner = r;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let trimmed = inner.trim_start();
        let (body, after) = if let Some(c) = trimmed.strip_prefix("/*") {
            let Some(end) = c.find("*/") else {
                return err("unclosed comment");
            };
            let after = c[end + 2..].trim_start();
            let Some(after) = after
                .strip_prefix("}}")
                .map(|a| (false, a))
                .or_else(|| after.strip_prefix("-}}").map(|a| (true, a)))
            else {
                return err("comment ends before closing delimiter");
            };
            trim_next = after.0;
            rest = after.1;
            continue;
        } else {
            // Quoted strings may contain `}}`, so the end is found outside quotes.
            let bytes = inner.as_bytes();
            let mut i = 0;
            let mut quote: Option<u8> = None;
            let mut end = None;
            while i < bytes.len() {
                let c = bytes[i];
                match quote {
                    Some(q) => {
                        if c == b'\\' && q == b'"' {
                            i += 1;
                        } else if c == q {
                            quote = None;
                        }
                    }
                    None => {
                        if c == b'"' || c == b'`' {
                            quote = Some(c);
                        // Bytes, not `inner[i..]`: `i` can sit inside a multi-byte character.
                        } else if bytes[i..].starts_with(b"}}") {
                            end = Some(i);
                            break;
                        }
                    }
                }
                i += 1;
            }
            let Some(end) = end else {
                return err("unclosed action");
            };
            let mut body = &inner[..end];
            trim_next = false;
            if let Some(b) = body.strip_suffix(" -").or_else(|| body.strip_suffix("\t-")) {
                body = b;
                trim_next = true;
            } else if let Some(b) = body.strip_suffix("\n-") {
                body = b;
                trim_next = true;
            }
            (body, &inner[end + 2..])
        };
        items.push(Item::Action(lex_action(body)?));
        rest = after;
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
    Ok(items)
}

enum ListEnd {
    Eof,
    End,
    Else(Option<Vec<Tok>>),
}

fn parse_list(
    items: &mut std::iter::Peekable<std::vec::IntoIter<Item>>,
    vars: &mut Vec<String>,
) -> Result<(Vec<Node>, ListEnd), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(item) = items.next() {
        let toks = match item {
            Item::Text(t) => {
                nodes.push(Node::Text(t));
                continue;
            }
            Item::Action(t) => t,
        };
        let keyword = match toks.first() {
            Some(Tok::Ident(k)) => k.as_str(),
            None => return err("missing value for command"),
            _ => "",
        };
        let pipe_of = |toks: &[Tok], vars: &mut Vec<String>| {
            let mut p = Parser { toks, pos: 0, vars };
            let pipe = p.pipeline(true)?;
            if p.pos != toks.len() {
                return err("unexpected tokens after pipeline");
            }
            Ok(pipe)
        };
        match keyword {
            "end" => return Ok((nodes, ListEnd::End)),
            "else" => {
                let rest = &toks[1..];
                return Ok((
                    nodes,
                    ListEnd::Else(if rest.is_empty() {
                        None
                    } else {
                        Some(rest.to_vec())
                    }),
                ));
            }
            "if" | "with" | "range" => {
                let scope = vars.len();
                let pipe = pipe_of(&toks[1..], vars)?;
                let (body, end) = parse_list(items, vars)?;
                let (else_nodes, chain) = match end {
                    ListEnd::Eof => return err(format!("unexpected EOF in {keyword}")),
                    ListEnd::End => (Vec::new(), Vec::new()),
                    ListEnd::Else(None) => {
                        let (e, end) = parse_list(items, vars)?;
                        if !matches!(end, ListEnd::End) {
                            return err(format!("expected end; found else in {keyword}"));
                        }
                        (e, Vec::new())
                    }
                    ListEnd::Else(Some(rest)) => {
                        // `else if …` chains: parsed as a nested if sharing our end.
                        if keyword != "if"
                            || !matches!(rest.first(), Some(Tok::Ident(k)) if k == "if")
                        {
                            return err("unexpected tokens after else");
                        }
                        let mut chain = Vec::new();
                        let mut cond = rest[1..].to_vec();
                        let tail;
                        loop {
                            let p = pipe_of(&cond, vars)?;
                            let (b, end) = parse_list(items, vars)?;
                            chain.push((p, b));
                            match end {
                                ListEnd::End => {
                                    tail = Vec::new();
                                    break;
                                }
                                ListEnd::Else(None) => {
                                    let (e, end) = parse_list(items, vars)?;
                                    if !matches!(end, ListEnd::End) {
                                        return err("expected end in if");
                                    }
                                    tail = e;
                                    break;
                                }
                                ListEnd::Else(Some(r)) if matches!(r.first(), Some(Tok::Ident(k)) if k == "if") =>
                                {
                                    cond = r[1..].to_vec();
                                }
                                _ => return err("unexpected EOF in if"),
                            }
                        }
                        (tail, chain)
                    }
                };
                vars.truncate(scope);
                nodes.push(match keyword {
                    "if" => {
                        let mut branches = vec![(pipe, body)];
                        branches.extend(chain);
                        Node::If(branches, else_nodes)
                    }
                    "with" => Node::With(pipe, body, else_nodes),
                    _ => Node::Range(pipe, body, else_nodes),
                });
            }
            "define" | "template" | "block" | "break" | "continue" => {
                return err(format!("{{{{{keyword}}}}} is not supported by edgeprom"));
            }
            _ => nodes.push(Node::Action(pipe_of(&toks, vars)?)),
        }
    }
    Ok((nodes, ListEnd::Eof))
}

impl Template {
    /// A template that prints `text` as it is.
    pub fn literal(text: &str) -> Template {
        Template {
            nodes: vec![Node::Text(text.to_string())],
        }
    }

    /// Parses a rule template (with `$labels`, `$value`, `$externalLabels`, `$externalURL`
    /// defined, as Prometheus defines them).
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let items = split(src)?;
        let mut vars: Vec<String> = vec!["$".into()];
        vars.extend(DEFS.iter().map(|(v, _)| v.to_string()));
        let mut it = items.into_iter().peekable();
        let (nodes, end) = parse_list(&mut it, &mut vars)?;
        match end {
            ListEnd::Eof => Ok(Template { nodes }),
            ListEnd::End => err("unexpected {{end}}"),
            ListEnd::Else(_) => err("unexpected {{else}}"),
        }
    }

    /// Runs the template over `data` (see [`alert_data`]).
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        let mut vars: Vec<(String, Value)> = vec![("$".into(), data.clone())];
        for (v, field) in DEFS {
            vars.push((v.into(), field_of(data, field)?));
        }
        let mut out = String::new();
        exec_list(&self.nodes, data, &mut vars, &mut out)?;
        Ok(out)
    }
}

/// Parses and runs `src` in one go; the error is what Prometheus would put in the annotation.
pub fn expand(src: &str, data: &Value) -> Result<String, TemplateError> {
    Template::parse(src)?.execute(data)
}

// ---------------------------------------------------------------------------------------------
// Execution

fn field_of(v: &Value, name: &str) -> Result<Value, TemplateError> {
    match v {
        // `missingkey=zero` over map[string]string: the zero value, an empty string.
        Value::Map(m) => Ok(m.get(name).cloned().unwrap_or(Value::Str(String::new()))),
        Value::Nil => err(format!("nil pointer evaluating .{name}")),
        other => err(format!(
            "can't evaluate field {name} in type {}",
            other.type_name()
        )),
    }
}

fn chain(mut v: Value, fields: &[String]) -> Result<Value, TemplateError> {
    for f in fields {
        v = field_of(&v, f)?;
    }
    Ok(v)
}

fn exec_list(
    nodes: &[Node],
    dot: &Value,
    vars: &mut Vec<(String, Value)>,
    out: &mut String,
) -> Result<(), TemplateError> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = exec_pipe(p, dot, vars)?;
                if p.decl.is_empty() {
                    out.push_str(&v.print());
                }
            }
            Node::If(branches, else_nodes) => {
                let scope = vars.len();
                let mut done = false;
                for (cond, body) in branches {
                    if exec_pipe(cond, dot, vars)?.truth() {
                        exec_list(body, dot, vars, out)?;
                        done = true;
                        break;
                    }
                }
                if !done {
                    exec_list(else_nodes, dot, vars, out)?;
                }
                vars.truncate(scope);
            }
            Node::With(p, body, else_nodes) => {
                let scope = vars.len();
                let v = exec_pipe(p, dot, vars)?;
                if v.truth() {
                    exec_list(body, &v, vars, out)?;
                } else {
                    exec_list(else_nodes, dot, vars, out)?;
                }
                vars.truncate(scope);
            }
            Node::Range(p, body, else_nodes) => {
                let scope = vars.len();
                let mut inner = p.clone();
                let decl = std::mem::take(&mut inner.decl);
                let v = exec_pipe(&inner, dot, vars)?;
                match v {
                    Value::Map(m) if !m.is_empty() => {
                        for (k, item) in m {
                            let s = vars.len();
                            match decl.as_slice() {
                                [] => {}
                                [val] => vars.push((val.clone(), item.clone())),
                                [key, val, ..] => {
                                    vars.push((key.clone(), Value::Str(k)));
                                    vars.push((val.clone(), item.clone()));
                                }
                            }
                            exec_list(body, &item, vars, out)?;
                            vars.truncate(s);
                        }
                    }
                    Value::Map(_) | Value::Nil => exec_list(else_nodes, dot, vars, out)?,
                    other => {
                        return err(format!("range can't iterate over {}", other.print()));
                    }
                }
                vars.truncate(scope);
            }
        }
    }
    Ok(())
}

fn exec_pipe(
    p: &Pipeline,
    dot: &Value,
    vars: &mut Vec<(String, Value)>,
) -> Result<Value, TemplateError> {
    let mut piped: Option<Value> = None;
    for cmd in &p.cmds {
        piped = Some(exec_cmd(cmd, dot, vars, piped)?);
    }
    let v = piped.unwrap_or(Value::Nil);
    if let Some(name) = p.decl.first() {
        if p.assign {
            if let Some(slot) = vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v.clone();
            }
        } else {
            vars.push((name.clone(), v.clone()));
        }
    }
    Ok(v)
}

fn eval_arg(a: &Arg, dot: &Value, vars: &mut Vec<(String, Value)>) -> Result<Value, TemplateError> {
    match a {
        Arg::Dot(fields) => chain(dot.clone(), fields),
        Arg::Var(name, fields) => {
            let v = vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Nil);
            chain(v, fields)
        }
        Arg::Lit(v) => Ok(v.clone()),
        Arg::Sub(p, fields) => chain(exec_pipe(p, dot, vars)?, fields),
        Arg::Func(name) => call(name, &[]),
    }
}

fn exec_cmd(
    cmd: &[Arg],
    dot: &Value,
    vars: &mut Vec<(String, Value)>,
    piped: Option<Value>,
) -> Result<Value, TemplateError> {
    match &cmd[0] {
        Arg::Func(name) => {
            let mut args = Vec::with_capacity(cmd.len());
            for a in &cmd[1..] {
                args.push(eval_arg(a, dot, vars)?);
            }
            args.extend(piped);
            call(name, &args)
        }
        first => {
            if cmd.len() > 1 || piped.is_some() {
                return err("can't give argument to non-function");
            }
            eval_arg(first, dot, vars)
        }
    }
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), TemplateError> {
    if args.len() != n {
        return err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn as_str<'a>(name: &str, v: &'a Value) -> Result<&'a str, TemplateError> {
    match v {
        Value::Str(s) => Ok(s),
        other => err(format!(
            "wrong type for value; expected string; got {} in {name}",
            other.type_name()
        )),
    }
}

fn compare(name: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, TemplateError> {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Less),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) if name == "eq" || name == "ne" => x.cmp(y),
        _ => {
            return err(format!(
                "error calling {name}: incompatible types for comparison"
            ));
        }
    };
    Ok(ord)
}

fn call(name: &str, args: &[Value]) -> Result<Value, TemplateError> {
    use std::cmp::Ordering::*;
    let one = |args: &[Value]| -> Result<Value, TemplateError> {
        want(name, args, 1)?;
        Ok(args[0].clone())
    };
    let float = |args: &[Value]| -> Result<f64, TemplateError> {
        want(name, args, 1)?;
        args[0]
            .to_float()
            .map_err(|e| TemplateError(format!("error calling {name}: {}", e.0)))
    };
    let s = |v: String| Ok(Value::Str(v));
    match name {
        "printf" => {
            let Some((fmt, rest)) = args.split_first() else {
                return err("wrong number of args for printf: want at least 1 got 0");
            };
            s(sprintf(as_str(name, fmt)?, rest))
        }
        "print" => s(sprint(args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::print).collect();
            s(parts.join(" ") + "\n")
        }
        "len" => match one(args)? {
            Value::Str(x) => Ok(Value::Int(x.len() as i64)),
            Value::Map(m) => Ok(Value::Int(m.len() as i64)),
            other => err(format!(
                "error calling len: len of type {}",
                other.type_name()
            )),
        },
        "index" => {
            let mut v = args.first().cloned().unwrap_or(Value::Nil);
            for k in &args[1.min(args.len())..] {
                v = match (&v, k) {
                    (Value::Map(m), Value::Str(key)) => {
                        m.get(key).cloned().unwrap_or(Value::Str(String::new()))
                    }
                    _ => return err("error calling index: cannot index"),
                };
            }
            Ok(v)
        }
        "not" => Ok(Value::Bool(!one(args)?.truth())),
        "and" => Ok(args
            .iter()
            .find(|a| !a.truth())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Nil)),
        "or" => Ok(args
            .iter()
            .find(|a| a.truth())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Nil)),
        "eq" => {
            if args.len() < 2 {
                return err("missing argument for comparison");
            }
            for b in &args[1..] {
                if compare(name, &args[0], b)? == Equal {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(name, args, 2)?;
            let o = compare(name, &args[0], &args[1])?;
            Ok(Value::Bool(match name {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            }))
        }
        "html" => s(html_escape(&sprint(args))),
        "safeHtml" => s(one(args)?.print()),
        "urlquery" => s(form_urlencoded::byte_serialize(sprint(args).as_bytes()).collect()),
        "humanize" => s(humanize(float(args)?)),
        "humanize1024" => s(humanize1024(float(args)?)),
        "humanizeDuration" => s(humanize_duration(float(args)?)),
        "humanizePercentage" => s(format!(
            "{}%",
            gofmt::format_g(float(args)? * 100.0, Some(4))
        )),
        "humanizeTimestamp" => s(humanize_timestamp(float(args)?)),
        "toUpper" => s(as_str(name, &one(args)?)?.to_uppercase()),
        "toLower" => s(as_str(name, &one(args)?)?.to_lowercase()),
        "title" => s(title(as_str(name, &one(args)?)?)),
        "match" => {
            want(name, args, 2)?;
            let re = go_regex(as_str(name, &args[0])?)
                .map_err(|e| TemplateError(format!("error calling match: {e}")))?;
            Ok(Value::Bool(re.is_match(as_str(name, &args[1])?)))
        }
        "reReplaceAll" => {
            want(name, args, 3)?;
            let re = go_regex(as_str(name, &args[0])?)
                .map_err(|e| TemplateError(format!("error calling reReplaceAll: {e}")))?;
            let repl = as_str(name, &args[1])?;
            s(re.replace_all(as_str(name, &args[2])?, repl).into_owned())
        }
        "stripPort" => {
            let hp = one(args)?.print();
            let host = match hp.rsplit_once(':') {
                Some((h, p)) if !p.contains(']') => h.trim_matches(['[', ']']).to_string(),
                _ => hp,
            };
            s(host)
        }
        "stripDomain" => {
            let hp = one(args)?.print();
            let (host, port) = match hp.rsplit_once(':') {
                Some((h, p)) if !p.contains(']') && !h.contains(':') => (h.to_string(), Some(p)),
                _ => (hp.clone(), None),
            };
            if host.parse::<std::net::IpAddr>().is_ok() {
                return s(hp);
            }
            let short = host.split('.').next().unwrap_or_default().to_string();
            s(match port {
                Some(p) => format!("{short}:{p}"),
                None => short,
            })
        }
        "externalURL" => err("externalURL is available as $externalURL in rule templates"),
        _ => err(format!("function {name:?} not defined")),
    }
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&#34;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&a.print());
    }
    out
}

/// Prometheus's `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return gofmt::format_g(v, Some(4));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", gofmt::format_g(v, Some(4)))
}

/// Prometheus's `humanize1024`: binary prefixes, 4 significant digits.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return gofmt::format_g(v, Some(4));
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", gofmt::format_g(v, Some(4)))
}

/// Prometheus's `humanizeDuration` over seconds.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return gofmt::format_g(v, Some(4));
    }
    if v == 0.0 {
        return "0s".into();
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", gofmt::format_g(v, Some(4)));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", gofmt::format_g(v, Some(4)))
}

/// Prometheus's `humanizeTimestamp`: Go's `time.Time.String()` in UTC.
fn humanize_timestamp(v: f64) -> String {
    if !v.is_finite() {
        return gofmt::format_g(v, Some(4));
    }
    // Prometheus goes through model.Time, which keeps milliseconds.
    let ms = ((v * 1e9) as i64).div_euclid(1_000_000);
    let (secs, sub_ms) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    match chrono::DateTime::from_timestamp(secs, (sub_ms * 1_000_000) as u32) {
        Some(t) => {
            let mut frac = format!("{:09}", t.timestamp_subsec_nanos());
            while frac.ends_with('0') {
                frac.pop();
            }
            let frac = if frac.is_empty() {
                String::new()
            } else {
                format!(".{frac}")
            };
            format!("{}{frac} +0000 UTC", t.format("%Y-%m-%d %H:%M:%S"))
        }
        None => gofmt::format_g(v, Some(4)),
    }
}

/// Go's deprecated `strings.Title`: upper-cases the first letter of every word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        let is_word = c.is_alphanumeric() || c == '_' || c == '\'';
        if is_word && !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = is_word;
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %f %F %e %g %q %x %X %t %%`, flags
/// `+ - 0 space #`, width and precision; wrong types print Go's `%!verb(type=value)`.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut argi = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space) = (false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        // Go's fmt refuses widths and precisions over 1e6 (`%!(BADWIDTH)`, `%!(BADPREC)`); without
        // that bound `%99999999999d` in an annotation would pad to gigabytes, or overflow.
        const MAX_WIDTH: usize = 1_000_000;
        let mut width = None;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = Some(
                width
                    .unwrap_or(0usize)
                    .saturating_mul(10)
                    .saturating_add(d as usize),
            );
            chars.next();
        }
        if width.is_some_and(|w| w > MAX_WIDTH) {
            out.push_str("%!(BADWIDTH)");
            width = None;
        }
        let mut prec = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0usize;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                p = p.saturating_mul(10).saturating_add(d as usize);
                chars.next();
            }
            if p > MAX_WIDTH {
                out.push_str("%!(BADPREC)");
            } else {
                prec = Some(p);
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        let bad = || format!("%!{verb}({}={})", arg.type_name(), arg.print());
        let sign = |s: String, neg: bool| {
            if neg {
                s
            } else if plus {
                format!("+{s}")
            } else if space {
                format!(" {s}")
            } else {
                s
            }
        };
        let body = match (verb, arg) {
            ('v', Value::Float(f)) => sign(
                prec.map_or_else(|| gofmt::format_v(*f), |p| gofmt::format_g(*f, Some(p))),
                f.is_sign_negative(),
            ),
            ('v', Value::Int(i)) | ('d', Value::Int(i)) => sign(i.to_string(), *i < 0),
            ('v', v) | ('s', v) => {
                let s = v.print();
                match prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            ('t', Value::Bool(b)) => b.to_string(),
            ('f' | 'F', Value::Float(f)) => {
                sign(gofmt::format_f(*f, prec.unwrap_or(6)), f.is_sign_negative())
            }
            ('e', Value::Float(f)) => {
                sign(gofmt::format_e(*f, prec.unwrap_or(6)), f.is_sign_negative())
            }
            ('g', Value::Float(f)) => sign(gofmt::format_g(*f, prec), f.is_sign_negative()),
            ('q', Value::Str(s)) => format!("{s:?}"),
            ('x', Value::Int(i)) => format!("{i:x}"),
            ('X', Value::Int(i)) => format!("{i:X}"),
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            _ => bad(),
        };
        let len = body.chars().count();
        match width {
            Some(w) if w > len => {
                let pad = w - len;
                if minus {
                    out.push_str(&body);
                    out.extend(std::iter::repeat_n(' ', pad));
                } else if zero && matches!(arg, Value::Int(_) | Value::Float(_)) {
                    let (s, digits) = match body.strip_prefix(['-', '+']) {
                        Some(d) => (&body[..1], d),
                        None => ("", body.as_str()),
                    };
                    out.push_str(s);
                    out.extend(std::iter::repeat_n('0', pad));
                    out.push_str(digits);
                } else {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    if argi < args.len() {
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), a.print()))
            .collect();
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    out
}

/// A template's regex, refused where Go's `regexp` (which Prometheus's templates use) refuses it.
fn go_regex(pattern: &str) -> Result<regex::Regex, String> {
    edgeprom_model::goregex::check(pattern).map_err(|e| e.to_string())?;
    regex::Regex::new(pattern).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeprom_model::Labels;

    fn data(v: f64) -> Value {
        let labels = Labels::from_pairs([("device_id", "0"), ("instance", "xpu-host:9966")]);
        let ext = Labels::from_pairs([("cluster", "edge-1")]);
        alert_data(&labels, v, &ext, "http://edge:9090")
    }

    fn run(src: &str, v: f64) -> String {
        match expand(src, &data(v)) {
            Ok(s) => s,
            Err(e) => format!("ERR {e}"),
        }
    }

    #[test]
    fn xpu_rule_annotations_expand_as_in_prometheus() {
        assert_eq!(
            run(
                "XPU device {{ $labels.device_id }} GPU temperature is {{ $value | printf \"%.1f\" }}°C (threshold: 85°C)",
                96.54
            ),
            "XPU device 0 GPU temperature is 96.5°C (threshold: 85°C)"
        );
        assert_eq!(
            run("usage is {{ $value | humanizePercentage }}", 0.9312345),
            "usage is 93.12%"
        );
        assert_eq!(
            run(
                "Cannot scrape XPU metrics from {{ $labels.instance }}.",
                0.0
            ),
            "Cannot scrape XPU metrics from xpu-host:9966."
        );
    }

    #[test]
    fn variables_fields_and_control_flow() {
        assert_eq!(run("{{ $value }}", 1e6), "1e+06");
        assert_eq!(run("{{ .Value }} {{ .Labels.device_id }}", 3.0), "3 0");
        assert_eq!(run("[{{ $labels.missing }}]", 1.0), "[]");
        assert_eq!(run("{{ $externalLabels.cluster }}", 1.0), "edge-1");
        assert_eq!(run("{{ $externalURL }}", 1.0), "http://edge:9090");
        assert_eq!(
            run(
                "{{ if gt $value 80.0 }}hot{{ else if gt $value 50.0 }}warm{{ else }}cold{{ end }}",
                60.0
            ),
            "warm"
        );
        assert!(run("{{ if gt $value 80 }}x{{ end }}", 1.0).starts_with("ERR"));
        assert_eq!(run("{{ $x := 5 }}{{ $x }}{{/* c */}}", 1.0), "5");
        assert_eq!(run("a  {{- \" b \" -}}  c", 1.0), "a b c");
        assert_eq!(
            run(
                "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
                1.0
            ),
            "device_id=0;instance=xpu-host:9966;"
        );
        assert_eq!(
            run("{{ with $labels.device_id }}dev {{ . }}{{ end }}", 1.0),
            "dev 0"
        );
        assert_eq!(
            run("{{ $labels.instance | stripPort | toUpper }}", 1.0),
            "XPU-HOST"
        );
        assert_eq!(run("{{ \"hello world\" | title }}", 1.0), "Hello World");
        assert_eq!(run("{{ toLower \"AbC\" }}", 1.0), "abc");
        assert_eq!(
            run(
                "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}",
                1.0
            ),
            "xpu-host"
        );
        // Go's `regexp` refuses repeat counts over 1000, so do the templates.
        let e = run("{{ reReplaceAll \"(a|b){10000}\" \"x\" \"ab\" }}", 1.0);
        assert!(
            e.starts_with("ERR ")
                && e.contains("error calling reReplaceAll: error parsing regexp: invalid repeat count: `{10000}`"),
            "{e}"
        );
        assert_eq!(
            run("{{ reReplaceAll \"(a|b){1000}\" \"x\" \"ab\" }}", 1.0),
            "ab"
        );
    }

    #[test]
    fn humanize_functions_match_prometheus() {
        // Expected strings from Prometheus's template tests and Go's formatting.
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.00123), "1.23m");
        assert_eq!(humanize(-1500.0), "-1.5k");
        assert_eq!(humanize(f64::INFINITY), "+Inf");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize1024(1.0), "1");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(95.0), "1m 35s");
        assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(1.5), "1.5s");
        assert_eq!(humanize_duration(0.0012), "1.2ms");
        assert_eq!(
            run("{{ humanizeTimestamp 1435065584.128 }}", 1.0),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(run("{{ 0.5 | humanizePercentage }}", 1.0), "50%");
    }

    #[test]
    fn printf_follows_go() {
        assert_eq!(sprintf("%d%%", &[Value::Int(5)]), "5%");
        assert_eq!(
            sprintf(
                "%5.2f|%-4d|%04d",
                &[Value::Float(4.56789), Value::Int(7), Value::Int(-7)]
            ),
            " 4.57|7   |-007"
        );
        assert_eq!(sprintf("%d", &[Value::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(
            sprintf("%s %s", &[Value::Str("a".into())]),
            "a %!s(MISSING)"
        );
        assert_eq!(
            sprintf("%v", &[Value::Float(2.0), Value::Int(1)]),
            "2%!(EXTRA int=1)"
        );
        assert_eq!(sprintf("%q", &[Value::Str("x\"y".into())]), "\"x\\\"y\"");
    }

    #[test]
    fn parse_errors_are_reported_not_hung() {
        for bad in [
            "{{ .Foo ",
            "{{ nosuch 1 }}",
            "{{ $undefined }}",
            "{{ if true }}x",
            "{{ end }}",
            "{{ \"unterminated }}",
            "{{ query \"up\" }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    /// Regression (fuzz target `rules`): an action holding a multi-byte character before its
    /// `}}` sliced the text inside the character and panicked (`{{ $value | h\u{fffd}manize }}`).
    #[test]
    fn action_with_multibyte_character_does_not_panic() {
        for src in [
            "{{ $value | h\u{fffd}manize }}",
            "{{ $labels.dévice }}",
            "{{ Љ }}",
        ] {
            let _ = Template::parse(src);
        }
    }

    /// Regression (issue #12): a width or precision of many digits in a rule's template
    /// overflowed (a panic in debug builds) or padded the output to gigabytes; beyond Go's bound
    /// of 1e6 they print Go's `%!(BADWIDTH)`/`%!(BADPREC)` instead.
    #[test]
    fn printf_with_absurd_width_or_precision_is_bounded() {
        for src in [
            r#"{{ printf "%99999999999999999999999d" 1 }}"#,
            r#"{{ printf "%.99999999999999999999999f" 1.5 }}"#,
            r#"{{ printf "%2000000s" "x" }}"#,
        ] {
            let t = Template::parse(src).expect("parses");
            let out = t.execute(&data(1.0)).expect("executes");
            assert!(out.len() < 100, "{src}: {} bytes", out.len());
            assert!(out.contains("%!(BAD"), "{src}: {out}");
        }
    }
}
