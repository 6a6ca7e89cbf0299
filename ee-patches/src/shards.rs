//! Record files written safely: each file is written as `NAME.partial` and renamed only when
//! every file of the set is complete, so a run that dies never leaves a set of records that
//! looks complete. A set may be split into shards of at most `max_bytes` of uncompressed
//! records each (`PREFIX-00000.tfrecord.gz`, `PREFIX-00001...`).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use ee_raster_io::partial_path;
use ee_tensor_proto::tfrecord::{framed_len, Compression, TfRecordWriter};

use crate::error::io_err;
use crate::Result;

/// The name of shard `index` of `prefix`: `PREFIX-00000.tfrecord[.gz]`.
pub fn shard_path(prefix: &Path, index: usize, compression: Compression) -> PathBuf {
    let mut name = prefix
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!("-{index:05}.tfrecord"));
    if compression == Compression::Gzip {
        name.push(".gz");
    }
    prefix.with_file_name(name)
}

/// The compression a record file name implies: gzip for `.gz`.
pub fn compression_of(path: &Path) -> Compression {
    match path.extension() {
        Some(e) if e.eq_ignore_ascii_case("gz") => Compression::Gzip,
        _ => Compression::None,
    }
}

type Naming = Box<dyn Fn(usize) -> PathBuf + Send>;

/// Writes records into one file or a numbered set of shards.
pub(crate) struct RecordFiles {
    naming: Naming,
    compression: Compression,
    max_bytes: Option<u64>,
    current: Option<(TfRecordWriter<BufWriter<File>>, PathBuf, u64)>,
    written: Vec<PathBuf>,
    records: u64,
    bytes: u64,
    finished: bool,
}

impl RecordFiles {
    /// One file at `path`.
    pub(crate) fn single(path: PathBuf, compression: Compression) -> Self {
        Self::new(Box::new(move |_| path.clone()), compression, None)
    }

    /// Shards of `prefix`, each holding at most `max_bytes` of uncompressed records (a record
    /// larger than that gets a shard of its own).
    pub(crate) fn sharded(prefix: PathBuf, compression: Compression, max_bytes: u64) -> Self {
        Self::new(
            Box::new(move |i| shard_path(&prefix, i, compression)),
            compression,
            Some(max_bytes),
        )
    }

    fn new(naming: Naming, compression: Compression, max_bytes: Option<u64>) -> Self {
        RecordFiles {
            naming,
            compression,
            max_bytes,
            current: None,
            written: Vec::new(),
            records: 0,
            bytes: 0,
            finished: false,
        }
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some((writer, partial, _)) = self.current.take() {
            let file = writer.finish().map_err(io_err(&partial))?;
            file.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .map_err(io_err(&partial))?;
        }
        Ok(())
    }

    /// Appends one record, starting a new shard when this one would grow past the limit.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        let len = framed_len(data.len() as u64);
        let full = match (&self.current, self.max_bytes) {
            (Some((_, _, used)), Some(max)) => *used > 0 && used + len > max,
            _ => false,
        };
        if full {
            self.close_current()?;
        }
        if self.current.is_none() {
            let path = (self.naming)(self.written.len());
            let partial = partial_path(&path);
            let file = File::create(&partial).map_err(io_err(&partial))?;
            self.current = Some((
                TfRecordWriter::new(BufWriter::with_capacity(1 << 20, file), self.compression),
                partial,
                0,
            ));
            self.written.push(path);
        }
        if let Some((writer, partial, used)) = self.current.as_mut() {
            writer.write_record(data).map_err(io_err(partial))?;
            *used += len;
        }
        self.records += 1;
        self.bytes += len;
        Ok(())
    }

    /// Records written so far.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Uncompressed bytes of records written so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Closes the last file and moves every file into place; returns their paths. A set with
    /// no record at all writes one empty file when `empty_file` is set, else none.
    pub(crate) fn finish(mut self, empty_file: bool) -> Result<Vec<PathBuf>> {
        if self.written.is_empty() && empty_file {
            let path = (self.naming)(0);
            let partial = partial_path(&path);
            let file = File::create(&partial).map_err(io_err(&partial))?;
            self.current = Some((
                TfRecordWriter::new(BufWriter::new(file), self.compression),
                partial,
                0,
            ));
            self.written.push(path);
        }
        self.close_current()?;
        for path in &self.written {
            let partial = partial_path(path);
            std::fs::rename(&partial, path).map_err(io_err(path))?;
        }
        self.finished = true;
        Ok(std::mem::take(&mut self.written))
    }
}

impl Drop for RecordFiles {
    /// An unfinished set removes its partial files.
    fn drop(&mut self) {
        if !self.finished {
            self.current = None;
            for path in &self.written {
                let _ = std::fs::remove_file(partial_path(path));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ee_tensor_proto::tfrecord::open_reader;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("ee-patches-shards-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn names_follow_earth_engine() {
        let p = Path::new("/out/patches");
        assert_eq!(
            shard_path(p, 0, Compression::Gzip),
            Path::new("/out/patches-00000.tfrecord.gz")
        );
        assert_eq!(
            shard_path(p, 12, Compression::None),
            Path::new("/out/patches-00012.tfrecord")
        );
        assert_eq!(
            compression_of(Path::new("a.tfrecord.GZ")),
            Compression::Gzip
        );
        assert_eq!(compression_of(Path::new("a.tfrecord")), Compression::None);
    }

    #[test]
    fn shards_split_at_the_limit_and_appear_only_when_finished() {
        let d = dir("split");
        let prefix = d.join("p");
        // Records of 84 framed bytes; 200 bytes per shard holds two.
        let mut files = RecordFiles::sharded(prefix.clone(), Compression::Gzip, 200);
        for i in 0..5u8 {
            files.write(&[i; 68]).unwrap();
        }
        assert!(!shard_path(&prefix, 0, Compression::Gzip).exists());
        assert!(partial_path(&shard_path(&prefix, 0, Compression::Gzip)).exists());
        let paths = files.finish(false).unwrap();
        assert_eq!(paths.len(), 3);
        let mut all = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(p, &shard_path(&prefix, i, Compression::Gzip));
            assert!(!partial_path(p).exists());
            let (reader, c) = open_reader(File::open(p).unwrap()).unwrap();
            assert_eq!(c, Compression::Gzip);
            let recs: Vec<Vec<u8>> = reader.map(|r| r.unwrap()).collect();
            assert!(recs.len() <= 2);
            all.extend(recs);
        }
        assert_eq!(all, (0..5u8).map(|i| vec![i; 68]).collect::<Vec<_>>());
    }

    #[test]
    fn an_abandoned_set_leaves_nothing() {
        let d = dir("drop");
        let path = d.join("t.tfrecord");
        let mut files = RecordFiles::single(path.clone(), Compression::None);
        files.write(b"x").unwrap();
        drop(files);
        assert!(!path.exists() && !partial_path(&path).exists());
        let files = RecordFiles::single(path.clone(), Compression::None);
        assert_eq!(files.finish(true).unwrap(), vec![path.clone()]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
