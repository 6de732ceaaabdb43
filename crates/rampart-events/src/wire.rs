//! The event on the wire: ArcSight CEF, RFC 5424 syslog messages with their transport
//! framing, Splunk HTTP Event Collector envelopes.

use rampart_core::Severity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{Body, Event};

/// What a syslog message carries after its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// The event's JSON document.
    #[default]
    Json,
    /// One CEF record.
    Cef,
}

/// The CEF severity, 0 to 10.
pub fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 3,
        Severity::Unknown | Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    }
}

/// A CEF header field: `\` and `|` escaped, line breaks folded to spaces (CEF forbids them
/// in the header).
fn cef_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A CEF extension value: `\`, `=` and line breaks escaped.
fn cef_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The event as one CEF record (ArcSight Common Event Format 25): vendor Rampart, product
/// Rampart, the event kind as the class id, the summary as the name, and the particulars in
/// standard keys where CEF has them (`rt`, `dhost`, `suser`, `src`, `act`, `outcome`, `msg`)
/// and labelled custom strings where it has not (`cs1` group, `cs2` policy, `cs3` check,
/// `cs4` indicator, `cs5` agent id, `cs6` event id; `cn1` score).
pub fn cef(e: &Event, version: &str) -> String {
    let mut ext: Vec<(&str, String)> = vec![
        (
            "rt",
            e.time
                .unix_timestamp_nanos()
                .div_euclid(1_000_000)
                .to_string(),
        ),
        ("cat", e.body.kind().to_owned()),
        ("externalId", e.seq.to_string()),
        ("cs6Label", "eventId".into()),
        ("cs6", e.id.clone()),
    ];
    if let Some(a) = &e.agent {
        if !a.hostname.is_empty() {
            ext.push(("dhost", a.hostname.clone()));
        }
        ext.push(("cs5Label", "agentId".into()));
        ext.push(("cs5", a.id.clone()));
        if !a.group.is_empty() {
            ext.push(("cs1Label", "group".into()));
            ext.push(("cs1", a.group.clone()));
        }
    }
    match &e.body {
        Body::RunStored(r) => {
            ext.push(("cs2Label", "policy".into()));
            ext.push(("cs2", r.policy.clone()));
            ext.push(("cn1Label", "score".into()));
            ext.push(("cn1", format!("{:.0}", r.score)));
        }
        Body::CheckChanged(c) => {
            ext.push(("cs2Label", "policy".into()));
            ext.push(("cs2", c.policy.clone()));
            ext.push(("cs3Label", "check".into()));
            ext.push(("cs3", c.check.clone()));
            ext.push(("outcome", c.to.as_str().to_owned()));
        }
        Body::IntelHit(h) => {
            ext.push(("cs4Label", "indicator".into()));
            ext.push(("cs4", h.indicator.clone()));
            ext.push(("cn1Label", "score".into()));
            ext.push(("cn1", h.score.to_string()));
            ext.push(("request", h.observable.clone()));
        }
        Body::AgentEnrolled(a)
        | Body::AgentRevoked(a)
        | Body::WaiverChanged(a)
        | Body::AttestationIssued(a)
        | Body::Audit(a) => {
            ext.push(("suser", a.actor.clone()));
            if let Some(src) = &a.source {
                ext.push(("src", src.clone()));
            }
            ext.push(("act", a.action.clone()));
            ext.push(("outcome", a.outcome.clone()));
            ext.push(("duser", a.target.clone()));
        }
        Body::Alert(a) => {
            ext.push(("cs2Label", "rule".into()));
            ext.push(("cs2", a.rule.clone()));
            ext.push(("cs3Label", "subject".into()));
            ext.push(("cs3", a.subject.clone()));
            ext.push(("outcome", a.state.as_str().to_owned()));
            if let Some(v) = a.value {
                ext.push(("cfp1Label", "value".into()));
                ext.push(("cfp1", format!("{v:.2}")));
            }
        }
        Body::AgentOffline(_) => {}
    }
    ext.push(("msg", e.summary.clone()));
    let extension: Vec<String> = ext
        .into_iter()
        .map(|(k, v)| format!("{k}={}", cef_value(&v)))
        .collect();
    format!(
        "CEF:0|Rampart|Rampart|{}|{}|{}|{}|{}",
        cef_header(version),
        cef_header(e.body.kind()),
        cef_header(&e.summary),
        cef_severity(e.severity),
        extension.join(" ")
    )
}

/// Syslog facilities a destination may use (RFC 5424 §6.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Facility {
    /// User-level messages (1).
    User,
    /// System daemons (3).
    Daemon,
    /// Security and authorization (4).
    Auth,
    /// Private security and authorization (10).
    Authpriv,
    /// Local use 0 (16), the default.
    #[default]
    Local0,
    /// Local use 1 (17).
    Local1,
    /// Local use 2 (18).
    Local2,
    /// Local use 3 (19).
    Local3,
    /// Local use 4 (20).
    Local4,
    /// Local use 5 (21).
    Local5,
    /// Local use 6 (22).
    Local6,
    /// Local use 7 (23).
    Local7,
}

impl Facility {
    /// Its number.
    pub fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Authpriv => 10,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// The syslog severity of an event's severity (RFC 5424 §6.2.1).
pub fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Unknown | Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// `-` for an empty header field, else the field cut to `max` printable US-ASCII characters
/// (RFC 5424 header fields allow nothing else).
fn header_field(s: &str, max: usize) -> String {
    let f: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if f.is_empty() { "-".into() } else { f }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn sd_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The private enterprise number of the structured data element. 32473 is the number RFC 5612
/// reserves for documentation and examples; Rampart has none of its own.
pub const SD_ID: &str = "rampart@32473";

/// One RFC 5424 message (without transport framing): `<PRI>1 TIMESTAMP HOSTNAME rampart PROCID
/// KIND [rampart@32473 id=… seq=… severity=… agent=… group=…] PAYLOAD`.
pub fn syslog(e: &Event, facility: u8, hostname: &str, procid: u32, payload: Payload) -> String {
    let pri = u16::from(facility) * 8 + u16::from(syslog_severity(e.severity));
    let mut sd = format!(
        "[{SD_ID} id=\"{}\" seq=\"{}\" severity=\"{}\"",
        sd_value(&e.id),
        e.seq,
        e.severity.as_str()
    );
    if let Some(a) = &e.agent {
        sd.push_str(&format!(" agent=\"{}\"", sd_value(&a.id)));
        if !a.group.is_empty() {
            sd.push_str(&format!(" group=\"{}\"", sd_value(&a.group)));
        }
    }
    sd.push(']');
    let msg = match payload {
        Payload::Json => e.to_json(),
        Payload::Cef => cef(e, env!("CARGO_PKG_VERSION")),
    };
    format!(
        "<{pri}>1 {} {} rampart {procid} {} {sd} {msg}",
        crate::event::millis::format(e.time),
        header_field(hostname, 255),
        header_field(e.body.kind(), 32),
    )
}

/// A message framed for a stream (TCP, TLS): octet counting, `LENGTH SP MESSAGE` (RFC 6587
/// §3.4.1, RFC 5425 §4.3), so that a message may hold line breaks.
pub fn octet_counted(message: &str) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message.as_bytes());
    out
}

/// A message for one UDP datagram (RFC 5426): cut to `max` bytes at a character boundary,
/// as receivers do themselves beyond their limit; the header and structured data come first,
/// so the event id always survives.
pub fn datagram(message: &str, max: usize) -> &str {
    if message.len() <= max {
        return message;
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// The Splunk HTTP Event Collector envelope of an event (`/services/collector/event`): `time`
/// in seconds with milliseconds, `host`, `source` `rampart`, `sourcetype` `rampart:event`, an
/// optional `index`, and the event as `event`. Envelopes are sent back to back in one body.
pub fn hec(e: &Event, host: &str, index: Option<&str>) -> String {
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        time: f64,
        host: &'a str,
        source: &'static str,
        sourcetype: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        index: Option<&'a str>,
        event: &'a Event,
    }
    let millis = e.time.unix_timestamp_nanos().div_euclid(1_000_000);
    serde_json::to_string(&Envelope {
        time: millis as f64 / 1000.0,
        host,
        source: "rampart",
        sourcetype: "rampart:event",
        index,
        event: e,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AgentRef, IntelHit};

    fn hit() -> Event {
        crate::make::intel_hit(
            "0190b7e4-id".into(),
            time::OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
                + time::Duration::milliseconds(250),
            AgentRef {
                id: "a-1".into(),
                hostname: "web-01".into(),
                group: "dmz \"east\"".into(),
            },
            IntelHit {
                observable_kind: "connection".into(),
                observable: "198.51.100.7:8080".into(),
                context: String::new(),
                indicator_kind: "ip_port".into(),
                indicator: "198.51.100.7:8080".into(),
                how: "exact".into(),
                score: 85,
                threat_type: Some("botnet|cc".into()),
                family: None,
                run: "r1".into(),
            },
        )
    }

    #[test]
    fn cef_escapes_header_and_extension_as_the_standard_says() {
        let mut e = hit();
        e.seq = 7;
        let c = cef(&e, "0.1.0");
        // Worked out by hand from the CEF rules: `|` escaped in the header, `=` in values.
        assert_eq!(
            c,
            "CEF:0|Rampart|Rampart|0.1.0|intel.hit|web-01: connection 198.51.100.7:8080 matches botnet\\|cc indicator 198.51.100.7:8080 (score 85)|10|\
             rt=1790000000250 cat=intel.hit externalId=7 cs6Label=eventId cs6=0190b7e4-id dhost=web-01 cs5Label=agentId cs5=a-1 \
             cs1Label=group cs1=dmz \"east\" cs4Label=indicator cs4=198.51.100.7:8080 cn1Label=score cn1=85 request=198.51.100.7:8080 \
             msg=web-01: connection 198.51.100.7:8080 matches botnet|cc indicator 198.51.100.7:8080 (score 85)"
        );
        assert_eq!(cef_value("a=b\\c\nd"), "a\\=b\\\\c\\nd");
    }

    #[test]
    fn syslog_header_structured_data_and_framing() {
        let mut e = hit();
        e.seq = 7;
        let m = syslog(&e, 16, "rampart.example", 4242, Payload::Json);
        // local0 (16) × 8 + crit (2) = 130.
        let head = "<130>1 2026-09-21T14:13:20.250Z rampart.example rampart 4242 intel.hit \
                    [rampart@32473 id=\"0190b7e4-id\" seq=\"7\" severity=\"critical\" agent=\"a-1\" group=\"dmz \\\"east\\\"\"] {";
        assert!(m.starts_with(head), "{m}");
        let json = &m[head.len() - 1..];
        assert_eq!(Event::from_json(json).unwrap(), e);
        assert_eq!(
            octet_counted("<13>1 - - - - - - hi"),
            b"20 <13>1 - - - - - - hi"
        );
        assert_eq!(header_field("", 10), "-");
        assert_eq!(header_field("host name\u{e9}", 10), "hostname");
        assert_eq!(datagram("héllo", 2), "h");
        assert_eq!(datagram("héllo", 3), "hé");
        assert_eq!(datagram("hi", 10), "hi");
    }

    #[test]
    fn hec_envelope() {
        let e = hit();
        let v: serde_json::Value =
            serde_json::from_str(&hec(&e, "rampart-1", Some("security"))).unwrap();
        assert_eq!(v["time"], 1_790_000_000.25);
        assert_eq!(v["sourcetype"], "rampart:event");
        assert_eq!(v["index"], "security");
        assert_eq!(v["event"]["id"], "0190b7e4-id");
        let v: serde_json::Value = serde_json::from_str(&hec(&e, "h", None)).unwrap();
        assert!(v.get("index").is_none());
    }
}
