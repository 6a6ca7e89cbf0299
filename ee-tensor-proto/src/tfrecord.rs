//! TFRecord framing: each record is `u64le length`, `u32le masked_crc32c(length)`, the data,
//! `u32le masked_crc32c(data)`, with CRC-32C (Castagnoli) and TensorFlow's mask. A `.gz`
//! file is the gzip of that stream. The reader checks both CRCs and names the record and
//! byte offset of any corruption; a truncated record is an error, never a short read.

use std::io::{self, BufRead, BufReader, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::{Error, Result};

const MASK_DELTA: u32 = 0xa282_ead8;

/// Bytes before a record's data: its `u64le` length and the `u32le` masked CRC of that.
pub const HEADER_LEN: u64 = 8 + 4;

/// Bytes after a record's data: the `u32le` masked CRC of the data.
pub const FOOTER_LEN: u64 = 4;

/// Bytes a record of `data_len` bytes takes in a plain (uncompressed) record stream:
/// [`HEADER_LEN`] + `data_len` + [`FOOTER_LEN`].
pub const fn framed_len(data_len: u64) -> u64 {
    HEADER_LEN + data_len + FOOTER_LEN
}

/// TensorFlow's masked CRC-32C of `data`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    mask(crc32c::crc32c(data))
}

/// TensorFlow's mask of a CRC-32C.
fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Whether a record stream is gzip-compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain records.
    #[default]
    None,
    /// gzip of the record stream (`.tfrecord.gz`, TensorFlow's `"GZIP"`).
    Gzip,
}

enum Sink<W: Write> {
    Plain(W),
    Gzip(GzEncoder<W>),
}

/// Writes records to any `Write`.
pub struct TfRecordWriter<W: Write> {
    sink: Sink<W>,
    records: u64,
}

impl<W: Write> TfRecordWriter<W> {
    /// A writer producing plain or gzip-compressed records.
    pub fn new(inner: W, compression: Compression) -> Self {
        let sink = match compression {
            Compression::None => Sink::Plain(inner),
            Compression::Gzip => Sink::Gzip(GzEncoder::new(inner, flate2::Compression::default())),
        };
        TfRecordWriter { sink, records: 0 }
    }

    /// Appends one record.
    pub fn write_record(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_record_parts(&[data])
    }

    /// Appends one record whose data is `parts` one after the other, written from where they
    /// lie (no joined copy).
    pub fn write_record_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let len = (total as u64).to_le_bytes();
        let mut head = [0u8; HEADER_LEN as usize];
        head[..8].copy_from_slice(&len);
        head[8..].copy_from_slice(&masked_crc32c(&len).to_le_bytes());
        let crc = parts.iter().fold(0, |crc, p| crc32c::crc32c_append(crc, p));
        let w: &mut dyn Write = match &mut self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w,
        };
        w.write_all(&head)?;
        for p in parts {
            w.write_all(p)?;
        }
        w.write_all(&mask(crc).to_le_bytes())?;
        self.records += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The underlying writer (for gzip, the compressed side), e.g. to `fsync` it; flush first.
    pub fn get_mut(&mut self) -> &mut W {
        match &mut self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(g) => g.get_mut(),
        }
    }

    /// Flushes buffered data (for gzip, as far as the compressor allows).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(g) => g.flush(),
        }
    }

    /// Flushes (ending the gzip stream) and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self.sink {
            Sink::Plain(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Sink::Gzip(g) => {
                let mut w = g.finish()?;
                w.flush()?;
                Ok(w)
            }
        }
    }
}

/// Reads records from any `Read`.
pub struct TfRecordReader<R: Read> {
    inner: R,
    record: u64,
    offset: u64,
}

impl<R: Read> TfRecordReader<R> {
    /// A reader of plain (already decompressed) records.
    pub fn new(inner: R) -> Self {
        TfRecordReader {
            inner,
            record: 0,
            offset: 0,
        }
    }

    fn fail(&self, problem: impl Into<String>) -> Error {
        Error::TfRecord {
            record: self.record,
            offset: self.offset,
            problem: problem.into(),
        }
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` only when nothing at all was left and
    /// `eof_ok` allows it.
    fn fill(&mut self, buf: &mut [u8], eof_ok: bool, what: &str) -> Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(format!("read error in {what}: {e}"))),
            }
        }
        if got == buf.len() {
            Ok(true)
        } else if got == 0 && eof_ok {
            Ok(false)
        } else {
            Err(self.fail(format!("truncated {what}: {got} of {} bytes", buf.len())))
        }
    }

    /// Reads the next record into `data` (cleared first). `Ok(false)` at a clean end of stream.
    pub fn read_record(&mut self, data: &mut Vec<u8>) -> Result<bool> {
        data.clear();
        let mut head = [0u8; HEADER_LEN as usize];
        if !self.fill(&mut head[..8], true, "length")? {
            return Ok(false);
        }
        self.fill(&mut head[8..], false, "length CRC")?;
        let (len_bytes, crc_bytes) = head.split_at(8);
        let expected = u32::from_le_bytes(crc_bytes.try_into().expect("4 bytes"));
        if masked_crc32c(len_bytes) != expected {
            return Err(self.fail("length CRC mismatch (corrupt header)"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        // Grow with the bytes actually present, never with the claimed length.
        let got = (&mut self.inner)
            .take(len)
            .read_to_end(data)
            .map_err(|e| self.fail(format!("read error in data: {e}")))?;
        if (got as u64) < len {
            return Err(self.fail(format!("truncated data: {got} of {len} bytes")));
        }
        let mut crc = [0u8; 4];
        self.fill(&mut crc, false, "data CRC")?;
        if masked_crc32c(data) != u32::from_le_bytes(crc) {
            return Err(self.fail("data CRC mismatch (corrupt record)"));
        }
        self.record += 1;
        self.offset += framed_len(len);
        Ok(true)
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.record
    }
}

impl<R: Read> Iterator for TfRecordReader<R> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut data = Vec::new();
        match self.read_record(&mut data) {
            Ok(true) => Some(Ok(data)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// A reader that detects gzip from its magic bytes and decompresses when needed.
pub fn open_reader<'a, R: Read + 'a>(
    inner: R,
) -> Result<(TfRecordReader<Box<dyn Read + 'a>>, Compression)> {
    let mut buffered = BufReader::new(inner);
    let head = buffered.fill_buf()?;
    let gzip = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    Ok(if gzip {
        (
            TfRecordReader::new(Box::new(MultiGzDecoder::new(buffered))),
            Compression::Gzip,
        )
    } else {
        (TfRecordReader::new(Box::new(buffered)), Compression::None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(records: &[&[u8]], compression: Compression) -> Vec<u8> {
        let mut w = TfRecordWriter::new(Vec::new(), compression);
        for r in records {
            w.write_record(r).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn known_crc_values() {
        // CRC-32C check value of "123456789" is 0xE3069283; masked by hand from
        // ((c >> 15) | (c << 17)) + 0xA282EAD8.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn round_trip_plain_and_gzip() {
        let records: [&[u8]; 3] = [b"", b"hello", &[7u8; 70_000]];
        for c in [Compression::None, Compression::Gzip] {
            let bytes = file(&records, c);
            let (reader, found) = open_reader(&bytes[..]).unwrap();
            assert_eq!(found, c);
            let back: Vec<Vec<u8>> = reader.collect::<Result<_>>().unwrap();
            assert_eq!(back, records.iter().map(|r| r.to_vec()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_record_written_in_parts_is_the_record_of_their_concatenation() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        for cuts in [
            vec![],
            vec![0],
            vec![1, 100],
            vec![38, 4038, 4999],
            vec![5000],
        ] {
            let mut parts: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for c in cuts.iter().copied().chain([data.len()]) {
                parts.push(&data[at..c]);
                at = c;
            }
            let mut whole = TfRecordWriter::new(Vec::new(), Compression::None);
            whole.write_record(&data).unwrap();
            let mut split = TfRecordWriter::new(Vec::new(), Compression::None);
            split.write_record_parts(&parts).unwrap();
            assert_eq!(split.finish().unwrap(), whole.finish().unwrap(), "{cuts:?}");
        }
    }

    #[test]
    fn framed_len_is_what_a_record_takes() {
        for len in [0usize, 1, 5, 4096, 70_000] {
            let bytes = file(&[&vec![3u8; len]], Compression::None);
            assert_eq!(bytes.len() as u64, framed_len(len as u64), "{len}");
        }
        let two = file(&[b"ab", b"cde"], Compression::None);
        assert_eq!(two.len() as u64, framed_len(2) + framed_len(3));
    }

    #[test]
    fn truncation_names_record_and_offset() {
        let bytes = file(&[b"first", b"second"], Compression::None);
        let cut = &bytes[..bytes.len() - 2];
        let mut reader = TfRecordReader::new(cut);
        assert!(reader.next().unwrap().is_ok());
        let err = reader.next().unwrap().unwrap_err().to_string();
        assert_eq!(
            err,
            "TFRecord record 1 at byte 21: truncated data CRC: 2 of 4 bytes"
        );
    }

    #[test]
    fn huge_claimed_length_does_not_allocate() {
        let len = (u64::MAX / 2).to_le_bytes();
        let mut bytes = len.to_vec();
        bytes.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        bytes.extend_from_slice(b"tiny");
        let err = TfRecordReader::new(&bytes[..]).next().unwrap().unwrap_err();
        assert!(err.to_string().contains("truncated data: 4 of"), "{err}");
    }
}
