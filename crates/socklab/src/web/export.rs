//! `GET /api/export`: history as a download in the formats of `socklab export` (JSON lines,
//! CSV, raw bytes of one direction, pcapng), for one session or for a search. The file is
//! written by the exporter on the blocking pool and streamed as it is produced, so a large
//! history costs a small buffer, and a client that goes away stops the export.

use std::collections::HashMap;
use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::history::opt_param;
use super::search::{search_of, search_parameters};
use super::{AppError, AppState};
use crate::export::{Format, Selection, export};

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// Bytes the exporter hands over at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// Chunks in flight between the exporter and the client.
const CHUNKS_IN_FLIGHT: usize = 4;

/// A `Write` that sends what it gets to the response body in chunks; once the client is
/// gone, writes fail (as a closed pipe), which ends the export.
struct BodyWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl BodyWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The format named by `format` (default jsonl), its content type and file extension.
fn format_of(params: &Params) -> Result<(Format, &'static str, &'static str), AppError> {
    Ok(
        match opt_param::<String>(params, "format")?
            .as_deref()
            .unwrap_or("jsonl")
        {
            "jsonl" => (Format::Jsonl, "application/x-ndjson", "jsonl"),
            "csv" => (Format::Csv, "text/csv; charset=utf-8", "csv"),
            "raw" => (Format::Raw, "application/octet-stream", "bin"),
            "pcapng" => (Format::Pcapng, "application/vnd.tcpdump.pcap", "pcapng"),
            other => {
                return Err(AppError::BadRequest(format!(
                    "format must be jsonl, csv, raw or pcapng, not {other:?}"
                )));
            }
        },
    )
}

/// `GET /api/export?format=&session=|q=|hex=|regex=|label=&direction=&listener=&since_ms=&until_ms=`:
/// the messages of one session or of a search, oldest first, as a file.
pub async fn export_route(
    State(st): State<AppState>,
    params: Params,
) -> Result<Response, AppError> {
    let (format, content_type, ext) = format_of(&params)?;
    let filter = search_of(&params)?;
    let name = match filter.session {
        Some(id) => {
            if !st
                .hub
                .session_exists(id)
                .await
                .map_err(super::labels::history_error)?
            {
                return Err(AppError::NotFound(format!("no session {id}")));
            }
            format!("socklab-session-{id}.{ext}")
        }
        None => format!("socklab-export.{ext}"),
    };
    let selection = Selection {
        all: true,
        // Raw writes one direction: the search's, or up.
        direction: filter.direction,
        filter: Some(filter),
        ..Selection::default()
    };
    let store = st.hub.store();
    store.flush_for_query().await;
    let db = store.path().to_path_buf();
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut out = BodyWriter {
            buf: Vec::with_capacity(CHUNK_BYTES),
            tx: tx.clone(),
        };
        let result = export(&db, &selection, format, &mut out).and_then(|n| {
            out.flush()?;
            Ok(n)
        });
        match result {
            Ok(_) => {}
            Err(crate::export::ExportError::Write(e))
                if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            // The body ends with an error: the client sees a broken download, not a
            // complete-looking file.
            Err(e) => {
                tracing::error!("export: {e}");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response())
}

/// Adds this module's route to the OpenAPI document.
pub fn extend_openapi(doc: &mut Value) {
    let mut parameters = search_parameters();
    parameters.insert(
        0,
        json!({ "name": "format", "in": "query",
                "schema": { "type": "string", "enum": ["jsonl", "csv", "raw", "pcapng"], "default": "jsonl" } }),
    );
    let error = json!({ "description": "error", "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Error" } } } });
    let file = |t: &str| json!({ t: { "schema": { "type": "string", "format": "binary" } } });
    let mut content = serde_json::Map::new();
    for t in [
        "application/x-ndjson",
        "text/csv",
        "application/octet-stream",
        "application/vnd.tcpdump.pcap",
    ] {
        content.extend(file(t).as_object().cloned().unwrap_or_default());
    }
    doc["paths"]["/api/export"] = json!({ "get": {
        "summary": "Download messages (one session, or a search) as JSON lines, CSV, raw bytes of one direction or pcapng, oldest first",
        "parameters": parameters,
        "responses": {
            "200": { "description": "the file, streamed", "content": content },
            "400": error.clone(), "401": error.clone(), "404": error.clone(),
            "default": error } } });
}
