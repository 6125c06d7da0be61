//! The one error type of this crate: where (file, line, column, field path) and what.

use std::fmt;
use std::path::{Path, PathBuf};

/// A 1-based line and column in a YAML or JSON file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: u64,
    /// 1-based column (in characters).
    pub column: u64,
}

/// What kind of problem a [`ConfigError`] reports, for callers that react differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// Not well-formed YAML/JSON, or a value of the wrong shape (including unknown fields).
    Syntax,
    /// Well-formed, but a value breaks one of Prometheus's rules.
    Invalid,
    /// A Prometheus feature edgeprom does not implement yet.
    Unsupported,
    /// A `rule_files` entry without `*` that names no existing file.
    MissingRuleFile,
}

/// An error loading or validating configuration.
///
/// `Display` prints `FILE:LINE:COL: FIELD: MESSAGE`; the position and field parts are left out when
/// unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file, when known.
    pub position: Option<Position>,
    /// Field path such as `scrape_configs[2].scrape_interval`; empty for whole-file problems.
    pub field: String,
    /// The problem, worded like Prometheus's message where it has one.
    pub message: String,
    /// The kind of problem.
    pub kind: ErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        f.write_str(": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl ConfigError {
    /// An error at `position` in `file`; for crates that read YAML files of their own (rule
    /// files) and want errors printed like configuration errors.
    pub fn new(
        file: &Path,
        position: Option<Position>,
        field: impl Into<String>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            position,
            field: field.into(),
            message: message.into(),
            kind,
        }
    }

    pub(crate) fn io(file: &Path, err: &std::io::Error) -> ConfigError {
        ConfigError::new(file, None, "", ErrorKind::Io, err.to_string())
    }

    /// The line, when known.
    pub fn line(&self) -> Option<u64> {
        self.position.map(|p| p.line)
    }

    /// The column, when known.
    pub fn column(&self) -> Option<u64> {
        self.position.map(|p| p.column)
    }
}

/// Converts a serde-saphyr location (of a `Spanned` value); line 0 means "unknown" there.
pub fn position_of(loc: &serde_saphyr::Location) -> Option<Position> {
    (loc.line() > 0).then(|| Position {
        line: loc.line(),
        column: loc.column(),
    })
}

/// Turns serde_path_to_error's path into ours: drops the `.value` step that `Spanned<T>` adds and
/// the `?` it uses for keys it could not name.
pub(crate) fn clean_path(path: &str) -> String {
    let mut out = path.replace(".value", "");
    if out == "." || out == "?" {
        out.clear();
    }
    if let Some(stripped) = out.strip_suffix(".?") {
        out = stripped.to_string();
    }
    out
}

/// Converts a YAML deserialization failure into a located [`ConfigError`].
pub(crate) fn from_yaml(file: &Path, path: &str, err: &serde_saphyr::Error) -> ConfigError {
    use serde_saphyr::MessageFormatter;
    let message = serde_saphyr::DefaultMessageFormatter
        .format_message(err.without_snippet())
        .into_owned();
    let position = err.location().as_ref().and_then(position_of);
    ConfigError::new(file, position, clean_path(path), ErrorKind::Syntax, message)
}

/// Deserializes YAML `text` from `file`, reporting failures with position and field path.
/// `None` for a document with no content (empty or only comments).
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &Path,
) -> Result<Option<T>, ConfigError> {
    let mut path = String::new();
    let r = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, Option<T>>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    r.map_err(|e| from_yaml(file, &path, &e))
}
