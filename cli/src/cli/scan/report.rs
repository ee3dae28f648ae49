//! A scan's checks, and their text (one screen) and JSON forms.

use serde_json::{json, Value};

/// The longest line of the text report.
pub const WIDTH: usize = 120;

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The server does it.
    Yes,
    /// The server does not (the check says why).
    No,
    /// A value or a comparison, neither good nor bad in itself.
    Info,
    /// The check could not run (the check says why).
    Unknown,
}

impl Verdict {
    /// `yes`, `no`, `info`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Yes => "yes",
            Self::No => "no",
            Self::Info => "info",
            Self::Unknown => "unknown",
        }
    }

    /// The verdict for a yes/no observation.
    pub fn of(yes: bool) -> Self {
        if yes {
            Self::Yes
        } else {
            Self::No
        }
    }
}

/// One check: what was asked, the verdict, the value for scripts, the evidence, why not, and
/// what it means for an MTA.
#[derive(Clone, Debug)]
pub struct Check {
    /// A stable name for JSON (`tickets`, `resume_ticket`, …).
    pub id: &'static str,
    /// What was checked, in words.
    pub label: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// The value for scripts (a count, seconds, a boolean, an object).
    pub value: Value,
    /// What was seen.
    pub evidence: String,
    /// Why not (with [`Verdict::No`] and [`Verdict::Unknown`]).
    pub reason: Option<String>,
    /// What it means for an MTA, where it matters.
    pub mta: Option<String>,
}

impl Check {
    /// A check with a verdict, a value and the evidence.
    pub fn new(
        id: &'static str,
        label: &'static str,
        verdict: Verdict,
        value: Value,
        evidence: impl Into<String>,
    ) -> Self {
        Self {
            id,
            label,
            verdict,
            value,
            evidence: evidence.into(),
            reason: None,
            mta: None,
        }
    }

    /// A check that could not run, and why.
    pub fn unknown(id: &'static str, label: &'static str, why: impl Into<String>) -> Self {
        Self::new(id, label, Verdict::Unknown, Value::Null, "").because(why)
    }

    /// Adds why not.
    pub fn because(mut self, why: impl Into<String>) -> Self {
        self.reason = Some(why.into());
        self
    }

    /// Adds what it means for an MTA.
    pub fn meaning(mut self, mta: impl Into<String>) -> Self {
        self.mta = Some(mta.into());
        self
    }

    /// The JSON object.
    pub fn json(&self) -> Value {
        json!({
            "label": self.label,
            "verdict": self.verdict.name(),
            "value": self.value,
            "evidence": self.evidence,
            "reason": self.reason,
            "mta": self.mta,
        })
    }

    /// The text lines: verdict, label and evidence (and why not); what it means, indented.
    pub fn text(&self, out: &mut Vec<String>) {
        let mut line = format!("{}: {}", self.label, self.evidence);
        if self.evidence.is_empty() {
            line = self.label.to_owned();
        }
        if let Some(why) = &self.reason {
            line.push_str(&format!(" - {why}"));
        }
        wrap(&format!("  {:<7} ", self.verdict.name()), &line, out);
        if let Some(mta) = &self.mta {
            wrap("            MTA: ", mta, out);
        }
    }
}

/// The checks as one JSON object keyed by id.
pub fn checks_json(checks: &[Check]) -> Value {
    let mut map = serde_json::Map::new();
    for c in checks {
        map.insert(c.id.to_owned(), c.json());
    }
    Value::Object(map)
}

/// Appends `text` after `first` (the first line's lead), wrapped at [`WIDTH`] with the
/// following lines indented as far as the lead.
pub fn wrap(first: &str, text: &str, out: &mut Vec<String>) {
    let indent = " ".repeat(first.chars().count());
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push(std::mem::replace(&mut line, indent.clone()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_fit_and_keep_every_word() {
        let text = "word ".repeat(100);
        let mut out = Vec::new();
        wrap("  no   ", &text, &mut out);
        assert!(out.len() > 1);
        assert!(out.iter().all(|l| l.chars().count() <= WIDTH), "{out:?}");
        let words: usize = out.iter().map(|l| l.split_whitespace().count()).sum();
        assert_eq!(words, 101);
        assert!(out[1].starts_with("       word") && !out[1].starts_with("        "));
    }
}
