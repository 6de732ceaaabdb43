//! Where teams work: an event as a Slack message, a Discord message or an e-mail.
//!
//! The three share one list of facts ([`facts`]) and a link to the dashboard; each escapes
//! for its own markup so that text an agent or a feed wrote (a host name, a check title, an
//! indicator) can neither mention everyone nor pass for a link: Slack's `&`, `<` and `>`
//! become entities (mentions and links are written `<…>`), Discord's markdown is
//! backslash-escaped and its mentions are switched off with `allowed_mentions`.

use serde::Serialize;

use crate::event::{AlertState, Body, Event, millis};

/// What a message lists under its summary: label and value, in order.
pub fn facts(e: &Event) -> Vec<(&'static str, String)> {
    let mut out = vec![("Severity", e.severity.as_str().to_owned())];
    if let Some(a) = &e.agent {
        let host = if a.hostname.is_empty() {
            a.id.clone()
        } else {
            format!("{} ({})", a.hostname, a.id)
        };
        out.push(("Agent", host));
    }
    if let Some(g) = e.group() {
        out.push(("Group", g.to_owned()));
    }
    match &e.body {
        Body::Alert(a) => {
            out.push(("Rule", a.rule.clone()));
            out.push(("State", a.state.as_str().to_owned()));
            if let Some(p) = &a.policy {
                out.push(("Policy", p.clone()));
            }
            if let Some(c) = &a.check {
                out.push(("Check", c.clone()));
            }
            if let Some(v) = a.value {
                out.push(("Value", number(v)));
            }
            if let Some(t) = a.threshold {
                out.push(("Threshold", number(t)));
            }
            let since = match a.state {
                AlertState::Firing => "Since",
                AlertState::Resolved => "Resolved at",
            };
            out.push((since, millis::format(a.since)));
            if a.suppressed > 0 {
                out.push(("Not told during the quiet period", a.suppressed.to_string()));
            }
        }
        Body::RunStored(r) => {
            out.push(("Policy", r.policy.clone()));
            out.push(("Score", format!("{:.1} %", r.score)));
        }
        Body::CheckChanged(c) => {
            out.push(("Policy", c.policy.clone()));
            out.push(("Check", format!("{} {}", c.check, c.title)));
            out.push(("Status", c.to.as_str().to_owned()));
        }
        Body::IntelHit(h) => {
            out.push(("Observable", h.observable.clone()));
            out.push(("Indicator", format!("{} ({})", h.indicator, h.how)));
            out.push(("Score", h.score.to_string()));
        }
        Body::AgentOffline(o) => out.push(("Last seen", millis::format(o.last_seen))),
        Body::AgentEnrolled(a)
        | Body::AgentRevoked(a)
        | Body::WaiverChanged(a)
        | Body::AttestationIssued(a)
        | Body::Audit(a) => {
            out.push(("Actor", a.actor.clone()));
            out.push(("Action", format!("{} ({})", a.action, a.outcome)));
        }
    }
    out.push(("Event", format!("{} · {}", e.body.kind(), e.id)));
    out
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Where the dashboard shows an event: an alert's own link; an agent's page; the overview.
pub fn link(e: &Event, dashboard: &str) -> String {
    let base = dashboard.trim_end_matches('/');
    match (&e.body, &e.agent) {
        (Body::Alert(a), _) => a.link.clone(),
        (_, Some(a)) => format!("{base}/ui/agents/{}", path_segment(&a.id)),
        _ => format!("{base}/ui/"),
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first line of a message: state and summary.
fn headline(e: &Event) -> String {
    match &e.body {
        Body::Alert(a) => format!("[{}] {}", a.state.as_str().to_uppercase(), e.summary),
        _ => e.summary.clone(),
    }
}

/// Cuts `s` to at most `max` characters, ending with "…" when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

// ---- Slack (incoming webhooks, Block Kit) ----

/// Slack's escaping of text: the three characters its markup gives meaning.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[derive(Serialize)]
struct SlackMessage {
    /// Shown in notifications and where blocks cannot be.
    text: String,
    blocks: Vec<SlackBlock>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SlackBlock {
    Section {
        text: SlackText,
    },
    #[serde(rename = "section")]
    Fields {
        fields: Vec<SlackText>,
    },
    Actions {
        elements: Vec<SlackButton>,
    },
}

#[derive(Serialize)]
struct SlackText {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

#[derive(Serialize)]
struct SlackButton {
    #[serde(rename = "type")]
    kind: &'static str,
    text: SlackText,
    url: String,
}

/// The body of a POST to a Slack incoming webhook: the headline as the notification text, a
/// section with it, the facts as fields (Slack shows at most 10), a button to the dashboard.
pub fn slack(e: &Event, dashboard: &str) -> String {
    let head = slack_escape(&cut(&headline(e), 2900));
    let fields = facts(e)
        .into_iter()
        .take(10)
        .map(|(label, value)| SlackText {
            kind: "mrkdwn",
            text: cut(&format!("*{label}*\n{}", slack_escape(&value)), 1900),
        })
        .collect();
    let message = SlackMessage {
        text: head.clone(),
        blocks: vec![
            SlackBlock::Section {
                text: SlackText {
                    kind: "mrkdwn",
                    text: format!("*{head}*"),
                },
            },
            SlackBlock::Fields { fields },
            SlackBlock::Actions {
                elements: vec![SlackButton {
                    kind: "button",
                    text: SlackText {
                        kind: "plain_text",
                        text: "Open in Rampart".into(),
                    },
                    url: cut(&link(e, dashboard), 3000),
                }],
            },
        ],
    };
    serde_json::to_string(&message).unwrap_or_default()
}

// ---- Discord (webhooks, embeds) ----

/// Discord markdown's special characters, backslash-escaped.
pub fn discord_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '-' | '[' | ']' | '(' | ')' | '@'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Serialize)]
struct DiscordMessage {
    username: &'static str,
    /// No mention in the text notifies anyone, whatever it says.
    allowed_mentions: DiscordMentions,
    embeds: Vec<DiscordEmbed>,
}

#[derive(Serialize)]
struct DiscordMentions {
    parse: Vec<String>,
}

#[derive(Serialize)]
struct DiscordEmbed {
    title: String,
    url: String,
    color: u32,
    timestamp: String,
    fields: Vec<DiscordField>,
    footer: DiscordFooter,
}

#[derive(Serialize)]
struct DiscordField {
    name: String,
    value: String,
    inline: bool,
}

#[derive(Serialize)]
struct DiscordFooter {
    text: String,
}

/// The embed's colour: green once resolved, else by severity.
fn colour(e: &Event) -> u32 {
    use rampart_core::Severity;
    if let Body::Alert(a) = &e.body
        && a.state == AlertState::Resolved
    {
        return 0x2e7d32;
    }
    match e.severity {
        Severity::Critical => 0xb71c1c,
        Severity::High => 0xe65100,
        Severity::Medium | Severity::Unknown => 0xf9a825,
        Severity::Low => 0x1565c0,
        Severity::Info => 0x607d8b,
    }
}

/// The body of a POST to a Discord webhook: one embed titled with the headline (linked to
/// the dashboard), coloured by severity, the facts as fields, no mentions allowed.
pub fn discord(e: &Event, dashboard: &str) -> String {
    let fields = facts(e)
        .into_iter()
        .take(25)
        .map(|(label, value)| DiscordField {
            name: label.to_owned(),
            value: cut(&discord_escape(&value), 1000),
            inline: value.chars().count() <= 40,
        })
        .collect();
    let message = DiscordMessage {
        username: "Rampart",
        allowed_mentions: DiscordMentions { parse: Vec::new() },
        embeds: vec![DiscordEmbed {
            title: cut(&headline(e), 256),
            url: link(e, dashboard),
            color: colour(e),
            timestamp: millis::format(e.time),
            fields,
            footer: DiscordFooter {
                text: format!("Rampart · {}", e.body.kind()),
            },
        }],
    };
    serde_json::to_string(&message).unwrap_or_default()
}

// ---- E-mail ----

/// An e-mail's subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// One line, at most 200 characters.
    pub subject: String,
    /// Lines of text.
    pub text: String,
}

/// An event as an e-mail: the headline as subject (control characters removed), the facts
/// one per line, the link to the dashboard.
pub fn mail(e: &Event, dashboard: &str) -> Mail {
    let subject: String = format!("[Rampart] {}", headline(e))
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut text = format!("{}\n\n", headline(e));
    for (label, value) in facts(e) {
        text.push_str(&format!("{label}: {value}\n"));
    }
    text.push_str(&format!(
        "Time: {}\n\nOpen in Rampart: {}\n",
        millis::format(e.time),
        link(e, dashboard)
    ));
    Mail {
        subject: cut(&subject, 200),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AgentRef, Alert, SCHEMA};
    use rampart_core::Severity;
    use time::OffsetDateTime;

    fn alert(state: AlertState, title: &str) -> Event {
        Event {
            schema: SCHEMA.into(),
            id: "0190-a".into(),
            seq: 7,
            time: OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap(),
            severity: Severity::High,
            summary: format!("web-01 offline for 15 min {title}"),
            agent: Some(AgentRef {
                id: "a 1".into(),
                hostname: "web-01".into(),
                group: "web".into(),
            }),
            body: Body::Alert(Alert {
                rule: "offline".into(),
                condition: "agent_offline".into(),
                state,
                subject: "a 1".into(),
                group: Some("web".into()),
                policy: None,
                check: None,
                value: Some(15.0),
                threshold: Some(10.0),
                since: OffsetDateTime::from_unix_timestamp(1_789_999_100).unwrap(),
                suppressed: 2,
                link: "https://rampart.example/ui/agents/a%201".into(),
                notify: vec!["ops".into()],
            }),
        }
    }

    #[test]
    fn slack_escapes_mentions_and_links_and_carries_the_link() {
        let e = alert(AlertState::Firing, "<!channel> <https://evil|click> & co");
        let body: serde_json::Value =
            serde_json::from_str(&slack(&e, "https://rampart.example")).unwrap();
        let text = body["text"].as_str().unwrap();
        assert_eq!(
            text,
            "[FIRING] web-01 offline for 15 min &lt;!channel&gt; &lt;https://evil|click&gt; &amp; co"
        );
        assert!(!body.to_string().contains("<!channel>"));
        assert_eq!(body["blocks"][0]["type"], "section");
        assert_eq!(body["blocks"][0]["text"]["text"], format!("*{text}*"));
        let fields = body["blocks"][1]["fields"].as_array().unwrap();
        assert_eq!(fields[0]["text"], "*Severity*\nhigh");
        assert_eq!(fields[1]["text"], "*Agent*\nweb-01 (a 1)");
        assert!(fields.len() <= 10);
        assert_eq!(
            body["blocks"][2]["elements"][0]["url"],
            "https://rampart.example/ui/agents/a%201"
        );
    }

    #[test]
    fn discord_allows_no_mention_and_escapes_markdown() {
        let e = alert(AlertState::Resolved, "@everyone **bold** [x](https://evil)");
        let body: serde_json::Value =
            serde_json::from_str(&discord(&e, "https://rampart.example")).unwrap();
        assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
        let embed = &body["embeds"][0];
        assert_eq!(
            embed["title"],
            "[RESOLVED] web-01 offline for 15 min @everyone **bold** [x](https://evil)"
        );
        assert_eq!(embed["color"], 0x2e7d32, "resolved is green");
        assert_eq!(embed["url"], "https://rampart.example/ui/agents/a%201");
        assert_eq!(embed["timestamp"], "2026-09-21T14:13:20.000Z");
        let fields = embed["fields"].as_array().unwrap();
        let agent = fields.iter().find(|f| f["name"] == "Agent").unwrap();
        assert_eq!(agent["value"], "web\\-01 \\(a 1\\)");
        let quiet = fields
            .iter()
            .find(|f| f["name"] == "Not told during the quiet period")
            .unwrap();
        assert_eq!(quiet["value"], "2");
    }

    #[test]
    fn mail_has_one_line_subject_and_the_link() {
        let e = alert(AlertState::Firing, "line\r\nBcc: x@evil");
        let m = mail(&e, "https://rampart.example");
        assert_eq!(
            m.subject,
            "[Rampart] [FIRING] web-01 offline for 15 min line  Bcc: x@evil"
        );
        assert!(m.text.contains("Rule: offline\n"));
        assert!(m.text.contains("Threshold: 10\n"));
        assert!(m.text.contains("Since: 2026-09-21T13:58:20.000Z\n"));
        assert!(
            m.text
                .ends_with("Open in Rampart: https://rampart.example/ui/agents/a%201\n")
        );
    }

    #[test]
    fn other_events_link_to_their_agent_or_the_overview() {
        let mut e = alert(AlertState::Firing, "");
        e.body = Body::AgentOffline(crate::event::AgentOffline { last_seen: e.time });
        assert_eq!(
            link(&e, "https://r.example:8443/"),
            "https://r.example:8443/ui/agents/a%201"
        );
        e.agent = None;
        assert_eq!(link(&e, "https://r.example"), "https://r.example/ui/");
        assert_eq!(path_segment("cis/1.1 x"), "cis%2F1.1%20x");
    }
}
