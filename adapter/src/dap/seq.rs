//! Sequence numbers when the proxy adds or consumes messages.
//!
//! Each side sees one gapless numbering of the messages it receives, as if
//! it talked to its peer directly. A request forwarded to a side is
//! remembered under the number that side saw, so the answer's
//! `request_seq` (and `cancel.requestId`, `progressStart.requestId`) is
//! mapped back to the sender's number. Answers to the proxy's own requests
//! are consumed by the proxy. While the proxy has added nothing, every
//! number maps to itself and messages pass byte for byte.

use std::collections::HashMap;

use super::message::Envelope;
use super::patch;

/// The numbering of the messages going to one side.
#[derive(Debug)]
pub struct Numbering<T> {
    next: i64,
    /// Requests forwarded to this side: the number it saw -> the sender's,
    /// and the command.
    forwarded: HashMap<i64, (i64, String)>,
    /// Requests the proxy sent to this side, by the number it saw.
    own: HashMap<i64, T>,
}

impl<T> Default for Numbering<T> {
    fn default() -> Self {
        Numbering {
            next: 1,
            forwarded: HashMap::new(),
            own: HashMap::new(),
        }
    }
}

impl<T> Numbering<T> {
    /// The number for the next message to this side.
    pub fn take(&mut self) -> i64 {
        let seq = self.next;
        self.next += 1;
        seq
    }

    /// Numbers a request of the proxy's own; its answer comes back as
    /// [`Routed::Answer`].
    pub fn own_request(&mut self, what: T) -> i64 {
        let seq = self.take();
        self.own.insert(seq, what);
        seq
    }

    /// The number the next message to this side will have.
    pub fn peek(&self) -> i64 {
        self.next
    }

    /// Whether `seq` is a request of the proxy's own, not yet answered.
    pub fn is_own(&self, seq: i64) -> bool {
        self.own.contains_key(&seq)
    }

    /// The sender's numbers and commands of the requests this side has not
    /// answered.
    pub fn unanswered(&self) -> impl Iterator<Item = (i64, String)> + '_ {
        self.forwarded.values().cloned()
    }
}

/// What becomes of a message passing from one side to the other.
#[derive(Debug)]
pub enum Routed<T> {
    /// Send these bytes to the other side.
    Forward(Vec<u8>),
    /// The answer to the proxy's own request `T`: do not forward.
    Answer(T, Vec<u8>),
}

/// Renumbers `body` (from the side whose incoming numbering is `back`) for
/// the side whose incoming numbering is `to`.
pub fn route<T>(
    body: Vec<u8>,
    envelope: Option<&Envelope>,
    back: &mut Numbering<T>,
    to: &mut Numbering<T>,
) -> Routed<T> {
    let Some(envelope) = envelope else {
        // Not a message we understand: pass it as it is.
        return Routed::Forward(body);
    };
    let mut body = body;
    if envelope.is_response() {
        if let Some(request_seq) = envelope.request_seq {
            if let Some(what) = back.own.remove(&request_seq) {
                return Routed::Answer(what, body);
            }
            if let Some((original, _)) = back.forwarded.remove(&request_seq) {
                body = replace(body, &["request_seq"], request_seq, original);
            }
        }
    }
    if envelope.is_request("cancel") {
        if let Some(id) = patch::get_int(&body, &["arguments", "requestId"]) {
            if let Some((&seen, _)) = to.forwarded.iter().find(|(_, (orig, _))| *orig == id) {
                body = replace(body, &["arguments", "requestId"], id, seen);
            }
        }
    }
    if envelope.kind.as_deref() == Some("event")
        && envelope.event.as_deref() == Some("progressStart")
    {
        if let Some(id) = patch::get_int(&body, &["body", "requestId"]) {
            if let Some(&(original, _)) = back.forwarded.get(&id) {
                body = replace(body, &["body", "requestId"], id, original);
            }
        }
    }
    if let Some(original) = envelope.seq {
        let seq = to.take();
        if envelope.kind.as_deref() == Some("request") {
            let command = envelope.command.clone().unwrap_or_default();
            to.forwarded.insert(seq, (original, command));
        }
        body = replace(body, &["seq"], original, seq);
    }
    Routed::Forward(body)
}

fn replace(body: Vec<u8>, path: &[&str], from: i64, to: i64) -> Vec<u8> {
    if from == to {
        return body;
    }
    patch::set_int(&body, path, to).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(
        body: &str,
        back: &mut Numbering<&'static str>,
        to: &mut Numbering<&'static str>,
    ) -> Routed<&'static str> {
        let envelope = Envelope::parse(body.as_bytes());
        route(body.as_bytes().to_vec(), envelope.as_ref(), back, to)
    }

    fn forwarded(r: Routed<&'static str>) -> String {
        match r {
            Routed::Forward(b) => String::from_utf8(b).unwrap(),
            Routed::Answer(..) => panic!("consumed"),
        }
    }

    #[test]
    fn untouched_while_the_proxy_adds_nothing() {
        let (mut to_client, mut to_adapter) = (Numbering::default(), Numbering::default());
        let req = r#"{"seq":1,"type":"request","command":"threads"}"#;
        assert_eq!(forwarded(pass(req, &mut to_client, &mut to_adapter)), req);
        let resp = r#"{"seq":1,"type":"response","request_seq":1,"command":"threads"}"#;
        assert_eq!(forwarded(pass(resp, &mut to_adapter, &mut to_client)), resp);
    }

    #[test]
    fn added_and_consumed_messages_keep_both_numberings() {
        let (mut to_client, mut to_adapter) = (Numbering::default(), Numbering::default());
        // The proxy tells the client something and asks it something.
        assert_eq!(to_client.take(), 1);
        let pick = to_client.own_request("pick");
        assert_eq!(pick, 2);
        // The client answers the proxy: consumed, the adapter never sees it.
        let answer = format!(r#"{{"seq":1,"type":"response","request_seq":{pick}}}"#);
        assert!(matches!(
            pass(&answer, &mut to_client, &mut to_adapter),
            Routed::Answer("pick", _)
        ));
        // The client's next request is the adapter's first message.
        let req = r#"{"seq":2,"type":"request","command":"launch"}"#;
        let out = forwarded(pass(req, &mut to_client, &mut to_adapter));
        assert_eq!(out, r#"{"seq":1,"type":"request","command":"launch"}"#);
        // A progress event for it names the client's number.
        let progress = r#"{"seq":1,"type":"event","event":"progressStart","body":{"requestId":1}}"#;
        let out = forwarded(pass(progress, &mut to_adapter, &mut to_client));
        assert_eq!(
            out,
            r#"{"seq":3,"type":"event","event":"progressStart","body":{"requestId":2}}"#
        );
        // A cancel of it names the adapter's number.
        let cancel = r#"{"seq":3,"type":"request","command":"cancel","arguments":{"requestId":2}}"#;
        let out = forwarded(pass(cancel, &mut to_client, &mut to_adapter));
        assert_eq!(
            out,
            r#"{"seq":2,"type":"request","command":"cancel","arguments":{"requestId":1}}"#
        );
        // The adapter's answer goes back under the client's numbers.
        let resp = r#"{"seq":2,"type":"response","request_seq":1,"command":"launch"}"#;
        let out = forwarded(pass(resp, &mut to_adapter, &mut to_client));
        assert_eq!(
            out,
            r#"{"seq":4,"type":"response","request_seq":2,"command":"launch"}"#
        );
        assert_eq!(
            to_adapter.unanswered().collect::<Vec<_>>(),
            vec![(3, "cancel".to_owned())]
        );
    }

    #[test]
    fn unknown_messages_pass_unchanged() {
        let (mut a, mut b) = (Numbering::default(), Numbering::default());
        a.take();
        let odd = r#"{"seq":"one","whatever":[1]}"#;
        assert_eq!(forwarded(pass(odd, &mut a, &mut b)), odd);
    }
}
