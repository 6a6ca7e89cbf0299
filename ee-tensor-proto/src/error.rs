//! The crate's error type: every failure names what was expected and what was found.

use crate::DataType;

/// Everything that can go wrong while encoding or decoding.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A TensorFlow `DataType` number this crate does not carry (complex, bfloat16, quantized...).
    #[error("unsupported TensorFlow dtype number {code}")]
    UnsupportedDtype {
        /// The enum number found.
        code: i32,
    },
    /// A dtype name that is not one of ours.
    #[error("unknown data type name {name:?} (expected float32, float64, float16, int8..int64, uint8..uint64, bool or string)")]
    UnknownDtypeName {
        /// The name found.
        name: String,
    },
    /// The payload declared one dtype where another was expected.
    #[error("{context}: expected dtype {expected}, found {found}")]
    DtypeMismatch {
        /// Where (tensor, band, output).
        context: String,
        /// What the caller expected.
        expected: DataType,
        /// What the payload declared.
        found: DataType,
    },
    /// A shape that cannot describe a concrete tensor.
    #[error("invalid tensor shape {shape:?}: {reason}")]
    InvalidShape {
        /// The dimensions found.
        shape: Vec<i64>,
        /// Why it is invalid.
        reason: String,
    },
    /// A value field that does not hold the number of elements the shape implies.
    #[error("tensor of dtype {dtype} and shape {shape:?} needs {expected} elements but {field} holds {found}")]
    ElementCount {
        /// The tensor's dtype.
        dtype: DataType,
        /// The tensor's shape.
        shape: Vec<usize>,
        /// The field the values came from.
        field: &'static str,
        /// Elements (or bytes, for `tensor_content`) the shape needs.
        expected: usize,
        /// Elements (or bytes) present.
        found: usize,
    },
    /// Bytes that are not a valid protobuf message.
    #[error("malformed {message} protobuf: {source}")]
    Protobuf {
        /// The message type being decoded.
        message: &'static str,
        /// The decoder's complaint.
        #[source]
        source: prost::DecodeError,
    },
    /// Text that is not base64 in either alphabet.
    #[error("{context}: invalid base64: {source}")]
    Base64 {
        /// Where the text came from.
        context: String,
        /// The decoder's complaint.
        #[source]
        source: base64::DecodeError,
    },
    /// Malformed JSON.
    #[error("malformed JSON at byte {offset}: {message}")]
    Json {
        /// Byte offset of the problem in the body.
        offset: usize,
        /// What was wrong.
        message: String,
    },
    /// Well-formed bytes whose content does not fit the payload format.
    #[error("{format} payload: {message}")]
    Payload {
        /// The payload format (`SERIALIZED_TF_TENSORS`, `KSERVE_V2_BINARY`...).
        format: &'static str,
        /// What was wrong, naming the instance, band or output.
        message: String,
    },
    /// The server answered with an error object instead of predictions.
    #[error("server answered with an error: {message}")]
    ServerError {
        /// The server's own message.
        message: String,
    },
    /// A corrupt or truncated TFRecord stream.
    #[error("TFRecord record {record} at byte {offset}: {problem}")]
    TfRecord {
        /// Zero-based index of the record.
        record: u64,
        /// Byte offset of the record's header in the (uncompressed) stream.
        offset: u64,
        /// What was wrong.
        problem: String,
    },
    /// An I/O failure while reading or writing a stream.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn payload(format: &'static str, message: impl Into<String>) -> Self {
        Error::Payload {
            format,
            message: message.into(),
        }
    }
}
