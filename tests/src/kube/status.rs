//! API errors as the real server reports them: a `Status` object with the
//! HTTP code, a machine-readable reason and a message kubectl prints.

use serde_json::{json, Value};

/// An error answer of the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    /// `NotFound`, `AlreadyExists`, `BadRequest`, `Forbidden`, `Gone`...
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    /// `pods "web" not found`.
    pub fn not_found(plural: &str, name: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{plural} \"{name}\" not found"),
        }
    }

    pub fn already_exists(plural: &str, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{plural} \"{name}\" already exists"),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
        }
    }

    /// The wording RBAC uses: `pods is forbidden: User "u" cannot list
    /// resource "pods" in API group "" in the namespace "ns"`.
    pub fn forbidden(
        user: &str,
        verb: &str,
        plural: &str,
        group: &str,
        ns: Option<&str>,
    ) -> ApiError {
        let scope = match ns {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        };
        ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{plural} is forbidden: User \"{user}\" cannot {verb} resource \"{plural}\" in API group \"{group}\" {scope}"
            ),
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".to_owned(),
        }
    }

    /// A watch from a resourceVersion older than the server keeps.
    pub fn gone(rv: u64) -> ApiError {
        ApiError {
            code: 410,
            reason: "Expired",
            message: format!("too old resource version: {rv}"),
        }
    }

    /// The `Status` object sent as the body.
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}
