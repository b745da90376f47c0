//! The few fields of a DAP message the proxy routes by, and the messages it
//! writes itself (events, error responses, reverse requests).

use serde_json::{json, Value};

/// What the proxy reads of every message; everything else stays in the raw
/// bytes.
#[derive(Debug, Default, PartialEq)]
pub struct Envelope {
    pub seq: Option<i64>,
    /// `type`.
    pub kind: Option<String>,
    pub command: Option<String>,
    pub event: Option<String>,
    pub request_seq: Option<i64>,
}

impl Envelope {
    /// The routing fields of a valid JSON object whose routing fields
    /// have the expected types (the proxy gets it from the framing).
    #[cfg(test)]
    pub fn parse(body: &[u8]) -> Option<Envelope> {
        super::scan::envelope(body).ok().flatten()
    }

    pub fn is_request(&self, command: &str) -> bool {
        self.kind.as_deref() == Some("request") && self.command.as_deref() == Some(command)
    }

    pub fn is_response(&self) -> bool {
        self.kind.as_deref() == Some("response")
    }
}

/// Builds the proxy's own messages; `seq` is filled in when sent.
pub fn event(event: &str, body: Value) -> Value {
    json!({"seq": 0, "type": "event", "event": event, "body": body})
}

/// A console line in the client's debug console.
pub fn output(category: &str, text: &str) -> Value {
    event(
        "output",
        json!({"category": category, "output": format!("{text}\n")}),
    )
}

/// A failed response to the client's request `request_seq`, shown to the
/// user.
pub fn error_response(request_seq: i64, command: &str, message: &str) -> Value {
    json!({
        "seq": 0,
        "type": "response",
        "request_seq": request_seq,
        "success": false,
        "command": command,
        "message": message,
        "body": {"error": {"id": 7001, "format": message.replace(['{', '}'], ""), "showUser": true}},
    })
}

/// A request from the proxy to the client.
pub fn reverse_request(command: &str, arguments: Value) -> Value {
    json!({"seq": 0, "type": "request", "command": command, "arguments": arguments})
}

/// Serialises a message the proxy built or rewrote.
pub fn to_bytes(message: &Value) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_reads_routing_fields_only() {
        let e = Envelope::parse(
            br#"{"seq":3,"type":"response","request_seq":2,"command":"launch","body":{"deep":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(
            (e.seq, e.request_seq, e.command.as_deref()),
            (Some(3), Some(2), Some("launch"))
        );
        assert!(e.is_response());
        let odd = Envelope::parse(br#"{"custom":true}"#).unwrap();
        assert!(odd.seq.is_none() && odd.kind.is_none());
        assert!(Envelope::parse(br#"{"seq":"x"}"#).is_none());
    }

    #[test]
    fn error_response_is_shown_to_the_user() {
        let r = error_response(4, "launch", "no {target}");
        assert_eq!(r["request_seq"], 4);
        assert_eq!(r["success"], false);
        assert_eq!(r["body"]["error"]["format"], "no target");
        assert_eq!(r["body"]["error"]["showUser"], true);
    }
}
