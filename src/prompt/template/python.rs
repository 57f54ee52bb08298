//! The Python behaviour chat templates lean on that minijinja does not have: transformers' `tojson`
//! (Python's `json.dumps`), Python's `repr` for printed floats, lists and dicts, and `strftime_now`.
//!
//! Python's rules are ported from CPython 3.11: `Lib/json/encoder.py` (separators, indent, escapes),
//! `Python/pystrtod.c` `format_float_short` (float repr) and `Objects/unicodeobject.c` `unicode_repr`.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Error, ErrorKind, Output, State, Value};

/// Nesting limit for `tojson` and `repr`, well above any real message or tool schema; a template
/// cannot build a cyclic value, but it keeps a pathological one from exhausting the stack.
const MAX_DEPTH: usize = 128;

/// transformers' `tojson` filter, i.e. `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`: Python's spacing (`, ` and `: `), no HTML escaping,
/// key order kept. Arguments may be positional in that order, or keywords.
pub(super) fn tojson(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    if args.len() > 4 {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most ensure_ascii, indent, separators and sort_keys",
        ));
    }
    let positional = |i: usize| args.get(i).cloned();
    let flag = |name: &str, v: Option<Value>| -> Result<Option<bool>, Error> {
        match kwargs.get::<Option<Value>>(name)?.or(v) {
            Some(v) if !v.is_none() => Ok(Some(v.is_true())),
            _ => Ok(None),
        }
    };
    let ensure_ascii = flag("ensure_ascii", positional(0))?;
    let indent = kwargs.get::<Option<Value>>("indent")?.or(positional(1));
    let separators = kwargs.get::<Option<Value>>("separators")?.or(positional(2));
    let sort_keys = flag("sort_keys", positional(3))?;
    kwargs.assert_all_used()?;

    let indent = match indent {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_string(),
            None => {
                let n = i64::try_from(v)
                    .map_err(|_| invalid("tojson: indent must be an integer, a string or none"))?;
                " ".repeat(usize::try_from(n).unwrap_or(0))
            }
        }),
    };
    let (item_sep, key_sep) = match separators {
        Some(v) if !v.is_none() && !v.is_undefined() => {
            let pair: Vec<Value> = v
                .try_iter()
                .map_err(|_| invalid("tojson: separators must be a pair of strings"))?
                .collect();
            match pair.as_slice() {
                [item, key] => match (item.as_str(), key.as_str()) {
                    (Some(item), Some(key)) => (item.to_string(), key.to_string()),
                    _ => return Err(invalid("tojson: separators must be a pair of strings")),
                },
                _ => return Err(invalid("tojson: separators must be a pair of strings")),
            }
        }
        // json.dumps drops the space after the item separator when it indents.
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let encoder = JsonEncoder {
        ensure_ascii: ensure_ascii.unwrap_or(false),
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.unwrap_or(false),
    };
    let mut out = String::new();
    encoder.encode(value, 0, &mut out)?;
    Ok(Value::from(out))
}

/// The options of one `json.dumps` call.
struct JsonEncoder {
    /// Escape every non-ASCII character as `\uXXXX` (transformers defaults to false).
    ensure_ascii: bool,
    /// None keeps everything on one line; Some puts each item on its own line, indented this much per level.
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl JsonEncoder {
    fn encode(&self, value: &Value, depth: usize, out: &mut String) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(invalid("tojson: value nested too deeply"));
        }
        match value.kind() {
            ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
            ValueKind::Number => out.push_str(&json_number(value)),
            ValueKind::String => self.encode_str(value.as_str().unwrap_or_default(), out),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = value.try_iter()?.collect();
                self.encode_container(out, depth, ('[', ']'), &items, |item, out| {
                    self.encode(item, depth + 1, out)
                })?;
            }
            ValueKind::Map => {
                let mut pairs = Vec::new();
                for key in value.try_iter()? {
                    let item = value.get_item(&key)?;
                    pairs.push((json_key(&key)?, item));
                }
                if self.sort_keys {
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                }
                self.encode_container(out, depth, ('{', '}'), &pairs, |(key, item), out| {
                    self.encode_str(key, out);
                    out.push_str(&self.key_sep);
                    self.encode(item, depth + 1, out)
                })?;
            }
            ValueKind::Undefined => {
                return Err(invalid(
                    "tojson: the value is undefined (a missing variable or key)",
                ))
            }
            kind => {
                return Err(invalid(format!(
                    "tojson: a {kind} is not JSON serializable"
                )))
            }
        }
        Ok(())
    }

    /// Writes `open item sep item ... close`, one item per line when indenting (json.encoder's
    /// `_iterencode_list` and `_iterencode_dict`).
    fn encode_container<T>(
        &self,
        out: &mut String,
        depth: usize,
        (open, close): (char, char),
        items: &[T],
        mut encode_item: impl FnMut(&T, &mut String) -> Result<(), Error>,
    ) -> Result<(), Error> {
        out.push(open);
        if items.is_empty() {
            out.push(close);
            return Ok(());
        }
        let newline = |level: usize| match &self.indent {
            Some(indent) => format!("\n{}", indent.repeat(level)),
            None => String::new(),
        };
        let inner = newline(depth + 1);
        out.push_str(&inner);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(&self.item_sep);
                out.push_str(&inner);
            }
            encode_item(item, out)?;
        }
        out.push_str(&newline(depth));
        out.push(close);
        Ok(())
    }

    /// json.encoder's `py_encode_basestring` (or `_ascii` with ensure_ascii).
    fn encode_str(&self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if self.ensure_ascii && !(' '..='~').contains(&c) => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A number as json.dumps writes it: ints as they are, floats as `float.__repr__`, with
/// `NaN`/`Infinity` for the non-finite ones.
fn json_number(value: &Value) -> String {
    if value.is_integer() {
        return value.to_string();
    }
    match f64::try_from(value.clone()) {
        Ok(f) if f.is_nan() => "NaN".to_string(),
        Ok(f) if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string(),
        Ok(f) => float_repr(f),
        Err(_) => value.to_string(),
    }
}

/// A dict key as json.dumps converts it: strings as they are, numbers, booleans and None to
/// their JSON text; anything else is a TypeError in Python too.
fn json_key(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_string()),
        ValueKind::Number => Ok(json_number(key)),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.to_string()),
        ValueKind::None => Ok("null".to_string()),
        kind => Err(invalid(format!(
            "tojson: keys must be str, int, float, bool or None, not {kind}"
        ))),
    }
}

/// Python's `repr(float)` (and `str(float)`): the shortest digits that round-trip, positional
/// for exponents from -4 to 15 (`0.0001`, `1e-05`, `1e+16`), always with a `.0` or an exponent.
pub(super) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // Rust's `{:e}` gives the same shortest round-trip digits as Python's repr: "1.2345e-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("LowerExp output for a finite float has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Position of the decimal point relative to the digits: value = 0.DIGITS * 10^decpt.
    let decpt = exp + 1;
    let body = if (-3..=16).contains(&decpt) {
        let n = digits.len() as i32;
        if decpt <= 0 {
            format!("0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt >= n {
            format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
        } else {
            let (int, frac) = digits.split_at(decpt as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{exp_sign}{:02}", exp.abs())
    };
    format!("{sign}{body}")
}

/// Python's `repr(str)`: single quotes unless the text holds a `'` and no `"`; backslash escapes
/// for the quote, backslash, `\n`, `\r`, `\t` and other control characters.
fn str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            c if c == quote || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `repr` of a value inside a printed list or dict (`['a', 1.0, None]`).
fn repr(value: &Value, depth: usize, out: &mut String) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(invalid("value nested too deeply to print"));
    }
    match value.kind() {
        ValueKind::String => str_repr(value.as_str().unwrap_or_default(), out),
        ValueKind::Number if !value.is_integer() => {
            out.push_str(&float_repr(f64::try_from(value.clone())?))
        }
        ValueKind::Seq => {
            out.push('[');
            for (i, item) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr(&item, depth + 1, out)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr(&key, depth + 1, out)?;
                out.push_str(": ");
                repr(&value.get_item(&key)?, depth + 1, out)?;
            }
            out.push('}');
        }
        // None, True/False and ints already print as Python does.
        _ => {
            let _ = write!(out, "{value}");
        }
    }
    Ok(())
}

/// The formatter for `{{ ... }}`: what Python's `str()` would print for floats, lists and dicts,
/// minijinja's own output for the rest (strings, ints, `True`, `None`, undefined as nothing).
pub(super) fn format_value(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Number if !value.is_integer() => {
            let f = f64::try_from(value.clone())?;
            out.write_str(&float_repr(f))?;
        }
        ValueKind::Seq | ValueKind::Map if value.as_object().is_some() => {
            let mut text = String::new();
            repr(value, 0, &mut text)?;
            out.write_str(&text)?;
        }
        _ => minijinja::escape_formatter(out, state, value)?,
    }
    Ok(())
}

/// transformers' `strftime_now(format)`: the current time formatted like Python's `strftime`.
/// It formats UTC, not the host's local time, which is what a server in a container has anyway.
pub(super) fn strftime_now(format: &str) -> Result<String, Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| invalid("strftime_now: the system clock is before 1970"))?;
    Ok(strftime(format, now.as_secs()))
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// C `strftime` in the C locale for a UTC time in seconds since the epoch. Supports the
/// directives chat templates use (`%d %b %Y`, `%Y-%m-%d`, ...) and glibc's `%-d` (no padding);
/// an unknown directive is copied through, as glibc does.
pub(super) fn strftime(format: &str, unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let yday = days - days_from_civil(year, 1, 1) + 1;
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };

    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let unpadded = chars.peek() == Some(&'-');
        if unpadded {
            chars.next();
        }
        let num = |n: i64, width: usize| {
            if unpadded {
                n.to_string()
            } else {
                format!("{n:0width$}")
            }
        };
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&num(year.rem_euclid(100), 2)),
            Some('m') => out.push_str(&num(month as i64, 2)),
            Some('d') => out.push_str(&num(day as i64, 2)),
            Some('e') => out.push_str(&format!("{day:2}")),
            Some('j') => out.push_str(&num(yday, 3)),
            Some('H') => out.push_str(&num(hour as i64, 2)),
            Some('I') => out.push_str(&num(hour12 as i64, 2)),
            Some('M') => out.push_str(&num(minute as i64, 2)),
            Some('S') => out.push_str(&num(second as i64, 2)),
            Some('p') => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            Some('A') => out.push_str(WEEKDAYS[weekday]),
            Some('a') => out.push_str(&WEEKDAYS[weekday][..3]),
            Some('B') => out.push_str(MONTHS[month as usize - 1]),
            Some('b') | Some('h') => out.push_str(&MONTHS[month as usize - 1][..3]),
            Some('F') => out.push_str(&format!("{year}-{month:02}-{day:02}")),
            Some('T') => out.push_str(&format!("{hour:02}:{minute:02}:{second:02}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                if unpadded {
                    out.push('-');
                }
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01, from Howard Hinnant's
/// `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`] (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        // Expected values are Python 3's repr() of the same floats.
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456789.0, "123456789.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e100, "1e+100"),
            (-2.5e-300, "-2.5e-300"),
            (0.30000000000000004, "0.30000000000000004"),
            (f64::INFINITY, "inf"),
        ];
        for (f, expected) in cases {
            assert_eq!(float_repr(f), expected, "repr({f:e})");
        }
    }

    #[test]
    fn strftime_formats_a_known_instant() {
        // 2024-07-26 13:05:09 UTC, a Friday, day 208 of a leap year.
        let t = 1_721_999_109;
        assert_eq!(strftime("%d %b %Y", t), "26 Jul 2024");
        assert_eq!(strftime("%Y-%m-%d %H:%M:%S", t), "2024-07-26 13:05:09");
        assert_eq!(
            strftime("%A %B %-d, %I%p, day %j", t),
            "Friday July 26, 01PM, day 208"
        );
        assert_eq!(strftime("%a %y %% %Q", t), "Fri 24 % %Q");
        assert_eq!(strftime("%F", 0), "1970-01-01");
        assert_eq!(strftime("%d %b %Y", 951_782_400), "29 Feb 2000");
    }
}
