//! The prompt, in one readable place. Local models are small and slow: a short system message,
//! the facts, and a request for two or three sentences.

use crate::explain::redact::Redactor;
use crate::explain::worker::Context;

pub const SYSTEM: &str = "You are a site reliability engineer reading logs. \
Answer in two or three plain sentences: the likely cause, then one next step to check. \
Do not repeat the log line.";

/// Most characters of one line in a prompt (a model's context is small).
const LINE_CHARS: usize = 400;

/// The user message for one anomalous template, redacted.
pub fn user_message(ctx: &Context, redactor: &Redactor) -> String {
    let mut s = String::new();
    s.push_str("A log anomaly detector flagged this line:\n");
    s.push_str(&clip(&redactor.redact(&ctx.line)));
    s.push_str("\n\nIts message template (<*> marks values): ");
    s.push_str(&clip(&redactor.redact(&ctx.template)));
    s.push_str(&format!("\nWhy it was flagged: {}", ctx.reason));
    s.push_str(&format!("\nSeen {} time{} so far.", ctx.count, if ctx.count == 1 { "" } else { "s" }));
    if !ctx.neighbours.is_empty() {
        s.push_str("\nThe lines just before it:\n");
        for n in &ctx.neighbours {
            s.push_str(&clip(&redactor.redact(n)));
            s.push('\n');
        }
    }
    s.push_str("\nWhat is the likely cause, and what should be checked next?");
    s
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(LINE_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exactly what is sent for one anomaly: the whole user message, secrets gone.
    #[test]
    fn the_prompt_sent_is_exactly_this() {
        let ctx = Context {
            line: "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2 token=abc123".into(),
            template: "Failed password for invalid user <*> from <*> port <*> ssh2 token=<*>".into(),
            reason: "new template; trouble: error words".into(),
            count: 3,
            neighbours: vec!["Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186".into()],
        };
        let r = Redactor::new(&[]).unwrap();
        assert_eq!(
            user_message(&ctx, &r),
            "A log anomaly detector flagged this line:\n\
             Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user <user> from <ip> port 38926 ssh2 token=<redacted>\n\n\
             Its message template (<*> marks values): Failed password for invalid user <*> from <*> port <*> ssh2 token=<redacted>\n\
             Why it was flagged: new template; trouble: error words\n\
             Seen 3 times so far.\n\
             The lines just before it:\n\
             Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user <user> from <ip>\n\n\
             What is the likely cause, and what should be checked next?"
        );
    }
}
