//! The one place where errors become HTTP statuses and OperationOutcomes.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::fhir::outcome::{operation_outcome, IssueType};
use crate::terminology::TerminologyError;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub issue: IssueType,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, issue: IssueType, message: impl Into<String>) -> ApiError {
        ApiError { status, issue, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, IssueType::Invalid, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, IssueType::NotFound, message)
    }
    pub fn not_acceptable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_ACCEPTABLE, IssueType::NotSupported, message)
    }
    pub fn unsupported_media(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, IssueType::NotSupported, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, IssueType::Exception, message)
    }
}

impl From<TerminologyError> for ApiError {
    fn from(e: TerminologyError) -> ApiError {
        match &e {
            TerminologyError::UnknownEdition(_) | TerminologyError::UnknownVersion { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, IssueType::NotFound, e.to_string())
            }
            TerminologyError::UnknownCode { .. } => ApiError::new(StatusCode::NOT_FOUND, IssueType::CodeInvalid, e.to_string()),
            TerminologyError::NoCrosswalk(_) => ApiError::new(StatusCode::NOT_FOUND, IssueType::NotSupported, e.to_string()),
            TerminologyError::Io(_) | TerminologyError::Parse(_) | TerminologyError::Index(_) => {
                tracing::error!(error = %e, "terminology failure");
                ApiError::internal("terminology service failure")
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let severity = if self.status.is_server_error() { "fatal" } else { "error" };
        HttpResponse::build(self.status)
            .content_type(super::format::FHIR_JSON)
            .body(operation_outcome(severity, self.issue, &self.message).to_string())
    }
}

/// Statuses produced by actix itself (body too large, no route, wrong method, bad JSON) get an
/// OperationOutcome body too, so clients parse every error the same way.
pub fn outcome_for_framework_status(status: StatusCode) -> Option<(IssueType, &'static str)> {
    Some(match status.as_u16() {
        400 => (IssueType::Invalid, "the request could not be read"),
        404 => (IssueType::NotFound, "no such resource or operation on this server"),
        405 => (IssueType::NotSupported, "this interaction is not supported on this endpoint"),
        413 => (IssueType::TooLong, "the request body is larger than this server accepts"),
        415 => (IssueType::NotSupported, "unsupported media type: send application/fhir+json"),
        _ => return None,
    })
}
