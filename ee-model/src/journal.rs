//! The resume journal: every finished tile's answer, appended beside the output
//! (`OUT.tif.journal`) in TFRecord framing (length and data both CRC-checked), after a header
//! that fingerprints the job's arguments and inputs. A job started again with `--resume`
//! replays the journal instead of predicting those tiles again, so the output is rebuilt with
//! identical pixels; a record torn by a kill is detected by its CRC and dropped (that tile is
//! predicted again); a journal of other arguments is refused.
//!
//! The file: a header record (the magic line and the job's [`fingerprint`]), then, before the
//! first tile, a layout record (how many planes each output band has: an array band of three
//! planes beside a scalar band replays as 3 + 1, not 2 + 2), then one record per tile.
//!
//! Each answer is handed to the kernel as soon as it is appended, so a killed process loses
//! nothing; the file is synced to disk at most once per [`SYNC_INTERVAL`] (an fsync per tile
//! cost more than encoding the tile), so a power cut loses at most that much work.

use std::any::Any;
use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ee_tensor_proto::tfrecord::{Compression, TfRecordReader, TfRecordWriter};
use ee_tiling::{Margins, Pixel, TileAnswer, TileGrid};
use ndarray::{Array2, Array3};

use crate::{Error, Result};

const MAGIC: &[u8] = b"ee-model journal v3\n";

/// The layout record's tag, followed by the band count and each band's planes (u32 LE).
const LAYOUT: &[u8] = b"layout\n";

/// The journal file beside an output.
pub fn journal_path(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".journal");
    output.with_file_name(name)
}

/// FNV-1a 64 over `parts`: a stable fingerprint of a job's arguments.
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0xffu8]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The fingerprint of a job: its spec, the options that change its pixels, its region, and
/// each input's path, size and modification time. A journal of another fingerprint is never
/// replayed.
pub(crate) fn job_fingerprint(
    spec: &crate::ModelSpec,
    options: &crate::PredictOptions,
    region: ee_tiling::Window,
    inputs: &[PathBuf],
) -> Result<String> {
    let mut parts: Vec<Vec<u8>> = vec![
        format!("{spec:?}").into_bytes(),
        format!(
            "{:?} {:?} {} {:?}",
            options.merge, options.resampling, options.fill_value, region
        )
        .into_bytes(),
    ];
    for p in inputs {
        let meta = std::fs::metadata(p).map_err(io(p))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        parts.push(format!("{} {} {}", p.display(), meta.len(), mtime).into_bytes());
    }
    Ok(fingerprint(parts.iter().map(Vec::as_slice)))
}

/// An open journal, appending.
pub struct Journal {
    path: PathBuf,
    writer: TfRecordWriter<File>,
    last_sync: Instant,
    /// Planes per output band, once written.
    layout: Option<Vec<usize>>,
}

/// What [`Journal::resume`] found: the answers and the journal, ready to append (its
/// [`Journal::layout`] says how the answers' planes divide into bands).
pub struct Resumed<P> {
    /// The journaled answers, in the order they were written.
    pub answers: Vec<TileAnswer<P>>,
    /// The journal.
    pub journal: Journal,
}

fn layout_record(planes: &[usize]) -> Vec<u8> {
    let mut out = LAYOUT.to_vec();
    out.extend_from_slice(&(planes.len() as u32).to_le_bytes());
    for &p in planes {
        out.extend_from_slice(&(p as u32).to_le_bytes());
    }
    out
}

fn decode_layout(record: &[u8]) -> Option<Vec<usize>> {
    let rest = record.strip_prefix(LAYOUT)?;
    let word = |i: usize| {
        rest.get(i * 4..i * 4 + 4)
            .and_then(|b| b.try_into().ok())
            .map(|b| u32::from_le_bytes(b) as usize)
    };
    let n = word(0)?;
    if rest.len() != 4 + n.checked_mul(4)? || n == 0 {
        return None;
    }
    (1..=n).map(word).collect()
}

/// How long appended answers may wait in the page cache before the journal is synced.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How a record stores its values (the byte after the dimensions).
const CONSTANT: u8 = 0;
/// How a record stores its validity (the byte after the value width).
const MASK_EXPLICIT: u8 = 0;
const MASK_ALL_VALID: u8 = 1;
const MASK_ALL_INVALID: u8 = 2;

/// A tile's record in the three parts [`Journal::append`] writes one after the other: the
/// head (the tile's number, the values' dimensions and margins, then how values and mask are
/// stored), the values, the mask. The mask is one flag when uniform, else a byte per pixel.
fn record<P: Pixel>(answer: &TileAnswer<P>) -> [Cow<'_, [u8]>; 3] {
    let (rows, cols, planes) = answer.values.dim();
    let m = answer.margins;
    let mask = mask_kind(answer);
    let (width, values) = stored_values(answer);
    let mut head = Vec::with_capacity(38);
    head.extend_from_slice(&(answer.tile.number as u64).to_le_bytes());
    for v in [rows, cols, planes, m.left, m.right, m.top, m.bottom] {
        head.extend_from_slice(&(v as u32).to_le_bytes());
    }
    head.extend_from_slice(&[width, mask]);
    let mask_bytes: Cow<'_, [u8]> = match mask {
        MASK_EXPLICIT => answer
            .valid
            .iter()
            .map(|&b| b as u8)
            .collect::<Vec<_>>()
            .into(),
        _ => Cow::Borrowed(&[]),
    };
    [head.into(), values, mask_bytes]
}

/// How a tile's values are stored (the width byte of the head) and their bytes: one f64 when
/// they are all the same (nodata, masked or empty areas: large jobs are mostly such tiles),
/// else f32 when every one of them survives the round trip (the usual case: models answer in
/// float32; an `f32` pipeline's answers always do, and are borrowed where they lie), else f64.
fn stored_values<P: Pixel>(answer: &TileAnswer<P>) -> (u8, Cow<'_, [u8]>) {
    let f32_values = (&answer.values as &dyn Any)
        .downcast_ref::<Array3<f32>>()
        .and_then(|v| v.as_slice())
        .filter(|_| cfg!(target_endian = "little"));
    if let Some(v) = f32_values.filter(|v| v.iter().any(|x| x.to_bits() != v[0].to_bits())) {
        return (4, Cow::Borrowed(bytemuck::cast_slice(v)));
    }
    let values: Cow<'_, [P]> = match answer.values.as_slice() {
        Some(v) => v.into(),
        None => answer.values.iter().copied().collect::<Vec<_>>().into(),
    };
    let first = values.first().map_or(0.0, |v| v.to_f64());
    // One pass writes the values as f32 while finding out whether that was exact and whether
    // they are all one value; the rare other cases are written again.
    let mut out = Vec::with_capacity(values.len() * 4);
    let (narrow, constant) = put_f32(&mut out, &values, first);
    if constant {
        (CONSTANT, first.to_le_bytes().to_vec().into())
    } else if narrow {
        (4, out.into())
    } else {
        let wide: Vec<u8> = values
            .iter()
            .flat_map(|v| v.to_f64().to_le_bytes())
            .collect();
        (8, wide.into())
    }
}

/// How the validity mask is stored.
fn mask_kind<P>(answer: &TileAnswer<P>) -> u8 {
    let uniform = |flag: bool| match answer.valid.as_slice() {
        Some(v) => v.iter().all(|&b| b == flag),
        None => answer.valid.iter().all(|&b| b == flag),
    };
    if uniform(true) {
        MASK_ALL_VALID
    } else if uniform(false) {
        MASK_ALL_INVALID
    } else {
        MASK_EXPLICIT
    }
}

/// Appends `values` as little-endian f32 and says whether every value survived that (NaNs of
/// any payload count as surviving) and whether all of them have the bits of `first`. Works in
/// chunks the compiler vectorises: no early exit per value.
fn put_f32<P: Pixel>(out: &mut Vec<u8>, values: &[P], first: f64) -> (bool, bool) {
    const CHUNK: usize = 64;
    let start = out.len();
    out.resize(start + values.len() * 4, 0);
    let first = first.to_bits();
    let (mut narrow, mut constant) = (true, true);
    for (src, dst) in values.chunks(CHUNK).zip(out[start..].chunks_mut(CHUNK * 4)) {
        let (mut n, mut c) = (true, true);
        for (v, d) in src.iter().zip(dst.chunks_exact_mut(4)) {
            let v = v.to_f64();
            let f = v as f32;
            n &= (f as f64 == v) | v.is_nan();
            c &= v.to_bits() == first;
            d.copy_from_slice(&f.to_le_bytes());
        }
        narrow &= n;
        constant &= c;
    }
    (narrow, constant)
}

fn decode<P: Pixel>(bytes: &[u8], grid: &TileGrid) -> Option<TileAnswer<P>> {
    let u32_at = |i: usize| {
        bytes
            .get(8 + i * 4..12 + i * 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
    };
    let number = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let tile = grid.tile_number(number)?;
    let (rows, cols, planes) = (u32_at(0)?, u32_at(1)?, u32_at(2)?);
    let margins = Margins {
        left: u32_at(3)?,
        right: u32_at(4)?,
        top: u32_at(5)?,
        bottom: u32_at(6)?,
    };
    let n = rows.checked_mul(cols)?.checked_mul(planes)?;
    let pixels = tile.output.height * tile.output.width;
    let (width, mask) = (*bytes.get(36)?, *bytes.get(37)?);
    let body = bytes.get(38..)?;
    let value_bytes = match width {
        CONSTANT => 8,
        4 | 8 => n.checked_mul(width as usize)?,
        _ => return None,
    };
    let mask_bytes = match mask {
        MASK_EXPLICIT => pixels,
        MASK_ALL_VALID | MASK_ALL_INVALID => 0,
        _ => return None,
    };
    if body.len() != value_bytes.checked_add(mask_bytes)? {
        return None;
    }
    let values: Vec<P> = match width {
        CONSTANT => vec![P::from_f64(f64::from_le_bytes(body[..8].try_into().ok()?)); n],
        4 => body[..value_bytes]
            .chunks_exact(4)
            .map(|c| P::from_f64(f32::from_le_bytes(c.try_into().unwrap_or_default()) as f64))
            .collect(),
        _ => body[..value_bytes]
            .chunks_exact(8)
            .map(|c| P::from_f64(f64::from_le_bytes(c.try_into().unwrap_or_default())))
            .collect(),
    };
    let valid: Vec<bool> = match mask {
        MASK_EXPLICIT => body[value_bytes..].iter().map(|&b| b != 0).collect(),
        flag => vec![flag == MASK_ALL_VALID; pixels],
    };
    Some(TileAnswer {
        tile,
        values: Array3::from_shape_vec((rows, cols, planes), values).ok()?,
        margins,
        valid: Array2::from_shape_vec((tile.output.height, tile.output.width), valid).ok()?,
    })
}

impl Journal {
    /// Starts a new journal for a job with `fingerprint`, replacing any old one.
    pub fn create(path: &Path, fingerprint: &str) -> Result<Self> {
        let file = File::create(path).map_err(io(path))?;
        let mut writer = TfRecordWriter::new(file, Compression::None);
        writer
            .write_record(&[MAGIC, fingerprint.as_bytes()].concat())
            .map_err(io(path))?;
        let mut j = Journal {
            path: path.to_path_buf(),
            writer,
            last_sync: Instant::now(),
            layout: None,
        };
        j.sync()?;
        Ok(j)
    }

    /// Opens an existing journal for the job with `fingerprint`: returns the answers it holds
    /// (a torn tail is dropped and cut off), the bands' layout and the journal, ready to
    /// append.
    pub fn resume<P: Pixel>(path: &Path, fingerprint: &str, grid: &TileGrid) -> Result<Resumed<P>> {
        let file = File::open(path).map_err(io(path))?;
        let mut reader = TfRecordReader::new(BufReader::new(file));
        let mut record = Vec::new();
        let header_ok =
            reader.read_record(&mut record).ok() == Some(true) && record.starts_with(MAGIC);
        if !header_ok {
            return Err(Error::Resume(format!(
                "{} is not a journal of this program; remove it or run without --resume",
                path.display()
            )));
        }
        let found = String::from_utf8_lossy(&record[MAGIC.len()..]).to_string();
        if found != fingerprint {
            return Err(Error::Resume(format!(
                "{} belongs to a run with other arguments or inputs (fingerprint {found}, this run {fingerprint}); run without --resume to start over",
                path.display()
            )));
        }
        let mut good =
            ee_tensor_proto::tfrecord::framed_len((MAGIC.len() + fingerprint.len()) as u64);
        let mut answers = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut layout = None;
        if let Ok(true) = reader.read_record(&mut record) {
            layout = decode_layout(&record);
            if layout.is_none() {
                return Err(Error::Resume(format!(
                    "{}: the record after the header is not the output bands' layout; remove the journal or run without --resume",
                    path.display()
                )));
            }
            good += ee_tensor_proto::tfrecord::framed_len(record.len() as u64);
        }
        while let Ok(true) = reader.read_record(&mut record) {
            match decode(&record, grid) {
                Some(a) if seen.insert(a.tile.number) => {
                    good += ee_tensor_proto::tfrecord::framed_len(record.len() as u64);
                    answers.push(a);
                }
                _ => break,
            }
        }
        // Cut off whatever follows the last good record, then append after it.
        let mut file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        file.set_len(good).map_err(io(path))?;
        file.seek(SeekFrom::End(0)).map_err(io(path))?;
        let writer = TfRecordWriter::new(file, Compression::None);
        Ok(Resumed {
            answers,
            journal: Journal {
                path: path.to_path_buf(),
                writer,
                last_sync: Instant::now(),
                layout,
            },
        })
    }

    /// Planes per output band of the journaled tiles; `None` before the first tile.
    pub fn layout(&self) -> Option<&[usize]> {
        self.layout.as_deref()
    }

    /// Appends one tile's answer, whose bands have `planes` planes each (the first append
    /// writes that layout; later ones must agree): written through to the kernel at once (a
    /// kill loses nothing), synced to disk when [`SYNC_INTERVAL`] has passed since the last
    /// sync.
    pub fn append<P: Pixel>(&mut self, answer: &TileAnswer<P>, planes: &[usize]) -> Result<()> {
        match &self.layout {
            Some(known) if known != planes => {
                return Err(Error::Answer(format!(
                    "tile {} answered {planes:?} planes per band, the journaled tiles {known:?}",
                    answer.tile.index
                )))
            }
            Some(_) => {}
            None => {
                self.writer
                    .write_record(&layout_record(planes))
                    .map_err(io(&self.path))?;
                self.layout = Some(planes.to_vec());
            }
        }
        let [a, b, c] = record(answer);
        self.writer
            .write_record_parts(&[&a, &b, &c])
            .map_err(io(&self.path))?;
        self.writer.flush().map_err(io(&self.path))?;
        if self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    /// Flushes and syncs everything appended so far to disk.
    pub fn sync(&mut self) -> Result<()> {
        self.writer.flush().map_err(io(&self.path))?;
        self.writer.get_mut().sync_data().map_err(io(&self.path))?;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Removes the journal (the job is complete).
    pub fn remove(self) -> Result<()> {
        let path = self.path.clone();
        drop(self.writer);
        std::fs::remove_file(&path).map_err(io(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ee_tiling::{Overlap, RasterSize, TileSize};

    /// A whole record, as written.
    fn encode<P: Pixel>(answer: &TileAnswer<P>) -> Vec<u8> {
        record(answer).concat()
    }

    fn grid() -> TileGrid {
        TileGrid::new(
            RasterSize::new(10, 10).window(),
            TileSize::new(4, 4).unwrap(),
            Overlap::default(),
            TileSize::new(4, 4).unwrap(),
        )
        .unwrap()
    }

    /// Tile 0: one value everywhere, all valid; tile 1: a value f32 cannot carry, all
    /// invalid; tiles 2 and up: varied float32 values and a mixed mask. Every encoding is
    /// exercised.
    fn answer(n: usize) -> TileAnswer {
        let tile = grid().tile_number(n).unwrap();
        let mut values = Array3::from_elem((4, 4, 2), n as f64 + 0.5);
        let mut valid = Array2::from_elem((4, 4), n != 1);
        if n == 1 {
            values[[0, 0, 0]] = 0.1;
        }
        if n >= 2 {
            values =
                Array3::from_shape_fn((4, 4, 2), |(r, c, p)| (r * 8 + c * 2 + p) as f64 * 0.25);
            valid = Array2::from_shape_fn((4, 4), |(r, c)| (r + c) % 2 == 0);
        }
        TileAnswer {
            tile,
            values,
            margins: Margins::default(),
            valid,
        }
    }

    #[test]
    fn every_encoding_round_trips_and_uniform_tiles_stay_small() {
        for n in 0..4 {
            let a = answer(n);
            let bytes = encode(&a);
            let back: TileAnswer = decode(&bytes, &grid()).unwrap();
            assert_eq!(back.values.len(), a.values.len());
            assert!(back
                .values
                .iter()
                .zip(a.values.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits()));
            assert_eq!(back.valid, a.valid);
            assert_eq!(back.tile, a.tile);
            if n == 0 {
                assert_eq!(bytes.len(), 38 + 8, "a uniform tile is stored as one value");
            }
        }
        // NaN nodata everywhere is uniform too.
        let mut nan = answer(0);
        nan.values.fill(f64::NAN);
        nan.valid.fill(false);
        let back: TileAnswer = decode(&encode(&nan), &grid()).unwrap();
        assert!(back.values.iter().all(|v| v.is_nan()) && back.valid.iter().all(|&v| !v));
        // Damaged records are refused, not misread.
        let bytes = encode(&answer(2));
        assert!(decode::<f64>(&bytes[..bytes.len() - 1], &grid()).is_none());
        let mut bad_width = bytes.clone();
        bad_width[36] = 3;
        assert!(decode::<f64>(&bad_width, &grid()).is_none());
    }

    #[test]
    fn f32_answers_are_stored_as_f32_and_read_back_either_way() {
        for n in [0, 2, 3] {
            let wide = answer(n);
            let narrow = TileAnswer {
                tile: wide.tile,
                values: wide.values.mapv(|v| v as f32),
                margins: wide.margins,
                valid: wide.valid.clone(),
            };
            let bytes = encode(&narrow);
            assert_eq!(
                bytes,
                encode(&wide),
                "tile {n}: the same record from f32 or f64"
            );
            // Float32 values not all one value are written from where they lie; the f64
            // answer, encoded, gave the same bytes above.
            let borrowed = |a: &TileAnswer<f32>| matches!(record(a)[1], Cow::Borrowed(_));
            assert_eq!(borrowed(&narrow), n != 0, "tile {n}: values borrowed");
            assert!(matches!(record(&wide)[1], Cow::Owned(_)));
            let back: TileAnswer<f32> = decode(&bytes, &grid()).unwrap();
            assert_eq!(back.values, narrow.values);
            assert_eq!(back.valid, narrow.valid);
        }
    }

    #[test]
    fn torn_tails_are_dropped_and_other_jobs_refused() {
        let dir = std::env::temp_dir().join(format!("ee-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.tif.journal");
        let mut j = Journal::create(&path, "abc").unwrap();
        for n in 0..3 {
            j.append(&answer(n), &[2]).unwrap();
        }
        drop(j);
        // Tear the last record in half, as a kill mid-write would.
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 100)
            .unwrap();
        let Resumed {
            answers,
            journal: mut j,
        } = Journal::resume::<f64>(&path, "abc", &grid()).unwrap();
        assert_eq!(j.layout(), Some(&[2][..]));
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[1].values, answer(1).values);
        assert_eq!(answers[0].values, answer(0).values);
        j.append(&answer(2), &[2]).unwrap();
        assert!(j.append(&answer(3), &[1, 1]).is_err(), "another layout");
        drop(j);
        let answers = Journal::resume::<f64>(&path, "abc", &grid())
            .unwrap()
            .answers;
        assert_eq!(
            answers.iter().map(|a| a.tile.number).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let err = Journal::resume::<f64>(&path, "other", &grid())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("other arguments"), "{err}");
    }

    #[test]
    fn the_layout_of_mixed_bands_is_kept() {
        let dir = std::env::temp_dir().join(format!("ee-journal-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.tif.journal");
        // A three-plane array band beside a scalar band: 4 planes, not 2 + 2.
        let mut j = Journal::create(&path, "abc").unwrap();
        let mut a = answer(2);
        a.values = Array3::from_shape_fn((4, 4, 4), |(r, c, p)| (r * 16 + c * 4 + p) as f64);
        j.append(&a, &[3, 1]).unwrap();
        drop(j);
        let r = Journal::resume::<f64>(&path, "abc", &grid()).unwrap();
        assert_eq!(r.journal.layout(), Some(&[3, 1][..]));
        assert_eq!(r.answers[0].values, a.values);
        // An empty journal has no layout yet.
        drop(Journal::create(&path, "abc").unwrap());
        let r = Journal::resume::<f64>(&path, "abc", &grid()).unwrap();
        assert_eq!((r.journal.layout(), r.answers.len()), (None, 0));
        // A v2 journal (tiles straight after the header) is refused, not misread.
        let mut w = TfRecordWriter::new(File::create(&path).unwrap(), Compression::None);
        w.write_record(&[MAGIC, b"abc"].concat()).unwrap();
        w.write_record(&record(&a).concat()).unwrap();
        drop(w);
        let err = Journal::resume::<f64>(&path, "abc", &grid())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("layout"), "{err}");
    }
}
