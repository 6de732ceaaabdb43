//! The CSV feed driver: finds the header (commented or not), falls back to documented layouts,
//! checks field counts, and hands each row to a format's row function.

use std::io::BufRead;

use super::fields::{Header, split_csv};
use super::input::Lines;
use super::{Ctx, ParseError};

/// How one CSV feed dialect looks.
pub(crate) struct CsvSpec {
    /// The format's name, for notes.
    pub name: &'static str,
    /// Comment prefixes (`#` for abuse.ch, none for KEV).
    pub comments: &'static [&'static str],
    /// Field separator.
    pub sep: u8,
    /// Column names whose presence identifies the header line.
    pub header_marker: &'static [&'static str],
    /// Documented column orders, used only when a file carries no header.
    pub layouts: &'static [&'static [&'static str]],
}

/// One data row.
pub(crate) struct Row<'a> {
    pub header: &'a Header,
    pub fields: &'a [String],
    pub line: u64,
    pub raw: &'a str,
}

impl Row<'_> {
    /// The non-null value of the first of `names` present in the header.
    pub fn get(&self, names: &[&str]) -> Option<&str> {
        self.header.get(self.fields, names)
    }
}

/// Reads `doc` as `spec`, calling `row` for each data row.
pub(crate) fn read(
    doc: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
    spec: &CsvSpec,
    row: &mut dyn FnMut(&Row<'_>, &mut Ctx<'_>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut lines = Lines::new(doc, ctx.limits());
    let mut header: Option<Header> = None;
    let is_header = |fields: &[String]| {
        let h = Header::new(fields);
        spec.header_marker.iter().all(|m| h.has(m)).then_some(h)
    };
    while lines.advance(ctx)? {
        let number = lines.number;
        let text = lines.text();
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = spec.comments.iter().find_map(|c| trimmed.strip_prefix(c)) {
            if header.is_none()
                && let Ok(fields) = split_csv(comment.trim(), spec.sep)
                && let Some(h) = is_header(&fields)
            {
                header = Some(h);
            }
            continue;
        }
        let fields = match split_csv(text, spec.sep) {
            Ok(f) => f,
            Err(why) => {
                ctx.problem(number, None, format!("malformed CSV row ({why}); skipped"));
                continue;
            }
        };
        let current = match &header {
            Some(h) => h,
            None => {
                if let Some(h) = is_header(&fields) {
                    header = Some(h);
                    continue;
                }
                match spec.layouts.iter().find(|l| l.len() == fields.len()) {
                    Some(layout) => {
                        ctx.note(format!(
                            "{}: no header line; assumed the documented column order of {} fields",
                            spec.name,
                            layout.len()
                        ));
                        header.insert(Header::new(layout))
                    }
                    None => {
                        ctx.problem(
                            number,
                            None,
                            format!("no header line before this row, and {} fields match no known {} layout; skipped", fields.len(), spec.name),
                        );
                        continue;
                    }
                }
            }
        };
        if fields.len() != current.len() {
            ctx.problem(
                number,
                None,
                format!(
                    "expected {} fields (from the header), found {}; skipped",
                    current.len(),
                    fields.len()
                ),
            );
            continue;
        }
        row(
            &Row {
                header: current,
                fields: &fields,
                line: number,
                raw: text,
            },
            ctx,
        )?;
    }
    Ok(())
}
