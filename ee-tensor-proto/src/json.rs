//! A small JSON reader and writer for tensor payloads.
//!
//! Tensor data in JSON is nested lists of numbers. Going through a generic JSON tree costs an
//! allocation per number; this reader instead streams nested lists straight into a typed
//! column and infers the shape on the way. It accepts the `NaN`, `Infinity` and `-Infinity`
//! tokens that TF Serving and Python's `json` write, numbers sent as strings (`RAW_JSON`) and
//! TF Serving's `{"b64": ...}` objects. The writer emits numbers with `itoa`/`ryu`.

use std::borrow::Cow;

use half::f16;
use ndarray::ArrayViewD;

use crate::b64;
use crate::{DataType, Error, PayloadFormat, Result, Tensor};

/// Deepest nesting accepted; deeper input is refused rather than recursed into.
const MAX_DEPTH: usize = 64;

/// A pull reader over a JSON document held in memory.
pub(crate) struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
}

/// Length of the run of printable ASCII at the start of `bytes` that holds no `"` or `\\`:
/// the part of a JSON string that needs no attention. Tested 32 bytes at a time while nothing
/// stands out (the base64 strings of tensor payloads are megabytes long), then 8, then byte by
/// byte.
fn plain_ascii_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Nonzero when some byte of `v` is below `n` (n <= 0x80): the classic "has less" test.
    let below = |v: u64, n: u8| v.wrapping_sub(ONES * n as u64) & !v & HIGH;
    let word = |chunk: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let v = u64::from_le_bytes(w);
        below(v ^ (ONES * b'"' as u64), 1)
            | below(v ^ (ONES * b'\\' as u64), 1)
            | below(v, 0x20)
            | (v & HIGH)
    };
    let mut n = 0;
    // 32 bytes per test while nothing stands out, then 8, then byte by byte.
    for block in bytes.chunks_exact(32) {
        if block.chunks_exact(8).fold(0, |acc, c| acc | word(c)) != 0 {
            break;
        }
        n += 32;
    }
    for chunk in bytes[n..].chunks_exact(8) {
        if word(chunk) != 0 {
            break;
        }
        n += 8;
    }
    n + bytes[n..]
        .iter()
        .take_while(|&&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
        .count()
}

/// A JSON scalar, numbers kept as their text so each target type parses them exactly.
#[derive(Debug)]
pub(crate) enum Scalar<'a> {
    Num(&'a str),
    Str(Cow<'a, str>),
    Bool(bool),
    Null,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(src: &'a [u8]) -> Self {
        Reader { src, pos: 0 }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error::Json {
            offset: self.pos,
            message: message.into(),
        }
    }

    /// The current position, to come back to with [`Reader::reset`].
    pub(crate) fn mark(&self) -> usize {
        self.pos
    }

    /// Returns to a position taken with [`Reader::mark`].
    pub(crate) fn reset(&mut self, mark: usize) {
        self.pos = mark;
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.src.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next significant byte, without consuming it.
    pub(crate) fn peek(&mut self) -> Result<u8> {
        self.skip_ws();
        self.src
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.error("unexpected end of input"))
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek()? == byte {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!(
                "expected '{}', found '{}'",
                byte as char, self.src[self.pos] as char
            )))
        }
    }

    pub(crate) fn begin_object(&mut self) -> Result<()> {
        self.expect(b'{')
    }

    /// The next key of the current object, or `None` at its end. `first` starts true.
    pub(crate) fn next_key(&mut self, first: &mut bool) -> Result<Option<Cow<'a, str>>> {
        if self.peek()? == b'}' {
            self.pos += 1;
            return Ok(None);
        }
        if !std::mem::take(first) {
            self.expect(b',')?;
        }
        let key = self.string()?;
        self.expect(b':')?;
        Ok(Some(key))
    }

    pub(crate) fn begin_array(&mut self) -> Result<()> {
        self.expect(b'[')
    }

    /// True when another item of the current array follows. `first` starts true.
    pub(crate) fn next_item(&mut self, first: &mut bool) -> Result<bool> {
        if self.peek()? == b']' {
            self.pos += 1;
            return Ok(false);
        }
        if !std::mem::take(first) {
            self.expect(b',')?;
        }
        Ok(true)
    }

    /// Reads a string, borrowing it when it has no escapes.
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.pos;
        let src = self.src;
        self.pos += plain_ascii_run(src.get(self.pos..).unwrap_or_default());
        while let Some(&b) = src.get(self.pos) {
            match b {
                b'"' => {
                    let s = std::str::from_utf8(&src[start..self.pos])
                        .map_err(|_| self.error("string is not UTF-8"))?;
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                b'\\' => break,
                0..=0x1f => return Err(self.error("control character in string")),
                _ => self.pos += 1,
            }
        }
        let mut buf: Vec<u8> = src[start..self.pos].to_vec();
        loop {
            let Some(&b) = src.get(self.pos) else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = src.get(self.pos) else {
                        return Err(self.error("unterminated escape"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => buf.push(e),
                        b'b' => buf.push(8),
                        b'f' => buf.push(12),
                        b'n' => buf.push(b'\n'),
                        b'r' => buf.push(b'\r'),
                        b't' => buf.push(b'\t'),
                        b'u' => {
                            let mut c = self.hex4()?;
                            if (0xD800..0xDC00).contains(&c) {
                                if src.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(self.error("lone surrogate in \\u escape"));
                                }
                                self.pos += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(self.error("bad low surrogate in \\u escape"));
                                }
                                c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                            }
                            let ch = char::from_u32(c)
                                .ok_or_else(|| self.error("invalid \\u escape"))?;
                            let mut tmp = [0u8; 4];
                            buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                0..=0x1f => return Err(self.error("control character in string")),
                _ => buf.push(b),
            }
        }
        String::from_utf8(buf)
            .map(Cow::Owned)
            .map_err(|_| self.error("string is not UTF-8"))
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .src
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("bad \\u escape"))?;
        self.pos += 4;
        Ok(digits)
    }

    fn literal(&mut self, word: &'static str) -> bool {
        if self.src[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// Reads a number (or `NaN`/`Infinity`/`-Infinity`), a string, a bool or null.
    pub(crate) fn scalar(&mut self) -> Result<Scalar<'a>> {
        match self.peek()? {
            b'"' => Ok(Scalar::Str(self.string()?)),
            b't' if self.literal("true") => Ok(Scalar::Bool(true)),
            b'f' if self.literal("false") => Ok(Scalar::Bool(false)),
            b'n' if self.literal("null") => Ok(Scalar::Null),
            b'N' if self.literal("NaN") => Ok(Scalar::Num("NaN")),
            b'I' if self.literal("Infinity") => Ok(Scalar::Num("Infinity")),
            b'-' if self.literal("-Infinity") => Ok(Scalar::Num("-Infinity")),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') =
                    self.src.get(self.pos)
                {
                    self.pos += 1;
                }
                // Only ASCII was consumed, so this cannot fail.
                let text = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("");
                Ok(Scalar::Num(text))
            }
            other => Err(self.error(format!("unexpected '{}'", other as char))),
        }
    }

    /// Skips one value of any kind.
    pub(crate) fn skip_value(&mut self) -> Result<()> {
        self.skip_depth(0)
    }

    fn skip_depth(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.peek()? {
            b'{' => {
                self.begin_object()?;
                let mut first = true;
                while self.next_key(&mut first)?.is_some() {
                    self.skip_depth(depth + 1)?;
                }
            }
            b'[' => {
                self.begin_array()?;
                let mut first = true;
                while self.next_item(&mut first)? {
                    self.skip_depth(depth + 1)?;
                }
            }
            _ => {
                self.scalar()?;
            }
        }
        Ok(())
    }

    /// Checks that only whitespace remains.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.skip_ws();
        if self.pos == self.src.len() {
            Ok(())
        } else {
            Err(self.error("trailing characters after the document"))
        }
    }

    /// Reads a value that may be a nested list of leaves into `column`, returning its shape.
    pub(crate) fn nested(&mut self, column: &mut Column) -> Result<Vec<usize>> {
        let mut dims: Vec<Option<usize>> = Vec::new();
        let mut leaf_depth: Option<usize> = None;
        self.nested_at(0, column, &mut dims, &mut leaf_depth)?;
        let rank = leaf_depth.unwrap_or(dims.len());
        dims.truncate(rank);
        dims.into_iter()
            .map(|d| d.ok_or_else(|| self.error("ragged nested list")))
            .collect()
    }

    fn nested_at(
        &mut self,
        depth: usize,
        column: &mut Column,
        dims: &mut Vec<Option<usize>>,
        leaf_depth: &mut Option<usize>,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        let leaf = match self.peek()? {
            b'[' => {
                if leaf_depth.is_some_and(|d| d <= depth) {
                    return Err(self.error("ragged nested list: list where a value was expected"));
                }
                self.begin_array()?;
                let mut first = true;
                let mut count = 0usize;
                while self.next_item(&mut first)? {
                    self.nested_at(depth + 1, column, dims, leaf_depth)?;
                    count += 1;
                }
                if dims.len() <= depth {
                    dims.resize(depth + 1, None);
                }
                match dims[depth] {
                    Some(known) if known != count => {
                        return Err(self.error(format!(
                            "ragged nested list: {count} items where {known} were seen before at depth {depth}"
                        )))
                    }
                    _ => dims[depth] = Some(count),
                }
                return Ok(());
            }
            b'{' => {
                self.begin_object()?;
                let mut first = true;
                let mut text = None;
                while let Some(key) = self.next_key(&mut first)? {
                    if key == "b64" {
                        text = Some(self.string()?);
                    } else {
                        return Err(self.error(format!(
                            "object inside tensor data with key {key:?} (only {{\"b64\": ...}} is allowed)"
                        )));
                    }
                }
                Leaf::B64(text.ok_or_else(|| self.error("{\"b64\"} object without its key"))?)
            }
            _ => match self.scalar()? {
                Scalar::Num(n) => Leaf::Num(n),
                Scalar::Str(s) => Leaf::Str(s),
                Scalar::Bool(b) => Leaf::Bool(b),
                Scalar::Null => return Err(self.error("null inside tensor data")),
            },
        };
        match *leaf_depth {
            Some(d) if d != depth => {
                return Err(self.error("ragged nested list: values at different depths"))
            }
            _ => *leaf_depth = Some(depth),
        }
        if dims.len() > depth {
            return Err(self.error("ragged nested list: value where a list was expected"));
        }
        column
            .push(leaf)
            .map_err(|why| self.error(format!("{why} (expected {})", column.dtype())))
    }
}

/// One value of tensor data as it appeared in JSON.
#[derive(Debug)]
pub(crate) enum Leaf<'a> {
    Num(&'a str),
    Str(Cow<'a, str>),
    Bool(bool),
    B64(Cow<'a, str>),
}

/// A growing, typed, row-major buffer of tensor elements.
pub(crate) enum Column {
    F16(Vec<f16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    Str(Vec<Vec<u8>>),
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok(),
    }
}

fn parse_f32(text: &str) -> Option<f32> {
    match text {
        "NaN" | "nan" => Some(f32::NAN),
        "Infinity" | "inf" => Some(f32::INFINITY),
        "-Infinity" | "-inf" => Some(f32::NEG_INFINITY),
        _ => text.parse::<f32>().ok(),
    }
}

/// Parses an integer, also from an integral float literal (`3.0`, `1e3`).
fn parse_int<T: TryFrom<i128>>(text: &str) -> Option<T> {
    let wide = match text.parse::<i128>() {
        Ok(v) => v,
        Err(_) => {
            let f = text.parse::<f64>().ok()?;
            if !f.is_finite() || f.fract() != 0.0 || f.abs() > 1.8e19 {
                return None;
            }
            f as i128
        }
    };
    T::try_from(wide).ok()
}

impl Column {
    pub(crate) fn new(dtype: DataType) -> Self {
        match dtype {
            DataType::Float16 => Column::F16(Vec::new()),
            DataType::Float32 => Column::F32(Vec::new()),
            DataType::Float64 => Column::F64(Vec::new()),
            DataType::Int8 => Column::I8(Vec::new()),
            DataType::Int16 => Column::I16(Vec::new()),
            DataType::Int32 => Column::I32(Vec::new()),
            DataType::Int64 => Column::I64(Vec::new()),
            DataType::Uint8 => Column::U8(Vec::new()),
            DataType::Uint16 => Column::U16(Vec::new()),
            DataType::Uint32 => Column::U32(Vec::new()),
            DataType::Uint64 => Column::U64(Vec::new()),
            DataType::Bool => Column::Bool(Vec::new()),
            DataType::String => Column::Str(Vec::new()),
        }
    }

    pub(crate) fn dtype(&self) -> DataType {
        match self {
            Column::F16(_) => DataType::Float16,
            Column::F32(_) => DataType::Float32,
            Column::F64(_) => DataType::Float64,
            Column::I8(_) => DataType::Int8,
            Column::I16(_) => DataType::Int16,
            Column::I32(_) => DataType::Int32,
            Column::I64(_) => DataType::Int64,
            Column::U8(_) => DataType::Uint8,
            Column::U16(_) => DataType::Uint16,
            Column::U32(_) => DataType::Uint32,
            Column::U64(_) => DataType::Uint64,
            Column::Bool(_) => DataType::Bool,
            Column::Str(_) => DataType::String,
        }
    }

    /// Appends one leaf, converting it to the column's type.
    pub(crate) fn push(&mut self, leaf: Leaf<'_>) -> std::result::Result<(), String> {
        let text: &str = match (&leaf, &mut *self) {
            (Leaf::B64(s), Column::Str(v)) => {
                let bytes = b64::decode_any(s.as_bytes(), &|| "{\"b64\"} value".to_string())
                    .map_err(|e| e.to_string())?;
                v.push(bytes);
                return Ok(());
            }
            (Leaf::Str(s), Column::Str(v)) => {
                v.push(s.as_bytes().to_vec());
                return Ok(());
            }
            (Leaf::Bool(b), Column::Bool(v)) => {
                v.push(*b);
                return Ok(());
            }
            (Leaf::Num(n), _) => n,
            (Leaf::Str(s), _) => s,
            (Leaf::Bool(b), _) => return Err(format!("boolean {b} in numeric data")),
            (Leaf::B64(_), _) => return Err("{\"b64\"} object in numeric data".into()),
        };
        let bad = || format!("value {text:?} does not fit");
        match self {
            Column::F16(v) => v.push(f16::from_f64(parse_float(text).ok_or_else(bad)?)),
            Column::F32(v) => v.push(parse_f32(text).ok_or_else(bad)?),
            Column::F64(v) => v.push(parse_float(text).ok_or_else(bad)?),
            Column::I8(v) => v.push(parse_int(text).ok_or_else(bad)?),
            Column::I16(v) => v.push(parse_int(text).ok_or_else(bad)?),
            Column::I32(v) => v.push(parse_int(text).ok_or_else(bad)?),
            Column::I64(v) => v.push(parse_int(text).ok_or_else(bad)?),
            Column::U8(v) => v.push(parse_int(text).ok_or_else(bad)?),
            Column::U16(v) => v.push(parse_int(text).ok_or_else(bad)?),
            Column::U32(v) => v.push(parse_int(text).ok_or_else(bad)?),
            Column::U64(v) => v.push(parse_int(text).ok_or_else(bad)?),
            Column::Bool(v) => v.push(match text {
                "0" | "false" => false,
                "1" | "true" => true,
                _ => return Err(bad()),
            }),
            Column::Str(v) => v.push(text.as_bytes().to_vec()),
        }
        Ok(())
    }

    /// The elements as a tensor of `shape`.
    pub(crate) fn into_tensor(self, shape: &[usize]) -> Result<Tensor> {
        match self {
            Column::F16(v) => Tensor::from_vec(shape, v),
            Column::F32(v) => Tensor::from_vec(shape, v),
            Column::F64(v) => Tensor::from_vec(shape, v),
            Column::I8(v) => Tensor::from_vec(shape, v),
            Column::I16(v) => Tensor::from_vec(shape, v),
            Column::I32(v) => Tensor::from_vec(shape, v),
            Column::I64(v) => Tensor::from_vec(shape, v),
            Column::U8(v) => Tensor::from_vec(shape, v),
            Column::U16(v) => Tensor::from_vec(shape, v),
            Column::U32(v) => Tensor::from_vec(shape, v),
            Column::U64(v) => Tensor::from_vec(shape, v),
            Column::Bool(v) => Tensor::from_vec(shape, v),
            Column::Str(v) => Tensor::from_strings(shape, v),
        }
    }
}

/// Reads one tensor value (a nested list, or a bare leaf for a scalar) of type `dtype`.
pub(crate) fn read_tensor(r: &mut Reader<'_>, dtype: DataType) -> Result<Tensor> {
    let mut column = Column::new(dtype);
    let shape = r.nested(&mut column)?;
    column.into_tensor(&shape)
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut start = 0;
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// How numbers and strings are spelled in a JSON payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Style {
    /// Numbers as JSON strings (`"12.5"`), as Earth Engine's `RAW_JSON` sends them.
    pub quoted_numbers: bool,
    /// Strings as TF Serving `{"b64": standard base64}` objects rather than JSON strings.
    pub b64_objects: bool,
}

impl Style {
    pub(crate) const PLAIN: Style = Style {
        quoted_numbers: false,
        b64_objects: false,
    };
    pub(crate) const TF_SERVING: Style = Style {
        quoted_numbers: false,
        b64_objects: true,
    };
    pub(crate) const RAW_JSON: Style = Style {
        quoted_numbers: true,
        b64_objects: false,
    };
}

/// Writes one element of tensor data.
pub(crate) trait JsonValue {
    fn write(&self, out: &mut Vec<u8>, style: Style) -> Result<()>;
}

fn quoted(out: &mut Vec<u8>, style: Style, text: &[u8]) {
    if style.quoted_numbers {
        out.push(b'"');
        out.extend_from_slice(text);
        out.push(b'"');
    } else {
        out.extend_from_slice(text);
    }
}

macro_rules! int_json {
    ($($t:ty),*) => {$(
        impl JsonValue for $t {
            fn write(&self, out: &mut Vec<u8>, style: Style) -> Result<()> {
                let mut buf = itoa::Buffer::new();
                quoted(out, style, buf.format(*self).as_bytes());
                Ok(())
            }
        }
    )*};
}
int_json!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float_json {
    ($($t:ty),*) => {$(
        impl JsonValue for $t {
            fn write(&self, out: &mut Vec<u8>, style: Style) -> Result<()> {
                let v = *self;
                if v.is_finite() {
                    let mut buf = ryu::Buffer::new();
                    quoted(out, style, buf.format_finite(v).as_bytes());
                } else {
                    let token: &[u8] = if v.is_nan() {
                        b"NaN"
                    } else if v > 0.0 {
                        b"Infinity"
                    } else {
                        b"-Infinity"
                    };
                    quoted(out, style, token);
                }
                Ok(())
            }
        }
    )*};
}
float_json!(f32, f64);

impl JsonValue for f16 {
    fn write(&self, out: &mut Vec<u8>, style: Style) -> Result<()> {
        self.to_f32().write(out, style)
    }
}

impl JsonValue for bool {
    fn write(&self, out: &mut Vec<u8>, _style: Style) -> Result<()> {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
        Ok(())
    }
}

impl JsonValue for Vec<u8> {
    fn write(&self, out: &mut Vec<u8>, style: Style) -> Result<()> {
        if style.b64_objects {
            out.extend_from_slice(b"{\"b64\":\"");
            b64::encode_standard_into(self, out);
            out.extend_from_slice(b"\"}");
            Ok(())
        } else {
            let s = std::str::from_utf8(self).map_err(|_| {
                Error::payload(
                    "JSON",
                    "a string element is not UTF-8; use a binary payload format for raw bytes",
                )
            })?;
            write_str(out, s);
            Ok(())
        }
    }
}

/// Writes an array view as nested JSON lists (a bare value for rank 0).
pub(crate) fn write_nested<T: JsonValue>(
    a: ArrayViewD<'_, T>,
    out: &mut Vec<u8>,
    style: Style,
) -> Result<()> {
    fn rec<'x, T: JsonValue + 'x>(
        shape: &[usize],
        it: &mut impl Iterator<Item = &'x T>,
        out: &mut Vec<u8>,
        style: Style,
    ) -> Result<()> {
        match shape.split_first() {
            None => match it.next() {
                Some(v) => v.write(out, style),
                None => Err(Error::payload("JSON", "tensor ran out of elements")),
            },
            Some((&n, rest)) => {
                out.push(b'[');
                for i in 0..n {
                    if i > 0 {
                        out.push(b',');
                    }
                    rec(rest, it, out, style)?;
                }
                out.push(b']');
                Ok(())
            }
        }
    }
    let shape = a.shape().to_vec();
    rec(&shape, &mut a.iter(), out, style)
}

/// Writes a tensor as nested JSON lists.
pub(crate) fn write_tensor(t: &Tensor, out: &mut Vec<u8>, style: Style) -> Result<()> {
    crate::tensor::with_array!(t, a => write_nested(a.view(), out, style))
}

/// Writes a tensor's elements as one flat JSON list in row-major order.
pub(crate) fn write_flat(t: &Tensor, out: &mut Vec<u8>, style: Style) -> Result<()> {
    crate::tensor::with_array!(t, a => {
        out.push(b'[');
        for (i, v) in a.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            v.write(out, style)?;
        }
        out.push(b']');
        Ok(())
    })
}

/// Tells which payload format a hosted `:predict` body (`{"instances": [...]}`, the AI
/// Platform / Vertex route) carries, from its first instance alone, without reading the rest:
///
/// | first instance | format |
/// |---|---|
/// | a string, or an object whose first value is a string | `SERIALIZED_TF_TENSORS` |
/// | an object whose first value is a list of strings | `RAW_JSON` |
/// | a bare list | `ND_ARRAYS` (bare nested lists; which axis is the channel is the reader's call) |
/// | an object of numbers, lists of numbers or `{"b64"}`, or a bare number | TF Serving rows ([`PayloadFormat::TfServingJson`]) |
///
/// Keys before `"instances"` (`"parameters"`) are skipped. A body with no `"instances"`, an
/// empty list or an empty first object is an error naming which.
pub fn sniff_instances(body: &[u8]) -> Result<PayloadFormat> {
    const WHAT: &str = "AI Platform / Vertex";
    let mut r = Reader::new(body);
    r.begin_object()?;
    let mut first = true;
    loop {
        match r.next_key(&mut first)? {
            Some(key) if key == "instances" => break,
            Some(_) => r.skip_value()?,
            None => return Err(Error::payload(WHAT, "the body has no \"instances\"")),
        }
    }
    r.begin_array()?;
    match r.peek()? {
        b'"' => return Ok(PayloadFormat::SerializedTfTensors),
        b'[' => return Ok(PayloadFormat::NdArrays),
        b']' => return Err(Error::payload(WHAT, "\"instances\" is empty")),
        b'{' => {}
        _ => return Ok(PayloadFormat::TfServingJson),
    }
    r.begin_object()?;
    let mut first = true;
    if r.next_key(&mut first)?.is_none() {
        return Err(Error::payload(
            WHAT,
            "the first instance is an empty object",
        ));
    }
    Ok(match r.peek()? {
        b'"' => PayloadFormat::SerializedTfTensors,
        b'[' => {
            while r.peek()? == b'[' {
                r.pos += 1;
            }
            if r.peek()? == b'"' {
                PayloadFormat::RawJson
            } else {
                PayloadFormat::TfServingJson
            }
        }
        _ => PayloadFormat::TfServingJson,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_read_the_same_whatever_falls_where() {
        // Every special byte at every position of strings around the 8-byte stride, checked
        // against serde_json (which must agree on the value or on refusing it).
        let specials: [&[u8]; 7] = [
            b"\\\"",
            b"\\n",
            b"\\u00e9",
            "\u{e9}".as_bytes(),
            b"\x01",
            b"\\",
            b"\x7f",
        ];
        for len in (0..20).chain([31, 32, 33, 63, 64, 65, 70]) {
            for at in 0..=len {
                for sp in specials {
                    let mut doc = b"\"".to_vec();
                    doc.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                    doc.splice(at + 1..at + 1, sp.iter().copied());
                    doc.push(b'"');
                    let ours = Reader::new(&doc).string().map(|s| s.into_owned());
                    let theirs: std::result::Result<String, _> = serde_json::from_slice(&doc);
                    match (ours, theirs) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "{doc:?}"),
                        (Err(_), Err(_)) => {}
                        (a, b) => panic!("{doc:?}: ours {a:?}, serde_json {b:?}"),
                    }
                }
            }
        }
    }

    fn parse(text: &str, dtype: DataType) -> Result<Tensor> {
        let mut r = Reader::new(text.as_bytes());
        let t = read_tensor(&mut r, dtype)?;
        r.finish()?;
        Ok(t)
    }

    #[test]
    fn nested_lists_infer_shape() {
        let t = parse("[[1, 2, 3], [4, 5, 6]]", DataType::Int64).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        let t = parse("[[], []]", DataType::Float32).unwrap();
        assert_eq!(t.shape(), &[2, 0]);
        let t = parse("7.5", DataType::Float64).unwrap();
        assert_eq!(t.shape(), &[] as &[usize]);
    }

    #[test]
    fn ragged_lists_are_refused() {
        for bad in ["[[1,2],[3]]", "[[1,2],3]", "[1,[2]]", "[[1],[]]"] {
            let err = parse(bad, DataType::Int32).unwrap_err().to_string();
            assert!(err.contains("ragged"), "{bad}: {err}");
        }
    }

    #[test]
    fn non_finite_tokens_and_quoted_numbers() {
        let t = parse(
            "[NaN, Infinity, -Infinity, \"2.5\", 1e2]",
            DataType::Float32,
        )
        .unwrap();
        let v: Vec<f32> = t.array::<f32>().unwrap().iter().copied().collect();
        assert!(v[0].is_nan());
        assert_eq!(&v[1..], &[f32::INFINITY, f32::NEG_INFINITY, 2.5, 100.0]);
    }

    #[test]
    fn integers_are_range_checked() {
        assert!(parse("[300]", DataType::Uint8).is_err());
        assert!(parse("[1.5]", DataType::Int32).is_err());
        let t = parse("[18446744073709551615, 2.0]", DataType::Uint64).unwrap();
        assert_eq!(
            t.array::<u64>().unwrap().as_slice().unwrap(),
            &[u64::MAX, 2]
        );
    }

    #[test]
    fn write_then_read_is_identity() {
        let t = Tensor::from_vec(&[2, 2], vec![1.5f32, f32::NAN, -0.0, 3e38]).unwrap();
        for style in [Style::PLAIN, Style::RAW_JSON] {
            let mut out = Vec::new();
            write_tensor(&t, &mut out, style).unwrap();
            assert!(parse(std::str::from_utf8(&out).unwrap(), DataType::Float32)
                .unwrap()
                .bit_eq(&t));
        }
        let s = Tensor::from_strings(&[2], vec![b"a\"b".to_vec(), vec![0, 255]]).unwrap();
        let mut out = Vec::new();
        write_tensor(&s, &mut out, Style::TF_SERVING).unwrap();
        assert_eq!(
            parse(std::str::from_utf8(&out).unwrap(), DataType::String).unwrap(),
            s
        );
    }

    #[test]
    fn strings_with_escapes() {
        let mut r = Reader::new(br#""a\"b\\c\u00e9\ud83d\ude00""#);
        assert_eq!(r.string().unwrap(), "a\"b\\c\u{e9}\u{1F600}");
        let mut out = Vec::new();
        write_str(&mut out, "q\"\n\u{1}");
        assert_eq!(out, br#""q\"\n\u0001""#);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep, DataType::Int32)
            .unwrap_err()
            .to_string()
            .contains("too deep"));
        let mut r = Reader::new(deep.as_bytes());
        assert!(r.skip_value().is_err());
    }

    #[test]
    fn the_first_instance_tells_the_hosted_format() {
        use PayloadFormat::*;
        let cases: [(&str, PayloadFormat); 8] = [
            (r#"{"instances": ["CAES"]}"#, SerializedTfTensors),
            (
                r#"{"instances": [{"B1": "CAES", "B2": "x"}]}"#,
                SerializedTfTensors,
            ),
            (r#"{"instances":[{"a":[["1.5","2"]]}]}"#, RawJson),
            (r#"{"instances":[[[[1,2]]]]}"#, NdArrays),
            (r#"{"instances":[{"a":[[1.5,2]]}]}"#, TfServingJson),
            (r#"{"instances":[{"a":{"b64":"AAAA"}}]}"#, TfServingJson),
            (r#"{"instances":[3.5]}"#, TfServingJson),
            (
                r#"{"parameters": {"k": [1, "x", {"y": "]"}]}, "instances": [{"a": 1}]}"#,
                TfServingJson,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                sniff_instances(body.as_bytes()).unwrap(),
                expected,
                "{body}"
            );
        }
        for (bad, needle) in [
            ("", "end of input"),
            ("[]", "expected '{'"),
            (r#"{"inputs": []}"#, "no \"instances\""),
            (r#"{"instances": []}"#, "is empty"),
            (r#"{"instances": [{}]}"#, "empty object"),
            (r#"{"instances": [{"a"#, "unterminated string"),
        ] {
            let e = sniff_instances(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {needle:?} not in {e:?}");
        }
    }
}
