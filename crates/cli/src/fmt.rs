//! Output exactly as the `rbd` tool prints it: Ceph's `byte_u_t` sizes, `TextTable`
//! columns, `JSONFormatter` (compact and pretty, with Ceph's string escaping), the C++
//! stream formatting of doubles, and `ProgressContext` lines.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};

/// Ceph's `byte_u_t` (`include/types.h` `format_u`): exact multiples print without a
/// fraction, others with the most decimals (2, 1, 0) that keep the text within 7
/// characters (`1.5 GiB`, `71 MiB`, `4.0 MiB`).
pub fn byte_u(v: u64) -> String {
    const UNITS: [&str; 7] = [" B", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB"];
    let mut n = v;
    let mut index = 0;
    while n >= 1024 && index < 6 {
        n /= 1024;
        index += 1;
    }
    let mult = 1u64 << (10 * index);
    if index == 0 || v % mult == 0 {
        return format!("{n}{}", UNITS[index]);
    }
    let x = v as f64 / mult as f64;
    let mut s = String::new();
    for prec in (0..=2).rev() {
        s = format!("{x:.prec$}{}", UNITS[index]);
        if s.len() <= 7 {
            break;
        }
    }
    s
}

/// A `double` written to a C++ stream with the default flags (`%g`, precision 6):
/// `18285.7`, `583.826`, `2048`, `1.23457e+06`.
pub fn fmt_g(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    const P: i32 = 6;
    // the exponent after rounding to P significant digits
    let e = format!("{:.*e}", (P - 1) as usize, x);
    let (mant, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if !(-4..P).contains(&exp) {
        let m = strip_zeros(mant);
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (P - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{x:.decimals$}"))
    }
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Column alignment of a [`TextTable`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Pad on the right.
    Left,
    /// Pad on the left.
    Right,
}

/// Ceph's `TextTable` as the rbd tool uses it: every cell padded to its column's width,
/// columns separated by two spaces, the heading row first.
pub struct TextTable {
    cols: Vec<(String, Align, Align)>,
    rows: Vec<Vec<String>>,
}

impl TextTable {
    /// A table with columns `(heading, heading alignment, cell alignment)`.
    pub fn new(cols: &[(&str, Align, Align)]) -> Self {
        TextTable {
            cols: cols
                .iter()
                .map(|(h, a, b)| (h.to_string(), *a, *b))
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Append a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = self
            .cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|s| s.chars().count())
                    .chain([c.0.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let pad = |s: &str, w: usize, a: Align| {
            let n = w.saturating_sub(s.chars().count());
            match a {
                Align::Left => format!("{s}{}", " ".repeat(n)),
                Align::Right => format!("{}{s}", " ".repeat(n)),
            }
        };
        let mut out = String::new();
        let line = |cells: Vec<String>, out: &mut String| {
            out.push_str(&cells.join("  "));
            out.push('\n');
        };
        line(
            self.cols
                .iter()
                .zip(&widths)
                .map(|((h, a, _), w)| pad(h, *w, *a))
                .collect(),
            &mut out,
        );
        for r in &self.rows {
            line(
                self.cols
                    .iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(i, ((_, _, a), w))| {
                        pad(r.get(i).map(String::as_str).unwrap_or(""), *w, *a)
                    })
                    .collect(),
                &mut out,
            );
        }
        out
    }
}

/// The `--format` of a structured output: which of Ceph's formatters `rbd` would build
/// (`JSONFormatter` or `XMLFormatter`) and whether `--pretty-format` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// `--format xml` rather than `--format json`.
    pub xml: bool,
    /// `--pretty-format`.
    pub pretty: bool,
}

impl Format {
    /// `--format json`, compact or pretty.
    pub fn json(pretty: bool) -> Self {
        Format { xml: false, pretty }
    }

    /// `--format xml`, compact or pretty.
    pub fn xml(pretty: bool) -> Self {
        Format { xml: true, pretty }
    }
}

/// A formatter document in the order fields are dumped (Ceph's `Formatter` keeps
/// insertion order). Every child of a section keeps the name the tool dumped it under,
/// also inside arrays: JSON drops those names, but XML makes them the element names
/// (`rbd ls` is `["a","b"]` in JSON and `<images><name>a</name>...` in XML), so one tree
/// renders both formats.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `dump_string`.
    Str(String),
    /// `dump_unsigned`.
    U(u64),
    /// `dump_int`.
    I(i64),
    /// `dump_bool`.
    Bool(bool),
    /// `open_array_section`: the items with the names they were dumped under.
    Arr(Vec<(String, Json)>),
    /// `open_object_section`.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub fn obj<K: Into<String>>(fields: Vec<(K, Json)>) -> Json {
        Json::Obj(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An array whose items are all dumped under the same name (`item`: the XML element
    /// name of each, e.g. `name` for `rbd ls`, `snapshot` for `rbd snap ls`).
    pub fn arr(item: &str, items: impl IntoIterator<Item = Json>) -> Json {
        Json::Arr(items.into_iter().map(|v| (item.to_string(), v)).collect())
    }

    /// A string value.
    pub fn s(v: impl Into<String>) -> Json {
        Json::Str(v.into())
    }

    /// The document as `rbd` prints it in `format`; `root` is the name of the outermost
    /// section (the XML root element; JSON has no place for it).
    pub fn render(&self, root: &str, format: Format) -> String {
        if format.xml {
            self.render_xml(root, format.pretty)
        } else {
            self.render_json(format.pretty)
        }
    }

    /// Ceph's `JSONFormatter` output: compact (`enable_line_break`: a newline after the
    /// document) or pretty (4-space indent), both newline terminated.
    pub fn render_json(&self, pretty: bool) -> String {
        let mut out = String::new();
        self.write(&mut out, pretty, 0);
        out.push('\n');
        out
    }

    /// Ceph's `XMLFormatter` as `rbd` builds it (not lowercased, spaces in names turned
    /// into underscores, no `<?xml` header). Compact: everything on one line, then the
    /// newline of `enable_line_break`. Pretty: one element per line indented by one space
    /// per open section, an empty section's close tag on its own line, and `flush` adds
    /// a newline after the already newline-terminated document (so it ends in a blank
    /// line, as `rbd --format xml --pretty-format` does).
    pub fn render_xml(&self, root: &str, pretty: bool) -> String {
        let mut out = String::new();
        self.write_xml(&mut out, root, pretty, 0);
        out.push('\n');
        out
    }

    fn write_xml(&self, out: &mut String, name: &str, pretty: bool, depth: usize) {
        // element names are not escaped by the XMLFormatter (an image-meta key `k&<`
        // becomes the element `<k&<>`); only spaces are replaced
        let name = name.replace(' ', "_");
        if pretty {
            out.push_str(&" ".repeat(depth));
        }
        match self {
            Json::Arr(items) | Json::Obj(items) => {
                let _ = write!(out, "<{name}>");
                if pretty {
                    out.push('\n');
                }
                for (k, v) in items {
                    v.write_xml(out, k, pretty, depth + 1);
                }
                if pretty {
                    out.push_str(&" ".repeat(depth));
                }
                let _ = write!(out, "</{name}>");
            }
            scalar => {
                let _ = write!(out, "<{name}>");
                match scalar {
                    Json::Str(s) => xml_escape_into(out, s),
                    Json::U(v) => {
                        let _ = write!(out, "{v}");
                    }
                    Json::I(v) => {
                        let _ = write!(out, "{v}");
                    }
                    Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                    Json::Arr(_) | Json::Obj(_) => unreachable!("sections handled above"),
                }
                let _ = write!(out, "</{name}>");
            }
        }
        if pretty {
            out.push('\n');
        }
    }

    fn write(&self, out: &mut String, pretty: bool, depth: usize) {
        match self {
            Json::Str(s) => {
                out.push('"');
                escape_into(out, s);
                out.push('"');
            }
            Json::U(v) => {
                let _ = write!(out, "{v}");
            }
            Json::I(v) => {
                let _ = write!(out, "{v}");
            }
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Arr(items) => {
                out.push('[');
                for (i, (_, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if pretty {
                        out.push('\n');
                        out.push_str(&"    ".repeat(depth + 1));
                    }
                    v.write(out, pretty, depth + 1);
                }
                if pretty && !items.is_empty() {
                    out.push('\n');
                    out.push_str(&"    ".repeat(depth));
                }
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if pretty {
                        out.push('\n');
                        out.push_str(&"    ".repeat(depth + 1));
                    }
                    out.push('"');
                    out.push_str(k);
                    out.push('"');
                    out.push_str(if pretty { ": " } else { ":" });
                    v.write(out, pretty, depth + 1);
                }
                if pretty && !fields.is_empty() {
                    out.push('\n');
                    out.push_str(&"    ".repeat(depth));
                }
                out.push('}');
            }
        }
    }
}

/// Ceph's `escape_xml_attr` (common/escape.c), which `XMLFormatter` applies to values:
/// the five XML entities, and control characters other than tab and newline as
/// `&#xNN;`.
fn xml_escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c if ((c as u32) < 0x20 && c != '\t' && c != '\n') || c as u32 == 0x7f => {
                let _ = write!(out, "&#x{:02x};", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Ceph's `escape_json_attr` (common/escape.cc) as 16.2 has it: `"`, `\`, tab, newline
/// escaped, other control characters as `\u00XX`; `/` is left alone (rbd status prints
/// `"address":"127.0.0.1:0/2697617873"`).
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// `utils::ProgressContext`: `\r<op>: N% complete...` on stderr as the percentage grows,
/// then `...done.` or `...failed.`; silent with `--no-progress`.
pub struct Progress {
    op: &'static str,
    on: bool,
    last: AtomicI64,
}

impl Progress {
    /// A progress reporter for operation `op` (`Removing image`, ...).
    pub fn new(op: &'static str, no_progress: bool) -> Self {
        Progress {
            op,
            on: !no_progress,
            last: AtomicI64::new(0),
        }
    }

    /// Report `done` of `total`.
    pub fn update(&self, done: u64, total: u64) {
        if !self.on {
            return;
        }
        let pc = if total == 0 {
            0
        } else {
            (100 * done as u128 / total as u128) as i64
        };
        if pc >= 100 {
            // the tool's last update comes before the final chunk completes: 100% is
            // only ever printed by `finish`
            return;
        }
        let last = self.last.fetch_max(pc, Ordering::AcqRel);
        if pc > last {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r{}: {pc}% complete...", self.op);
            let _ = e.flush();
        }
    }

    /// The operation succeeded.
    pub fn finish(&self) {
        if self.on {
            eprintln!("\r{}: 100% complete...done.", self.op);
        }
    }

    /// The operation failed.
    pub fn fail(&self) {
        if self.on {
            eprintln!(
                "\r{}: {}% complete...failed.",
                self.op,
                self.last.load(Ordering::Acquire)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_u_t() {
        assert_eq!(byte_u(0), "0 B");
        assert_eq!(byte_u(1023), "1023 B");
        assert_eq!(byte_u(100 << 20), "100 MiB");
        assert_eq!(byte_u(10 << 30), "10 GiB");
        assert_eq!(byte_u(1536 << 20), "1.5 GiB");
        assert_eq!(byte_u(4 * 1024 * 1024 + 10_000), "4.0 MiB");
        assert_eq!(byte_u(74_688_000), "71 MiB");
        assert_eq!(byte_u(1_500), "1.5 KiB");
        assert_eq!(byte_u(1_030), "1.0 KiB");
    }

    #[test]
    fn doubles_like_cout() {
        assert_eq!(fmt_g(18285.714), "18285.7");
        assert_eq!(fmt_g(583.8259), "583.826");
        assert_eq!(fmt_g(2048.0), "2048");
        assert_eq!(fmt_g(1234567.0), "1.23457e+06");
        assert_eq!(fmt_g(0.000012345), "1.2345e-05");
        assert_eq!(fmt_g(0.5), "0.5");
        assert_eq!(fmt_g(999999.7), "1e+06");
    }

    #[test]
    fn table_layout() {
        let mut t = TextTable::new(&[
            ("NAME", Align::Left, Align::Left),
            ("SIZE", Align::Left, Align::Right),
            ("FMT", Align::Left, Align::Right),
        ]);
        t.row(vec!["img1".into(), "100 MiB".into(), "2".into()]);
        assert_eq!(t.render(), "NAME  SIZE     FMT\nimg1  100 MiB    2\n");
    }

    #[test]
    fn json_like_ceph() {
        let j = Json::obj(vec![
            ("a", Json::Arr(vec![])),
            ("b", Json::arr("name", [Json::s("x/y")])),
            ("c", Json::U(1)),
        ]);
        assert_eq!(j.render_json(false), "{\"a\":[],\"b\":[\"x/y\"],\"c\":1}\n");
        assert_eq!(
            j.render_json(true),
            "{\n    \"a\": [],\n    \"b\": [\n        \"x/y\"\n    ],\n    \"c\": 1\n}\n"
        );
        assert_eq!(Json::Arr(vec![]).render_json(true), "[]\n");
    }

    #[test]
    fn xml_like_ceph() {
        let j = Json::obj(vec![
            ("a", Json::Arr(vec![])),
            ("b c", Json::arr("name", [Json::s("x&<y>\"'\u{1}\t")])),
            ("k&<", Json::Bool(true)),
        ]);
        assert_eq!(
            j.render("image", Format::xml(false)),
            "<image><a></a><b_c><name>x&amp;&lt;y&gt;&quot;&apos;&#x01;\t</name></b_c><k&<>true</k&<></image>\n"
        );
        assert_eq!(
            j.render("image", Format::xml(true)),
            "<image>\n <a>\n </a>\n <b_c>\n  <name>x&amp;&lt;y&gt;&quot;&apos;&#x01;\t</name>\n </b_c>\n <k&<>true</k&<>\n</image>\n\n"
        );
        assert_eq!(j.render("image", Format::json(false)), j.render_json(false));
    }
}
