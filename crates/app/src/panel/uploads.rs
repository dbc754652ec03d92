//! Uploads in the panel: pick a kind, send a CSV, see the rows written or every bad row.
//! The file goes through the same [`crate::upload::apply`] as the API: all rows or none.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use oms_domain::access::Permission;

use crate::AppState;
use crate::error::{ApiError, RowError, retrying};
use crate::panel::session::{PanelUpload, Session};
use crate::panel::{Nav, PanelResult, describe, render};
use crate::upload::{self, UploadKind};

pub struct KindChoice {
    pub kind: &'static str,
    pub template_url: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "uploads.html")]
struct UploadsPage {
    nav: Nav,
    kinds: Vec<KindChoice>,
    /// Rows written by the upload just made.
    written: Option<usize>,
    file_name: String,
    error: Option<String>,
    row_errors: Vec<RowError>,
}

/// The kinds this session's role may upload.
fn kinds(session: &Session, selected: Option<UploadKind>) -> Vec<KindChoice> {
    let scope = session.scope();
    UploadKind::ALL
        .into_iter()
        .filter(|k| scope.require(k.permission()).is_ok())
        .map(|k| KindChoice {
            kind: k.as_str(),
            template_url: format!("/uploads/{}.csv", k.as_str()),
            selected: Some(k) == selected,
        })
        .collect()
}

pub async fn page(session: Session) -> PanelResult<Response> {
    session.scope().require(Permission::Read)?;
    let page = UploadsPage {
        nav: Nav::new(&session, "uploads"),
        kinds: kinds(&session, None),
        written: None,
        file_name: String::new(),
        error: None,
        row_errors: Vec::new(),
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn upload(
    State(state): State<AppState>,
    PanelUpload {
        session,
        form,
        file,
        file_name,
    }: PanelUpload,
) -> PanelResult<Response> {
    let scope = session.scope();
    let kind_text = form.get("kind").unwrap_or_default();
    let kind = UploadKind::parse(&kind_text);
    let outcome = async {
        let kind =
            kind.ok_or_else(|| ApiError::invalid_field("kind", "choose what the file holds"))?;
        scope.require(kind.permission())?;
        if file.is_empty() {
            return Err(ApiError::invalid_field("file", "choose a CSV file"));
        }
        let rows_max = state.limits.upload_rows_max;
        let rows = retrying(|| upload::apply(&state.store, &scope, kind, &file, rows_max)).await?;
        if matches!(kind, UploadKind::PoolMovements | UploadKind::Cancellations) {
            state.allocator.wake();
        }
        Ok(rows)
    }
    .await;
    let (status, written, error, row_errors) = match outcome {
        Ok(rows) => (StatusCode::OK, Some(rows), None, Vec::new()),
        Err(ApiError::InvalidRows { message, details }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            // "2 rows have errors; nothing was written"
            Some(message),
            details,
        ),
        Err(error) => {
            let status = error.status();
            let (message, details) = describe(error);
            let message = if details.is_empty() {
                message
            } else {
                format!("{message}: {}", details.join("; "))
            };
            (status, None, Some(message), Vec::new())
        }
    };
    let page = UploadsPage {
        nav: Nav::new(&session, "uploads"),
        kinds: kinds(&session, kind),
        written,
        file_name: file_name.unwrap_or_default(),
        error,
        row_errors,
    };
    Ok(render(status, &page))
}

/// `/uploads/<kind>.csv`: the header row of a kind, to fill in.
pub async fn template(_: Session, Path(file): Path<String>) -> PanelResult<Response> {
    let kind = file
        .strip_suffix(".csv")
        .and_then(UploadKind::parse)
        .ok_or_else(|| ApiError::NotFound(format!("template {file}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.csv\"", kind.as_str()),
            ),
        ],
        kind.template(),
    )
        .into_response())
}
