//! OperationOutcome: every error the server returns is one.

use serde_json::{json, Value};

/// `issue.code` values we use (FHIR IssueType).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    BusinessRule,
    NotFound,
    NotSupported,
    CodeInvalid,
    TooLong,
    Login,
    Forbidden,
    Conflict,
    Processing,
    Exception,
    Duplicate,
    TooCostly,
    Timeout,
    Throttled,
}

impl IssueType {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::Invariant => "invariant",
            IssueType::BusinessRule => "business-rule",
            IssueType::NotFound => "not-found",
            IssueType::NotSupported => "not-supported",
            IssueType::CodeInvalid => "code-invalid",
            IssueType::TooLong => "too-long",
            IssueType::Login => "login",
            IssueType::Forbidden => "forbidden",
            IssueType::Conflict => "conflict",
            IssueType::Processing => "processing",
            IssueType::Duplicate => "duplicate",
            IssueType::TooCostly => "too-costly",
            IssueType::Timeout => "timeout",
            IssueType::Throttled => "throttled",
            IssueType::Exception => "exception",
        }
    }
}

pub fn operation_outcome(severity: &str, code: IssueType, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": severity, "code": code.as_str(), "diagnostics": diagnostics }]
    })
}
