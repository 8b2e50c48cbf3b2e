//! Saved send snippets as operator actions: the naming rule, the size and count limits,
//! and turning a name into the bytes to send. Every front end (API, console, dashboard)
//! goes through these, so they all refuse the same things with the same words.

use bytes::Bytes;

use super::Hub;
use crate::store::{SaveOutcome, Snippet, StoreError};

/// Longest snippet name, in bytes.
pub const MAX_SNIPPET_NAME: usize = 64;

/// Largest snippet payload.
pub const MAX_SNIPPET_BYTES: usize = 64 * 1024;

/// The most snippets one database keeps.
pub const MAX_SNIPPETS: u64 = 1000;

/// Why a snippet action could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnippetError {
    /// The name breaks the naming rule.
    #[error("invalid snippet name {0:?}: use 1 to 64 letters, digits, '-', '_' or '.' (no spaces)")]
    BadName(String),
    /// Nothing to save.
    #[error("snippet {0:?} is empty: give it at least one byte")]
    Empty(String),
    /// More bytes than a snippet may hold.
    #[error("snippet of {len} bytes is too large (at most {max})")]
    TooLarge {
        /// The size given.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// The name is taken and replacing was not asked for.
    #[error("snippet {0:?} exists already (delete it first, or save with replace)")]
    Exists(String),
    /// No snippet has that name.
    #[error("no snippet {0:?}")]
    NotFound(String),
    /// The database holds as many snippets as allowed.
    #[error("too many snippets (at most {0}): delete one first")]
    TooMany(u64),
    /// The database could not be read or written.
    #[error("snippets unavailable: {0}")]
    Store(String),
}

impl From<StoreError> for SnippetError {
    fn from(e: StoreError) -> Self {
        SnippetError::Store(e.to_string())
    }
}

/// Whether `name` may name a snippet: 1 to [`MAX_SNIPPET_NAME`] ASCII letters, digits,
/// `-`, `_` or `.` — safe in a URL path and as one word of a console command.
pub fn valid_snippet_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SNIPPET_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Hub {
    /// Every saved snippet, by name.
    pub async fn snippets(&self) -> Result<Vec<Snippet>, SnippetError> {
        Ok(self.store.snippets().await?)
    }

    /// Saves `data` as snippet `name`. A taken name is [`SnippetError::Exists`] unless
    /// `replace`; the returned flag says whether an existing snippet was replaced.
    pub async fn save_snippet(
        &self,
        name: &str,
        data: Vec<u8>,
        replace: bool,
    ) -> Result<(Snippet, bool), SnippetError> {
        if !valid_snippet_name(name) {
            return Err(SnippetError::BadName(name.to_string()));
        }
        if data.is_empty() {
            return Err(SnippetError::Empty(name.to_string()));
        }
        if data.len() > MAX_SNIPPET_BYTES {
            return Err(SnippetError::TooLarge {
                len: data.len(),
                max: MAX_SNIPPET_BYTES,
            });
        }
        if self.store.snippet_count().await? >= MAX_SNIPPETS
            && self.store.snippet(name).await?.is_none()
        {
            return Err(SnippetError::TooMany(MAX_SNIPPETS));
        }
        match self.store.save_snippet(name, data, replace).await? {
            (SaveOutcome::Exists, _) => Err(SnippetError::Exists(name.to_string())),
            (SaveOutcome::Replaced, s) => Ok((s, true)),
            (SaveOutcome::Created, s) => Ok((s, false)),
        }
    }

    /// The bytes of snippet `name`.
    pub async fn snippet_data(&self, name: &str) -> Result<Bytes, SnippetError> {
        if !valid_snippet_name(name) {
            return Err(SnippetError::BadName(name.to_string()));
        }
        match self.store.snippet(name).await? {
            Some(s) => Ok(Bytes::from(s.data)),
            None => Err(SnippetError::NotFound(name.to_string())),
        }
    }

    /// Deletes snippet `name` (periodic sends started from it keep their copy).
    pub async fn delete_snippet(&self, name: &str) -> Result<(), SnippetError> {
        if !valid_snippet_name(name) {
            return Err(SnippetError::BadName(name.to_string()));
        }
        if self.store.delete_snippet(name).await? {
            Ok(())
        } else {
            Err(SnippetError::NotFound(name.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are one URL-safe word of bounded length.
    #[test]
    fn naming_rule() {
        assert!(valid_snippet_name("ping"));
        assert!(valid_snippet_name("set-interval_3.v2"));
        assert!(valid_snippet_name(&"a".repeat(MAX_SNIPPET_NAME)));
        for bad in [
            "",
            "a b",
            "a/b",
            "é",
            "x?y",
            &"a".repeat(MAX_SNIPPET_NAME + 1),
        ] {
            assert!(!valid_snippet_name(bad), "{bad:?}");
        }
    }
}
