//! Device labels: an operator's name for a session (an IMEI, a serial number, "pump 3"),
//! shown wherever its id is and kept in history. With `--label-from REGEX`, a session
//! without a label takes one from its device's first upload.

use std::sync::Arc;

use regex::bytes::Regex;

use super::Hub;
use super::history::HistoryError;
use crate::model::SessionInfo;
use crate::session::SessionHandle;

/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// A label as stored: trimmed, no control characters, at most [`MAX_LABEL_CHARS`];
/// empty means "no label".
pub fn clean_label(raw: &str) -> Result<Option<Arc<str>>, HistoryError> {
    let label = raw.trim();
    if label.is_empty() {
        return Ok(None);
    }
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(HistoryError::BadLabel(format!(
            "a label has at most {MAX_LABEL_CHARS} characters"
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(HistoryError::BadLabel(
            "a label cannot contain control characters".into(),
        ));
    }
    Ok(Some(Arc::from(label)))
}

/// The label `re` finds in `data`: its first capture group (or the whole match when it has
/// none), as text, cleaned like an operator's label; `None` when nothing usable matches.
pub fn label_from_upload(re: &Regex, data: &[u8]) -> Option<Arc<str>> {
    let caps = re.captures(data)?;
    let found = caps.get(1).or_else(|| caps.get(0))?;
    let text = String::from_utf8_lossy(found.as_bytes());
    let text: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_LABEL_CHARS)
        .collect();
    clean_label(&text).ok().flatten()
}

impl Hub {
    /// Takes labels from devices' first uploads with `re` (`--label-from`). Set once,
    /// before devices connect; later calls change nothing.
    pub fn set_label_from(&self, re: Regex) {
        let _ = self.label_from.set(re);
    }

    /// Sets (or with an empty text removes) a session's label, online or in history, and
    /// announces an online session's new snapshot. Returns the session.
    pub async fn set_label(&self, id: u64, raw: &str) -> Result<SessionInfo, HistoryError> {
        let label = clean_label(raw)?;
        if let Some(handle) = self.online(id) {
            handle.set_label(label.clone());
            self.store.set_label(id, label).await;
            let info = handle.info(None);
            self.publish(crate::model::Event::Online(info.clone()));
            return Ok(info);
        }
        if !self.session_exists(id).await? {
            return Err(HistoryError::NoSession(id));
        }
        self.store.set_label(id, label).await;
        self.store.flush_for_query().await;
        match self.store.session(id).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(HistoryError::NoSession(id)),
            Err(e) => Err(HistoryError::Store(e.to_string())),
        }
    }

    /// Called with a session's first upload: with `--label-from`, a session that has no
    /// label yet takes the one the regex finds.
    pub(super) async fn label_first_upload(&self, handle: &SessionHandle, data: &[u8]) {
        let Some(re) = self.label_from.get() else {
            return;
        };
        if handle.label().is_some() {
            return;
        }
        if let Some(label) = label_from_upload(re, data)
            && handle.set_label_if_none(label.clone())
        {
            self.store.set_label(handle.id(), Some(label)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first group wins, the whole match without groups, control characters go.
    #[test]
    fn labels_from_uploads() {
        let re = Regex::new(r"IMEI:(\d{15})").unwrap();
        assert_eq!(
            label_from_upload(&re, b"HELLO IMEI:861234567890123\r\n").as_deref(),
            Some("861234567890123")
        );
        assert_eq!(label_from_upload(&re, b"no id here"), None);
        let whole = Regex::new(r"dev-\w+").unwrap();
        assert_eq!(
            label_from_upload(&whole, b"\x00dev-pump3\n").as_deref(),
            Some("dev-pump3")
        );
        assert_eq!(clean_label("  a  ").unwrap().as_deref(), Some("a"));
        assert_eq!(clean_label("").unwrap(), None);
        assert!(clean_label("a\nb").is_err());
        assert!(clean_label(&"x".repeat(65)).is_err());
    }
}
