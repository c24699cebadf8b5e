//! Values of `org.systemd.property.<Name>` annotations: GVariant text format (GLib's
//! gvariant-text), the notation runc and crun accept there, e.g. `uint64 123456789`,
//! `'inactive-or-failed'`, `true`, `[ 'a', 'b' ]`, `@as []`, `[('/dev/null', 'rw')]`.
//!
//! Supported: booleans, numbers (untyped integers are int32 and untyped reals double, as in
//! GLib; `byte`, `int16` ... `uint64`, `double` prefixes), strings in single or double quotes,
//! `objectpath`/`signature` prefixes, `@TYPE` annotations, arrays, tuples, dictionaries and
//! `<variants>` — everything that has a D-Bus type (no maybes, no handles).

use anyhow::{Result, anyhow, bail};

use super::dbus::{Value, check_signature};

/// Parse `text` into a D-Bus value.
pub fn parse(text: &str) -> Result<Value> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let v = p.value(None, 0)?;
    p.ws();
    if p.at != p.s.len() {
        bail!("unexpected {:?} at offset {}", p.rest(), p.at);
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

const KEYWORDS: [(&str, &str); 12] = [
    ("boolean", "b"),
    ("byte", "y"),
    ("int16", "n"),
    ("uint16", "q"),
    ("int32", "i"),
    ("uint32", "u"),
    ("int64", "x"),
    ("uint64", "t"),
    ("double", "d"),
    ("string", "s"),
    ("objectpath", "o"),
    ("signature", "g"),
];

impl Parser<'_> {
    fn rest(&self) -> String {
        String::from_utf8_lossy(&self.s[self.at.min(self.s.len())..])
            .chars()
            .take(20)
            .collect()
    }
    fn ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.at).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> &str {
        self.ws();
        let start = self.at;
        while self.at < self.s.len()
            && (self.s[self.at].is_ascii_alphanumeric() || self.s[self.at] == b'_')
        {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at]).unwrap_or("")
    }

    /// A value of type `want` (a single complete D-Bus type) when known.
    fn value(&mut self, want: Option<&str>, depth: u32) -> Result<Value> {
        if depth > 32 {
            bail!("nested too deeply");
        }
        let Some(c) = self.peek() else {
            bail!("a value is missing");
        };
        match c {
            b'@' => {
                self.at += 1;
                let start = self.at;
                while self.at < self.s.len() && !self.s[self.at].is_ascii_whitespace() {
                    self.at += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
                check_signature(t).map_err(|e| anyhow!("@{t}: {e:#}"))?;
                self.check_want(want, t)?;
                self.value(Some(t), depth + 1)
            }
            b'\'' | b'"' => {
                let s = self.string()?;
                match want {
                    None | Some("s") => Ok(Value::Str(s)),
                    Some("o") => Ok(Value::Path(s)),
                    Some("g") => {
                        check_signature(&s)?;
                        Ok(Value::Sig(s))
                    }
                    Some(t) => bail!("a string where {t:?} was expected"),
                }
            }
            b'[' => self.array(want, depth),
            b'(' => self.tuple(want, depth),
            b'{' => self.dict(want, depth),
            b'<' => {
                self.at += 1;
                self.check_want(want, "v")?;
                let v = self.value(None, depth + 1)?;
                if !self.eat(b'>') {
                    bail!("'>' expected at {:?}", self.rest());
                }
                Ok(Value::Variant(Box::new(v)))
            }
            c if c.is_ascii_alphabetic() => {
                let save = self.at;
                let w = self.word().to_string();
                match w.as_str() {
                    "true" | "false" => {
                        self.check_want(want, "b")?;
                        Ok(Value::Bool(w == "true"))
                    }
                    _ => match KEYWORDS.iter().find(|(k, _)| *k == w) {
                        Some((_, t)) => {
                            self.check_want(want, t)?;
                            self.value(Some(t), depth + 1)
                        }
                        None => {
                            self.at = save;
                            bail!("unknown word {w:?}")
                        }
                    },
                }
            }
            _ => self.number(want),
        }
    }

    fn check_want(&self, want: Option<&str>, got: &str) -> Result<()> {
        match want {
            Some(w) if w != got => bail!("a {got:?} value where {w:?} was expected"),
            _ => Ok(()),
        }
    }

    fn string(&mut self) -> Result<String> {
        let q = self.s[self.at];
        self.at += 1;
        let mut out = String::new();
        loop {
            let Some(&c) = self.s.get(self.at) else {
                bail!("unterminated string");
            };
            self.at += 1;
            if c == q {
                return Ok(out);
            }
            if c != b'\\' {
                // Copy a whole UTF-8 sequence.
                let start = self.at - 1;
                let mut end = self.at;
                while end < self.s.len() && (self.s[end] & 0xc0) == 0x80 {
                    end += 1;
                }
                out.push_str(std::str::from_utf8(&self.s[start..end])?);
                self.at = end;
                continue;
            }
            let Some(&e) = self.s.get(self.at) else {
                bail!("unterminated string");
            };
            self.at += 1;
            match e {
                b'n' => out.push('\n'),
                b't' => out.push('\t'),
                b'r' => out.push('\r'),
                b'a' => out.push('\x07'),
                b'b' => out.push('\x08'),
                b'f' => out.push('\x0c'),
                b'v' => out.push('\x0b'),
                b'u' | b'U' => {
                    let n = if e == b'u' { 4 } else { 8 };
                    let hex = self
                        .s
                        .get(self.at..self.at + n)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .ok_or_else(|| anyhow!("bad \\{} escape", e as char))?;
                    let ch = u32::from_str_radix(hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| anyhow!("bad \\{} escape", e as char))?;
                    out.push(ch);
                    self.at += n;
                }
                c => out.push(c as char),
            }
        }
    }

    fn number(&mut self, want: Option<&str>) -> Result<Value> {
        self.ws();
        let start = self.at;
        while self.at < self.s.len()
            && (self.s[self.at].is_ascii_alphanumeric() || b"+-.".contains(&self.s[self.at]))
        {
            self.at += 1;
        }
        let t = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
        if t.is_empty() {
            bail!("unexpected {:?}", self.rest());
        }
        let (neg, digits) = match t.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let hex = digits.starts_with("0x") || digits.starts_with("0X");
        let real = !hex && digits.contains(['.', 'e', 'E']) || digits == "inf" || digits == "nan";
        let want = want.unwrap_or(if real { "d" } else { "i" });
        if want == "d" {
            let v: f64 = t.parse().map_err(|_| anyhow!("{t:?} is not a number"))?;
            return Ok(Value::Double(v));
        }
        if real {
            bail!("{t:?} is not an integer ({want:?} expected)");
        }
        let mag = if hex {
            u128::from_str_radix(&digits[2..], 16)
        } else {
            digits.parse::<u128>()
        }
        .map_err(|_| anyhow!("{t:?} is not a number"))?;
        let v: i128 = if neg { -(mag as i128) } else { mag as i128 };
        let range = || anyhow!("{t} is out of range for {}", type_name(want));
        Ok(match want {
            "y" => Value::Byte(u8::try_from(v).map_err(|_| range())?),
            "n" => Value::I16(i16::try_from(v).map_err(|_| range())?),
            "q" => Value::U16(u16::try_from(v).map_err(|_| range())?),
            "i" => Value::I32(i32::try_from(v).map_err(|_| range())?),
            "u" => Value::U32(u32::try_from(v).map_err(|_| range())?),
            "x" => Value::I64(i64::try_from(v).map_err(|_| range())?),
            "t" => Value::U64(u64::try_from(v).map_err(|_| range())?),
            t => bail!("a number where {t:?} was expected"),
        })
    }

    fn array(&mut self, want: Option<&str>, depth: u32) -> Result<Value> {
        self.at += 1;
        let mut elem: Option<String> = match want {
            Some(w) if w.starts_with('a') && !w.starts_with("a{") => Some(w[1..].to_string()),
            Some(w) => bail!("an array where {w:?} was expected"),
            None => None,
        };
        let mut items = vec![];
        if !self.eat(b']') {
            loop {
                let v = self.value(elem.as_deref(), depth + 1)?;
                if elem.is_none() {
                    elem = Some(v.signature());
                }
                items.push(v);
                if self.eat(b']') {
                    break;
                }
                if !self.eat(b',') {
                    bail!("',' or ']' expected at {:?}", self.rest());
                }
            }
        }
        let elem = elem.ok_or_else(|| {
            anyhow!("the type of an empty array is unknown: write it as @as [] (or @au [] ...)")
        })?;
        Ok(Value::Array(elem, items))
    }

    fn tuple(&mut self, want: Option<&str>, depth: u32) -> Result<Value> {
        self.at += 1;
        let parts: Option<Vec<String>> = match want {
            Some(w) if w.starts_with('(') => {
                let inner = &w[1..w.len() - 1];
                let mut v = vec![];
                let mut at = 0;
                while at < inner.len() {
                    let n = one_len(&inner[at..])?;
                    v.push(inner[at..at + n].to_string());
                    at += n;
                }
                Some(v)
            }
            Some(w) => bail!("a tuple where {w:?} was expected"),
            None => None,
        };
        let mut items = vec![];
        while !self.eat(b')') {
            let t = parts
                .as_ref()
                .and_then(|p| p.get(items.len()))
                .map(|s| s.as_str());
            if parts.is_some() && t.is_none() {
                bail!("too many tuple members for {:?}", want.unwrap_or(""));
            }
            items.push(self.value(t, depth + 1)?);
            if !self.eat(b',') && self.peek() != Some(b')') {
                bail!("',' or ')' expected at {:?}", self.rest());
            }
        }
        if items.is_empty() {
            bail!("an empty tuple has no D-Bus type");
        }
        if let Some(p) = &parts
            && p.len() != items.len()
        {
            bail!("too few tuple members for {:?}", want.unwrap_or(""));
        }
        Ok(Value::Struct(items))
    }

    fn dict(&mut self, want: Option<&str>, depth: u32) -> Result<Value> {
        self.at += 1;
        let (mut kt, mut vt): (Option<String>, Option<String>) = match want {
            Some(w) if w.starts_with("a{") => {
                let k = one_len(&w[2..])?;
                (
                    Some(w[2..2 + k].to_string()),
                    Some(w[2 + k..w.len() - 1].to_string()),
                )
            }
            Some(w) => bail!("a dictionary where {w:?} was expected"),
            None => (None, None),
        };
        let mut items = vec![];
        if !self.eat(b'}') {
            loop {
                let k = self.value(kt.as_deref(), depth + 1)?;
                if !self.eat(b':') {
                    bail!("':' expected at {:?}", self.rest());
                }
                let v = self.value(vt.as_deref(), depth + 1)?;
                kt.get_or_insert_with(|| k.signature());
                vt.get_or_insert_with(|| v.signature());
                items.push(Value::DictEntry(Box::new(k), Box::new(v)));
                if self.eat(b'}') {
                    break;
                }
                if !self.eat(b',') {
                    bail!("',' or '}}' expected at {:?}", self.rest());
                }
            }
        }
        match (kt, vt) {
            (Some(k), Some(v)) => Ok(Value::Array(format!("{{{k}{v}}}"), items)),
            _ => bail!("the type of an empty dictionary is unknown: write it as @a{{sv}} {{}}"),
        }
    }
}

/// The length of the first complete type of a signature.
fn one_len(sig: &str) -> Result<usize> {
    let b = sig.as_bytes();
    // check_signature on growing prefixes is quadratic but signatures here are tiny.
    for n in 1..=b.len() {
        if check_signature(&sig[..n]).is_ok() {
            return Ok(n);
        }
    }
    bail!("bad type {sig:?}")
}

fn type_name(t: &str) -> &'static str {
    KEYWORDS
        .iter()
        .find(|(_, s)| *s == t)
        .map(|(k, _)| *k)
        .unwrap_or("the type")
}

/// systemd takes times in microseconds (`...USec`); runc and crun also accept the name with
/// `Sec` and a value in seconds: `TimeoutStopSec=5` becomes `TimeoutStopUSec=5000000` (a
/// uint64, as systemd wants it).
pub fn sec_to_usec(name: &str, v: Value) -> Result<(String, Value)> {
    let Some(stem) = name.strip_suffix("Sec") else {
        return Ok((name.to_string(), v));
    };
    if !stem.ends_with(|c: char| c.is_ascii_lowercase()) {
        return Ok((name.to_string(), v));
    }
    const M: u64 = 1_000_000;
    let neg = || anyhow!("a time cannot be negative");
    let secs: u64 = match v {
        Value::Byte(x) => x as u64,
        Value::I16(x) => u64::try_from(x).map_err(|_| neg())?,
        Value::U16(x) => x as u64,
        Value::I32(x) => u64::try_from(x).map_err(|_| neg())?,
        Value::U32(x) => x as u64,
        Value::I64(x) => u64::try_from(x).map_err(|_| neg())?,
        Value::U64(x) => x,
        Value::Double(x) if x >= 0.0 => {
            return Ok((
                format!("{stem}USec"),
                Value::U64((x * M as f64).round() as u64),
            ));
        }
        Value::Double(_) => return Err(neg()),
        _ => bail!("{name} takes a number of seconds"),
    };
    let us = secs
        .checked_mul(M)
        .ok_or_else(|| anyhow!("{secs} seconds is out of range"))?;
    Ok((format!("{stem}USec"), Value::U64(us)))
}

/// runc's rule for property names: at least three ASCII letters and nothing else.
pub fn check_property_name(name: &str) -> Result<()> {
    if name.len() < 3 || !name.bytes().all(|c| c.is_ascii_alphabetic()) {
        bail!("{name:?} is not a systemd property name (ASCII letters only, at least three)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Value {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e:#}"))
    }

    #[test]
    fn values() {
        assert_eq!(p("true"), Value::Bool(true));
        assert_eq!(p(" false "), Value::Bool(false));
        assert_eq!(p("uint64 123456789"), Value::U64(123456789));
        assert_eq!(p("@t 5"), Value::U64(5));
        assert_eq!(p("42"), Value::I32(42));
        assert_eq!(p("-1"), Value::I32(-1));
        assert_eq!(p("1.5"), Value::Double(1.5));
        assert_eq!(p("byte 0x10"), Value::Byte(16));
        assert_eq!(
            p("'inactive-or-failed'"),
            Value::Str("inactive-or-failed".into())
        );
        assert_eq!(p(r#""it's \"x\"\n""#), Value::Str("it's \"x\"\n".into()));
        assert_eq!(p("objectpath '/a/b'"), Value::Path("/a/b".into()));
        assert_eq!(
            p("['a', 'b']"),
            Value::Array(
                "s".into(),
                vec![Value::Str("a".into()), Value::Str("b".into())]
            )
        );
        assert_eq!(p("@as []"), Value::Array("s".into(), vec![]));
        assert_eq!(
            p("[('/dev/null', 'rw')]"),
            Value::Array(
                "(ss)".into(),
                vec![Value::Struct(vec![
                    Value::Str("/dev/null".into()),
                    Value::Str("rw".into())
                ])]
            )
        );
        assert_eq!(
            p("@a(st) [('/dev/sda', 100)]").signature(),
            "a(st)".to_string()
        );
        assert_eq!(p("{'a': <1>}").signature(), "a{sv}");
        assert_eq!(p("<'x'>"), Value::Variant(Box::new(Value::Str("x".into()))));
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "[]",
            "{}",
            "'abc",
            "uint64 -1",
            "byte 300",
            "[1, 'a']",
            "nothing",
            "@q",
            "1 2",
            "(1",
            "int32 1.5",
            "99999999999",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn seconds() {
        assert_eq!(
            sec_to_usec("TimeoutStopSec", Value::I32(5)).unwrap(),
            ("TimeoutStopUSec".into(), Value::U64(5_000_000))
        );
        assert_eq!(
            sec_to_usec("RuntimeMaxSec", Value::Double(0.5)).unwrap(),
            ("RuntimeMaxUSec".into(), Value::U64(500_000))
        );
        assert_eq!(
            sec_to_usec("TimeoutStopUSec", Value::U64(7)).unwrap().0,
            "TimeoutStopUSec"
        );
        assert!(sec_to_usec("TimeoutStopSec", Value::I32(-1)).is_err());
        assert!(sec_to_usec("TimeoutStopSec", Value::Str("x".into())).is_err());
        assert!(check_property_name("CollectMode").is_ok());
        assert!(check_property_name("Ab").is_err());
        assert!(check_property_name("Foo1").is_err());
    }
}
