//! Saved send snippets: named payloads an operator sends again and again, kept in the
//! `snippets` table so they survive restarts.
//!
//! Snippets are few and small, and change only when an operator saves or deletes one, so
//! they are read and written on the query connection rather than through the writer
//! thread's queues (WAL lets both connections write in turn; the busy timeout covers a
//! commit of the writer in progress).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError};
use crate::clock;

/// A saved snippet: its name and exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    /// Unique name (see the hub's naming rule).
    pub name: String,
    /// The bytes it sends.
    pub data: Vec<u8>,
    /// When it was saved last, Unix milliseconds.
    pub updated_ms: i64,
}

impl Serialize for Snippet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Snippet", 6)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("len", &self.data.len())?;
        st.serialize_field("hex", &hex::encode(&self.data))?;
        st.serialize_field("text", &String::from_utf8_lossy(&self.data))?;
        st.serialize_field("updated_at", &clock::format_ms(self.updated_ms))?;
        st.serialize_field("updated_at_ms", &self.updated_ms)?;
        st.end()
    }
}

/// What saving a snippet did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveOutcome {
    /// A new snippet.
    Created,
    /// An existing snippet of that name was replaced (only when asked to).
    Replaced,
    /// A snippet of that name exists and replacing was not asked for: nothing changed.
    Exists,
}

/// Creates the `snippets` table of databases made before snippets existed (and of new ones).
pub(super) fn init(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS snippets (
             name TEXT PRIMARY KEY,
             data BLOB NOT NULL,
             updated_ms INTEGER NOT NULL
         );",
    )
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Snippet> {
    Ok(Snippet {
        name: r.get(0)?,
        data: r.get(1)?,
        updated_ms: r.get(2)?,
    })
}

impl Store {
    /// Every snippet, by name.
    pub async fn snippets(&self) -> Result<Vec<Snippet>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT name, data, updated_ms FROM snippets ORDER BY name")?;
            stmt.query_map([], row)?.collect()
        })
        .await
    }

    /// The snippet with this name, if any.
    pub async fn snippet(&self, name: &str) -> Result<Option<Snippet>, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT name, data, updated_ms FROM snippets WHERE name = ?1",
                [name],
                row,
            )
            .optional()
        })
        .await
    }

    /// Number of snippets saved.
    pub async fn snippet_count(&self) -> Result<u64, StoreError> {
        self.read(|c| c.query_row("SELECT COUNT(*) FROM snippets", [], |r| r.get(0)))
            .await
    }

    /// Saves a snippet. A name already taken is replaced only with `replace`; otherwise
    /// nothing changes and the outcome says [`SaveOutcome::Exists`].
    pub async fn save_snippet(
        &self,
        name: &str,
        data: Vec<u8>,
        replace: bool,
    ) -> Result<(SaveOutcome, Snippet), StoreError> {
        let snippet = Snippet {
            name: name.to_string(),
            data,
            updated_ms: clock::now_ms(),
        };
        let saved = snippet.clone();
        let outcome = self
            .read(move |c| {
                let tx = c.unchecked_transaction()?;
                let exists = tx
                    .query_row(
                        "SELECT 1 FROM snippets WHERE name = ?1",
                        [&saved.name],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                let outcome = match (exists, replace) {
                    (true, false) => return Ok(SaveOutcome::Exists),
                    (true, true) => SaveOutcome::Replaced,
                    (false, _) => SaveOutcome::Created,
                };
                tx.execute(
                    "INSERT OR REPLACE INTO snippets (name, data, updated_ms) VALUES (?1, ?2, ?3)",
                    params![saved.name, saved.data, saved.updated_ms],
                )?;
                tx.commit()?;
                Ok(outcome)
            })
            .await?;
        Ok((outcome, snippet))
    }

    /// Deletes a snippet; `false` when there was none of that name.
    pub async fn delete_snippet(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.read(move |c| Ok(c.execute("DELETE FROM snippets WHERE name = ?1", [name])? > 0))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Snippets persist across a reopen; duplicates are refused unless replaced.
    #[tokio::test]
    async fn save_replace_delete_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path, None).unwrap();
        let (o, _) = store
            .save_snippet("ping", b"PING\r\n".to_vec(), false)
            .await
            .unwrap();
        assert_eq!(o, SaveOutcome::Created);
        let (o, _) = store
            .save_snippet("ping", b"X".to_vec(), false)
            .await
            .unwrap();
        assert_eq!(o, SaveOutcome::Exists);
        assert_eq!(
            store.snippet("ping").await.unwrap().unwrap().data,
            b"PING\r\n"
        );
        let (o, _) = store
            .save_snippet("ping", vec![0, 255], true)
            .await
            .unwrap();
        assert_eq!(o, SaveOutcome::Replaced);
        store.save_snippet("a", b"A".to_vec(), false).await.unwrap();
        store.close().await;
        drop(store);

        let store = Store::open(&path, None).unwrap();
        let all = store.snippets().await.unwrap();
        let names: Vec<_> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "ping"]);
        assert_eq!(all[1].data, vec![0, 255]);
        let v = serde_json::to_value(&all[1]).unwrap();
        assert_eq!(
            (v["hex"].as_str(), v["len"].as_u64()),
            (Some("00ff"), Some(2))
        );
        assert!(store.delete_snippet("ping").await.unwrap());
        assert!(!store.delete_snippet("ping").await.unwrap());
        assert_eq!(store.snippet_count().await.unwrap(), 1);
        store.close().await;
    }
}
