//! The console's one path to the data: a GraphQL operation executed in-process on the same
//! schema as `/graphql`, with the signed-in party as the viewer, its access audit recorded
//! before the page is sent, as `/graphql` does.

use async_graphql::Variables;
use homeward_engine::authz::Viewer;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::routes::AppState;

/// An error the API answered: its code, and its message for the person who sent the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub code: String,
    pub message: String,
}

/// A refused mutation as a form shows it: the status (403 when the viewer may not, 404 when
/// there is no such thing, else 422) and what the API said, in one sentence.
pub(crate) fn refusal(problems: &[Problem]) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    let status = if problems.iter().any(|p| p.code == "FORBIDDEN") {
        StatusCode::FORBIDDEN
    } else if problems.iter().any(|p| p.code == "NOT_FOUND") {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let message = problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    (status, message)
}

/// One page of a connection (a list the API gives in pages), as a page reads it.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Connection<T> {
    pub page_info: PageInfo,
    pub nodes: Vec<T>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    /// The cursor after which the next page starts, if there is one.
    pub(crate) fn next(&self) -> Option<&str> {
        self.end_cursor.as_deref().filter(|_| self.has_next_page)
    }
}

/// Why an operation gave no page.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The API refused or could not answer: what it said.
    Api(Vec<Problem>),
    /// The access audit could not be written, or the answer not read: nothing is shown.
    Internal(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Api(problems) => {
                let codes: Vec<&str> = problems.iter().map(|p| p.code.as_str()).collect();
                write!(f, "the API answered {}", codes.join(", "))
            }
            Failed::Internal(e) => f.write_str(e),
        }
    }
}

/// Runs `query` as `viewer`; `page` names the page in the access audit. The answer's data
/// when the API answered without errors.
pub(crate) async fn run<T: DeserializeOwned>(
    state: &AppState,
    viewer: &Viewer,
    page: &str,
    query: &str,
    variables: Value,
) -> Result<T, Failed> {
    match run_partial(state, viewer, page, query, variables).await? {
        (data, problems) if problems.is_empty() => Ok(data),
        (_, problems) => Err(Failed::Api(problems)),
    }
}

/// As [`run`], for a page that shows what it may of an answer with errors (a field the
/// viewer may not read is null, with its error): the data, and the errors beside it. An
/// answer without data is a failure.
pub(crate) async fn run_partial<T: DeserializeOwned>(
    state: &AppState,
    viewer: &Viewer,
    page: &str,
    query: &str,
    variables: Value,
) -> Result<(T, Vec<Problem>), Failed> {
    let executing = state.services.audit.executing();
    let (viewer, loaders) = homeward_graphql::request_data(&state.services, viewer.clone());
    let (reader, shown) = (viewer.party.0, loaders.access.clone());
    let request = async_graphql::Request::new(query)
        .variables(Variables::from_json(variables))
        .data(viewer)
        .data(loaders);
    let response = state.schema.execute(request).await;
    // Whose data the page shows is recorded before it is sent; if it cannot be, it is not.
    let mut entries = shown.take(reader, state.services.clock.now());
    for entry in &mut entries {
        entry.operation = format!("console {page}: {}", entry.operation);
    }
    state
        .services
        .audit
        .record(entries, executing)
        .await
        .map_err(|e| Failed::Internal(e.to_string()))?;
    let problems: Vec<Problem> = response
        .errors
        .into_iter()
        .map(|e| Problem {
            code: e
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(|c| match c {
                    async_graphql::Value::String(s) => Some(s.clone()),
                    async_graphql::Value::Enum(s) => Some(s.to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| "INTERNAL".to_owned()),
            message: e.message,
        })
        .collect();
    if response.data == async_graphql::Value::Null {
        return Err(Failed::Api(problems));
    }
    let data = response
        .data
        .into_json()
        .map_err(|e| Failed::Internal(e.to_string()))?;
    // Not the error's text: it may quote a value of the answer, which may be personal.
    let data = serde_json::from_value(data).map_err(|e| {
        Failed::Internal(format!(
            "the answer did not have the shape the page expects ({:?})",
            e.classify()
        ))
    })?;
    Ok((data, problems))
}
