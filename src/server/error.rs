//! The one place where errors become HTTP statuses and OperationOutcomes: a table, one row
//! per error the server can answer (a stable code, the HTTP status, the OperationOutcome
//! `issue.code`), as meilisearch keeps its error codes. Handlers and layers name a row; none
//! builds a status itself. Each layer's error type converts into [`ApiError`] with `From`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::fhir::outcome::IssueType;
use crate::terminology::TerminologyError;

/// System of the stable error codes in `OperationOutcome.issue.details`.
pub const ERROR_CODE_SYSTEM: &str = "https://jointcoder.org/fhir/CodeSystem/error";

macro_rules! error_table {
    ($($(#[$doc:meta])* $name:ident = ($code:literal, $status:ident, $issue:ident);)*) => {
        /// Every error the server answers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
        }

        impl ErrorCode {
            /// Every row, for the tests that walk the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The stable code clients may match on.
            pub fn code(self) -> &'static str {
                match self { $(ErrorCode::$name => $code,)* }
            }

            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$name => StatusCode::$status,)* }
            }

            pub fn issue(self) -> IssueType {
                match self { $(ErrorCode::$name => IssueType::$issue,)* }
            }
        }
    };
}

error_table! {
    /// The request is malformed (bad JSON, a bad parameter value, the wrong resource).
    Invalid = ("invalid_request", BAD_REQUEST, Invalid);
    /// The request body could not be read to its end.
    BodyUnreadable = ("body_unreadable", BAD_REQUEST, Invalid);
    /// An edition or version pin of `$code` names nothing served here.
    UnknownPin = ("unknown_pin", BAD_REQUEST, NotFound);
    /// No bearer token, or one that does not verify.
    Unauthenticated = ("unauthenticated", UNAUTHORIZED, Login);
    /// The token's scopes (or the site a write came from) do not allow the interaction.
    Forbidden = ("forbidden", FORBIDDEN, Forbidden);
    /// No such resource, job or route.
    NotFound = ("not_found", NOT_FOUND, NotFound);
    /// No such edition or version.
    UnknownEdition = ("unknown_edition", NOT_FOUND, NotFound);
    /// No such code in the edition.
    UnknownCode = ("unknown_code", NOT_FOUND, CodeInvalid);
    /// No crosswalk from the edition.
    NoCrosswalk = ("no_crosswalk", NOT_FOUND, NotSupported);
    /// The method is not served on this route (framework 405).
    MethodNotAllowed = ("method_not_allowed", METHOD_NOT_ALLOWED, NotSupported);
    /// The interaction exists but not for this resource type.
    NotAllowedHere = ("not_allowed_here", METHOD_NOT_ALLOWED, NotSupported);
    /// Only FHIR JSON is produced.
    NotAcceptable = ("not_acceptable", NOT_ACCEPTABLE, NotSupported);
    /// The request body did not arrive in time.
    BodyTimeout = ("body_timeout", REQUEST_TIMEOUT, Timeout);
    /// `If-Match` names a version that is no longer current.
    VersionConflict = ("version_conflict", PRECONDITION_FAILED, Conflict);
    /// `If-None-Exist` matches what a different request created.
    ConditionalMismatch = ("conditional_mismatch", PRECONDITION_FAILED, Duplicate);
    /// The body is larger than the server accepts.
    BodyTooLarge = ("body_too_large", PAYLOAD_TOO_LARGE, TooLong);
    /// A record past the section limits (characters per section, sections).
    RecordTooLarge = ("record_too_large", PAYLOAD_TOO_LARGE, TooLong);
    /// The body is not of a type this route reads.
    UnsupportedMediaType = ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, NotSupported);
    /// A document with nothing to code in it.
    NothingToCode = ("nothing_to_code", UNPROCESSABLE_ENTITY, Required);
    /// A code system version with no concepts.
    EmptyCodeSystem = ("empty_code_system", UNPROCESSABLE_ENTITY, Required);
    /// A written resource that is not valid R4: structure, datatypes, formats, required
    /// bindings (each issue names its path).
    InvalidResource = ("invalid_resource", BAD_REQUEST, Structure);
    /// A written resource that breaks an R4 invariant (con-5, cmp-1, …).
    InvariantViolated = ("invariant_violated", UNPROCESSABLE_ENTITY, Invariant);
    /// An original PDF the server is set not to keep (`pdf.store_originals = false`).
    OriginalsNotKept = ("originals_not_kept", UNPROCESSABLE_ENTITY, BusinessRule);
    /// A review that the rules of review forbid (moving a diagnosis to another patient).
    ReviewRule = ("review_rule", UNPROCESSABLE_ENTITY, BusinessRule);
    /// A code that is not a codable concept of the edition.
    NotCodable = ("not_codable", UNPROCESSABLE_ENTITY, CodeInvalid);
    /// A record past the list limits (items per list, characters per item).
    RecordTooCostly = ("record_too_costly", UNPROCESSABLE_ENTITY, TooCostly);
    /// The server failed (details in its log, never in the answer).
    Internal = ("internal", INTERNAL_SERVER_ERROR, Exception);
    /// Coding a record failed.
    CodingFailed = ("coding_failed", INTERNAL_SERVER_ERROR, Processing);
    /// A bulk export job failed.
    ExportFailed = ("export_failed", INTERNAL_SERVER_ERROR, Exception);
    /// The resource store failed; nothing of the request was stored.
    StoreFailed = ("store_failed", INTERNAL_SERVER_ERROR, Exception);
    /// The terminology service failed.
    TerminologyFailed = ("terminology_failed", INTERNAL_SERVER_ERROR, Exception);
    /// Coding took longer than its budget.
    CodingTimeout = ("coding_timeout", SERVICE_UNAVAILABLE, Timeout);
    /// Too many `$code` requests at once.
    Throttled = ("throttled", SERVICE_UNAVAILABLE, Throttled);
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Where in the body, one issue each: (FHIRPath expression, what is wrong there).
    pub located: Vec<(String, String)>,
}

impl ApiError {
    pub fn of(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), located: Vec::new() }
    }

    /// The same error at `expression` in the body.
    pub fn at(mut self, expression: impl Into<String>) -> ApiError {
        let message = self.message.clone();
        self.located.push((expression.into(), message));
        self
    }

    /// A written resource's validation errors: invariants alone are a 422, anything about
    /// structure or values a 400; every issue keeps its path.
    pub fn invalid_resource(ty: &str, issues: Vec<crate::fhir::validate::Issue>) -> ApiError {
        use crate::fhir::validate::Problem;
        let code = if issues.iter().all(|i| i.problem == Problem::Invariant) { ErrorCode::InvariantViolated } else { ErrorCode::InvalidResource };
        let first = issues.first().map(|i| format!("{}: {}", i.expression, i.message)).unwrap_or_default();
        let more = if issues.len() > 1 { format!(" (and {} more)", issues.len() - 1) } else { String::new() };
        ApiError {
            code,
            message: format!("the {ty} is not valid FHIR R4: {first}{more}; nothing was stored"),
            located: issues.into_iter().map(|i| (i.expression, i.message)).collect(),
        }
    }
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::of(ErrorCode::Invalid, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::of(ErrorCode::NotFound, message)
    }
    pub fn not_acceptable(message: impl Into<String>) -> ApiError {
        ApiError::of(ErrorCode::NotAcceptable, message)
    }
    pub fn unsupported_media(message: impl Into<String>) -> ApiError {
        ApiError::of(ErrorCode::UnsupportedMediaType, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::of(ErrorCode::Internal, message)
    }
}

impl From<TerminologyError> for ApiError {
    fn from(e: TerminologyError) -> ApiError {
        let code = match &e {
            TerminologyError::UnknownEdition(_) | TerminologyError::UnknownVersion { .. } => ErrorCode::UnknownEdition,
            TerminologyError::UnknownCode { .. } => ErrorCode::UnknownCode,
            TerminologyError::NoCrosswalk(_) => ErrorCode::NoCrosswalk,
            TerminologyError::Io(_) | TerminologyError::Parse(_) | TerminologyError::Index(_) | TerminologyError::Policy(_) => {
                tracing::error!(error = %e, "terminology failure");
                return ApiError::of(ErrorCode::TerminologyFailed, "terminology service failure");
            }
        };
        ApiError::of(code, e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound(m) => ApiError::not_found(format!("{m} is not known")),
            StoreError::Conflict(m) => ApiError::of(ErrorCode::VersionConflict, m),
            StoreError::ConditionalMismatch => ApiError::of(
                ErrorCode::ConditionalMismatch,
                "If-None-Exist matches what an earlier, different request created: send the same document again, or other criteria",
            ),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::of(ErrorCode::StoreFailed, "the resource store failed; nothing of this request was stored")
            }
        }
    }
}

impl From<crate::fhir::inbound::InboundError> for ApiError {
    fn from(e: crate::fhir::inbound::InboundError) -> ApiError {
        use crate::fhir::inbound::InboundError;
        match e {
            InboundError::Invalid(m) => ApiError::of(ErrorCode::Invalid, m),
            InboundError::Unprocessable(m) => ApiError::of(ErrorCode::NothingToCode, m),
            InboundError::NotSupported(m) => ApiError::of(ErrorCode::UnsupportedMediaType, m),
        }
    }
}

impl From<crate::record::limits::LimitError> for ApiError {
    fn from(e: crate::record::limits::LimitError) -> ApiError {
        use crate::record::limits::LimitError;
        let code = match e {
            LimitError::Sections { .. } | LimitError::SectionChars { .. } => ErrorCode::RecordTooLarge,
            LimitError::ListItems { .. } | LimitError::ItemChars { .. } => ErrorCode::RecordTooCostly,
        };
        ApiError::of(code, e.to_string())
    }
}

impl From<crate::pipeline::PinError> for ApiError {
    fn from(e: crate::pipeline::PinError) -> ApiError {
        ApiError::of(ErrorCode::UnknownPin, e.to_string())
    }
}

impl From<crate::pipeline::PipelineError> for ApiError {
    fn from(e: crate::pipeline::PipelineError) -> ApiError {
        match e {
            crate::pipeline::PipelineError::OverBudget { budget_ms, .. } => {
                ApiError::of(ErrorCode::CodingTimeout, format!("coding took longer than this server allows ({budget_ms} ms); nothing was stored"))
            }
            other => ApiError::of(ErrorCode::CodingFailed, other.to_string()),
        }
    }
}

/// The OperationOutcome of an error: its issue type, its stable code in `details`, and the
/// message.
pub fn outcome(code: ErrorCode, message: &str) -> serde_json::Value {
    located_outcome(code, message, &[])
}

/// One issue per located problem (with its `expression`), or one with the message.
fn located_outcome(code: ErrorCode, message: &str, located: &[(String, String)]) -> serde_json::Value {
    let severity = if code.status().is_server_error() { "fatal" } else { "error" };
    let issue = |diagnostics: &str| {
        json!({
            "severity": severity,
            "code": code.issue().as_str(),
            "details": { "coding": [{ "system": ERROR_CODE_SYSTEM, "code": code.code() }] },
            "diagnostics": diagnostics
        })
    };
    let issues: Vec<serde_json::Value> = if located.is_empty() {
        vec![issue(message)]
    } else {
        located
            .iter()
            .map(|(expression, text)| {
                let mut i = issue(text);
                i["expression"] = json!([expression]);
                i
            })
            .collect()
    };
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.code.status())
            .content_type(super::format::FHIR_JSON)
            .body(located_outcome(self.code, &self.message, &self.located).to_string())
    }
}

/// Statuses produced by actix itself (body too large, no route, wrong method, bad JSON) get an
/// OperationOutcome body too, so clients parse every error the same way.
pub fn outcome_for_framework_status(status: StatusCode) -> Option<(ErrorCode, &'static str)> {
    Some(match status.as_u16() {
        400 => (ErrorCode::Invalid, "the request could not be read"),
        404 => (ErrorCode::NotFound, "no such resource or operation on this server"),
        405 => (ErrorCode::MethodNotAllowed, "this interaction is not supported on this endpoint"),
        413 => (ErrorCode::BodyTooLarge, "the request body is larger than this server accepts"),
        415 => (ErrorCode::UnsupportedMediaType, "unsupported media type: send application/fhir+json"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row answers its status with an OperationOutcome carrying its issue type and its
    /// stable code; codes are unique.
    #[test]
    fn every_row_of_the_table_answers_as_it_says() {
        let mut codes = std::collections::HashSet::new();
        for &row in ErrorCode::ALL {
            assert!(codes.insert(row.code()), "{} twice", row.code());
            assert!(row.status().is_client_error() || row.status().is_server_error(), "{row:?}");
            let resp = ApiError::of(row, "why").error_response();
            assert_eq!(resp.status(), row.status());
            let body = outcome(row, "why");
            assert_eq!(body["issue"][0]["code"], row.issue().as_str());
            assert_eq!(body["issue"][0]["details"]["coding"][0]["code"], row.code());
            assert_eq!(body["issue"][0]["diagnostics"], "why");
            assert_eq!(body["issue"][0]["severity"], if row.status().is_server_error() { "fatal" } else { "error" });
        }
        for status in [400u16, 404, 405, 413, 415] {
            let (row, _) = outcome_for_framework_status(StatusCode::from_u16(status).unwrap()).unwrap();
            assert_eq!(row.status().as_u16(), status);
        }
    }
}
