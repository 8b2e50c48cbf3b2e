//! Console commands for labels and history housekeeping: `label ID TEXT|-`,
//! `delete ID [yes]`, `delete before TIME [yes]`. A deletion first says what it would
//! delete and runs only when repeated with `yes`.

use super::{CommandError, parse_id};
use crate::hub::{HistoryError, Hub};
use crate::store::{Forgotten, Search};

/// `label ID TEXT` names a session, `label ID -` removes its label.
pub(super) async fn label(hub: &Hub, arg: &str, tail: &str) -> Result<String, CommandError> {
    if arg.is_empty() || tail.trim().is_empty() {
        return Err(CommandError::Usage(
            "usage: label ID TEXT | label ID -".into(),
        ));
    }
    let id = parse_id(arg)?;
    let text = if tail.trim() == "-" { "" } else { tail };
    let s = hub.set_label(id, text).await.map_err(history)?;
    Ok(match s.label.as_deref() {
        Some(l) => format!("#{id} is now labelled {l:?}"),
        None => format!("#{id} has no label"),
    })
}

fn history(e: HistoryError) -> CommandError {
    CommandError::Usage(e.to_string())
}

fn deleted(d: Forgotten) -> String {
    format!(
        "deleted {} message(s) and {} session(s)",
        d.messages, d.sessions
    )
}

/// Messages a search finds (for the confirmation question).
async fn count(hub: &Hub, search: Search) -> Result<u64, CommandError> {
    let store = hub.store();
    store.flush_for_query().await;
    Ok(store.search(search, 1, 0).await?.total)
}

/// `delete ID [yes]` and `delete before TIME [yes]`.
pub(super) async fn delete(hub: &Hub, rest: &str) -> Result<String, CommandError> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let usage = || CommandError::Usage("usage: delete ID [yes] | delete before TIME [yes]".into());
    match words.as_slice() {
        ["before", time, confirm @ ..] => {
            let before_ms = crate::export::parse_time(time).map_err(CommandError::Usage)?;
            match confirm {
                [] => {
                    let n = count(
                        hub,
                        Search {
                            until_ms: Some(before_ms),
                            ..Search::default()
                        },
                    )
                    .await?;
                    Ok(format!(
                        "this deletes {n} message(s) older than {} and the sessions that ended \
                         before it; online sessions stay. Type 'delete before {time} yes' to do it",
                        crate::clock::format_ms(before_ms)
                    ))
                }
                ["yes"] => Ok(deleted(
                    hub.forget_before(before_ms).await.map_err(history)?,
                )),
                _ => Err(usage()),
            }
        }
        [id, confirm @ ..] => {
            let id = parse_id(id)?;
            let online = hub.online(id).is_some();
            match confirm {
                [] => {
                    if !hub.session_exists(id).await.map_err(history)? {
                        return Err(history(HistoryError::NoSession(id)));
                    }
                    let n = count(
                        hub,
                        Search {
                            session: Some(id),
                            ..Search::default()
                        },
                    )
                    .await?;
                    let what = if online {
                        "; the session is online and keeps recording"
                    } else {
                        " and the session itself"
                    };
                    Ok(format!(
                        "this deletes the {n} stored message(s) of #{id}{what}. \
                         Type 'delete {id} yes' to do it"
                    ))
                }
                ["yes"] if online => Ok(deleted(hub.forget_messages(id).await.map_err(history)?)),
                ["yes"] => Ok(deleted(hub.forget_session(id).await.map_err(history)?)),
                _ => Err(usage()),
            }
        }
        [] => Err(usage()),
    }
}
