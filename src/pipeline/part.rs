//! A raw-zone file in the making: the clean JSON records of one Kafka partition as the consumer
//! buffers them, and their encoding as one Parquet file.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use super::PipelineError;
use super::clean::{arrow_schema, raw_zone_schema};
use crate::dataset::Entity;

/// Bytes of one chunk of [`JsonLines`] (a larger record gets a chunk of its own size).
const CHUNK_BYTES: usize = 4 << 20;

/// Records as JSON lines, in chunks that are filled once and never moved.
///
/// One buffer grown by doubling copied everything it held at each step, and faulted in fresh
/// pages for each copy: with files of up to 128 MiB, about 50k of the 660k minor faults of
/// `lab consume` on 1M reviews (measured against buffers reserved whole, which overshot their
/// reservation inside a batch). Chunks of one size are freed with their file, so the allocator
/// can hand them to the next one.
pub(super) struct JsonLines {
    chunks: Vec<Chunk>,
    chunk_bytes: usize,
    bytes: usize,
}

/// Whole records, each followed by a newline.
struct Chunk {
    json: Vec<u8>,
    /// End of each record (before its newline) in `json`, so records can be told apart whatever
    /// they contain.
    ends: Vec<usize>,
}

impl Default for JsonLines {
    fn default() -> Self {
        Self::with_chunk_bytes(CHUNK_BYTES)
    }
}

impl JsonLines {
    fn with_chunk_bytes(chunk_bytes: usize) -> Self {
        Self {
            chunks: Vec::new(),
            chunk_bytes,
            bytes: 0,
        }
    }

    /// Appends one record (one message's payload).
    pub(super) fn push(&mut self, record: &[u8]) {
        let needed = record.len() + 1;
        let chunk = match self.chunks.last_mut() {
            Some(chunk) if chunk.json.capacity() - chunk.json.len() >= needed => chunk,
            _ => {
                self.chunks.push(Chunk {
                    json: Vec::with_capacity(needed.max(self.chunk_bytes)),
                    ends: Vec::new(),
                });
                self.chunks.last_mut().expect("a chunk was just pushed")
            }
        };
        chunk.json.extend_from_slice(record);
        chunk.ends.push(chunk.json.len());
        chunk.json.push(b'\n');
        self.bytes += needed;
    }

    /// Bytes held, newlines included.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Each record as it was pushed.
    pub(super) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().flat_map(|chunk| {
            let starts = std::iter::once(0).chain(chunk.ends.iter().map(|end| end + 1));
            starts.zip(&chunk.ends).map(|(start, &end)| &chunk.json[start..end])
        })
    }
}

/// Why a buffer's records could not be encoded.
#[derive(Debug)]
pub(super) enum EncodeError {
    /// Some record does not fit the entity's schema, or a message did not hold exactly one
    /// record: take the records one by one ([`fits`]).
    Records(String),
    /// Writing Parquet itself failed.
    Parquet(String),
}

impl EncodeError {
    /// The error as the pipeline reports it, naming the entity.
    pub(super) fn of(self, entity: Entity) -> PipelineError {
        let (EncodeError::Records(detail) | EncodeError::Parquet(detail)) = self;
        PipelineError::Parquet {
            entity: entity.to_string(),
            detail,
        }
    }
}

/// Records decoded and encoded at a time. A file is encoded a slice at a time, so the consumer
/// never holds a whole file's records as Arrow arrays beside their JSON: decoding each file whole
/// (up to 128 MiB of JSON became as many bytes of Arrow arrays, plus the JSON decoder's copy of
/// its strings) made faulting in fresh pages the largest part of the consumer's CPU.
pub(super) const ROWS_PER_SLICE: usize = 16 * 1024;

/// How every raw-zone file is written (the consumer's, the compaction's).
pub(super) fn writer_properties() -> Result<WriterProperties, datafusion::parquet::errors::ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .build())
}

/// Decodes clean JSON records of `entity` (`offsets` theirs) and encodes them, with their
/// partition and offsets, as one raw-zone Parquet file, `slice_rows` records at a time.
pub(super) fn encode(
    entity: Entity,
    partition: i32,
    lines: &JsonLines,
    offsets: &[i64],
    slice_rows: usize,
) -> Result<Vec<u8>, EncodeError> {
    let records = |e: &dyn std::fmt::Display| EncodeError::Records(e.to_string());
    let parquet = |e: &dyn std::fmt::Display| EncodeError::Parquet(e.to_string());
    let slice_rows = slice_rows.max(1);
    let mut decoder = ReaderBuilder::new(arrow_schema(entity))
        .with_batch_size(slice_rows)
        .build_decoder()
        .map_err(|e| parquet(&e))?;
    let props = writer_properties().map_err(|e| parquet(&e))?;
    // Zstd Parquet of clean reviews is about a third of their JSON.
    let mut out = Vec::with_capacity(lines.bytes() / 3);
    let mut writer = ArrowWriter::try_new(&mut out, raw_zone_schema(entity), Some(props)).map_err(|e| parquet(&e))?;
    let mut rows = 0;
    let mut write_slice = |decoded: RecordBatch| {
        let Some(slice_offsets) = offsets.get(rows..rows + decoded.num_rows()) else {
            return Err(records(&format!(
                "more rows decoded than the {} messages",
                offsets.len()
            )));
        };
        rows += decoded.num_rows();
        let batch = raw_zone_batch(entity, partition, decoded, slice_offsets).map_err(|e| records(&e))?;
        writer.write(&batch).map_err(|e| parquet(&e))
    };
    for chunk in &lines.chunks {
        let mut read = 0;
        // `decode` stops once a slice's records are in, or at the end of the chunk; a record
        // never spans two chunks.
        while read < chunk.json.len() {
            read += decoder.decode(&chunk.json[read..]).map_err(|e| records(&e))?;
            if decoder.len() >= slice_rows
                && let Some(decoded) = decoder.flush().map_err(|e| records(&e))?
            {
                write_slice(decoded)?;
            }
        }
    }
    if let Some(decoded) = decoder.flush().map_err(|e| records(&e))? {
        write_slice(decoded)?;
    }
    if rows != offsets.len() {
        return Err(records(&format!("decoded {rows} rows from {} messages", offsets.len())));
    }
    writer.close().map_err(|e| parquet(&e))?;
    Ok(out)
}

/// Decoded records of one Kafka partition, plus their partition and offsets: rows of a raw-zone
/// file.
fn raw_zone_batch(
    entity: Entity,
    partition: i32,
    decoded: RecordBatch,
    offsets: &[i64],
) -> Result<RecordBatch, ArrowError> {
    let mut columns: Vec<ArrayRef> = decoded.columns().to_vec();
    columns.push(Arc::new(Int32Array::from(vec![partition; offsets.len()])));
    columns.push(Arc::new(Int64Array::from(offsets.to_vec())));
    RecordBatch::try_new(raw_zone_schema(entity), columns)
}

/// Whether one message's payload is one record that fits the entity's raw-zone schema; why not.
pub(super) fn fits(entity: Entity, partition: i32, record: &[u8], offset: i64) -> Result<(), String> {
    let mut decoder = ReaderBuilder::new(arrow_schema(entity))
        .build_decoder()
        .map_err(|e| e.to_string())?;
    decoder.decode(record).map_err(|e| e.to_string())?;
    let decoded = decoder.flush().map_err(|e| e.to_string())?.ok_or("no record")?;
    if decoded.num_rows() != 1 {
        return Err(format!("{} records in one message", decoded.num_rows()));
    }
    raw_zone_batch(entity, partition, decoded, &[offset]).map_err(|e| e.to_string())?;
    Ok(())
}

/// Encodes newline-separated clean JSON records of one Kafka partition as a raw-zone Parquet file
/// (the batch and compaction tests build their raw zones with it).
#[cfg(any(test, feature = "service-tests"))]
pub(crate) fn encode_parquet(
    entity: Entity,
    partition: i32,
    offsets: &[i64],
    json: &[u8],
) -> Result<Vec<u8>, PipelineError> {
    let mut lines = JsonLines::default();
    for line in json.split_inclusive(|b| *b == b'\n') {
        lines.push(line.strip_suffix(b"\n").unwrap_or(line));
    }
    encode(entity, partition, &lines, offsets, ROWS_PER_SLICE).map_err(|e| e.of(entity))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clean review record.
    fn review(id: &str) -> Vec<u8> {
        let line = format!(
            r#"{{"review_id":"{id}","user_id":"u1","business_id":"b1","stars":4,"useful":0,"funny":0,"cool":0,"text":"ok {id}","date":"2020-01-01 10:00:00"}}"#
        );
        crate::pipeline::clean::clean(Entity::Review, line.as_bytes())
            .unwrap()
            .json
    }

    fn lines_of(records: &[Vec<u8>], chunk_bytes: usize) -> JsonLines {
        let mut lines = JsonLines::with_chunk_bytes(chunk_bytes);
        for record in records {
            lines.push(record);
        }
        lines
    }

    /// Every row of a raw-zone file: (review_id, partition, offset).
    fn rows_of(file: Vec<u8>) -> Vec<(String, i32, i64)> {
        use crate::pipeline::clean::{KAFKA_OFFSET_COLUMN, KAFKA_PARTITION_COLUMN};
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::{Int32Type, Int64Type};
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file))
            .unwrap()
            .build()
            .unwrap();
        let mut rows = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let column = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).clone();
            let (ids, partitions, offsets) = (
                column("review_id"),
                column(KAFKA_PARTITION_COLUMN),
                column(KAFKA_OFFSET_COLUMN),
            );
            for i in 0..batch.num_rows() {
                rows.push((
                    ids.as_string::<i32>().value(i).to_string(),
                    partitions.as_primitive::<Int32Type>().value(i),
                    offsets.as_primitive::<Int64Type>().value(i),
                ));
            }
        }
        rows
    }

    /// Records come back as pushed, whatever they hold (newlines, nothing at all), across chunks
    /// (a chunk of one byte gives each record a chunk of its own).
    #[test]
    fn json_lines_give_back_each_record_as_pushed() {
        let records: Vec<&[u8]> = vec![b"{\"a\":1}", b"", b"two\nlines", b"{\"b\":2}"];
        for chunk_bytes in [1, 12, CHUNK_BYTES] {
            let mut lines = JsonLines::with_chunk_bytes(chunk_bytes);
            for record in &records {
                lines.push(record);
            }
            assert_eq!(
                lines.iter().collect::<Vec<_>>(),
                records,
                "chunks of {chunk_bytes} bytes"
            );
            assert_eq!(lines.bytes(), 7 + 9 + 7 + 4);
        }
    }

    /// A file is encoded a slice at a time, from chunks: every record lands once, in order, each
    /// with its own offset (offsets skip the transactions' markers), across slice and chunk
    /// boundaries.
    #[test]
    fn a_file_encoded_in_slices_holds_every_record_with_its_offset() {
        let ids = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"];
        let records: Vec<Vec<u8>> = ids.iter().map(|id| review(id)).collect();
        let offsets: Vec<i64> = (0..10).map(|i| 100 + i * 2).collect();
        let expected: Vec<(String, i32, i64)> = ids
            .iter()
            .zip(&offsets)
            .map(|(id, offset)| ((*id).to_string(), 4, *offset))
            .collect();
        // Chunks of one record, of about three, of all.
        let record_bytes = records[0].len() + 1;
        for chunk_bytes in [1, 3 * record_bytes, CHUNK_BYTES] {
            let lines = lines_of(&records, chunk_bytes);
            for slice_rows in [1, 3, 10, ROWS_PER_SLICE] {
                let file = encode(Entity::Review, 4, &lines, &offsets, slice_rows).unwrap();
                assert_eq!(
                    rows_of(file),
                    expected,
                    "{slice_rows} rows per slice, chunks of {chunk_bytes} bytes"
                );
            }
        }
    }

    /// A record that does not fit, in any slice, or a message that is not exactly one record, is
    /// the records' fault (so they are taken one by one), never written around.
    #[test]
    fn a_misfit_in_any_slice_is_the_records_fault() {
        let good: Vec<Vec<u8>> = (0..6).map(|i| review(&format!("r{i}"))).collect();
        let with_record = |at: usize, bad: &[u8]| {
            let mut records = good.clone();
            records[at] = bad.to_vec();
            records
        };
        let mut truncated = good.clone();
        let last = truncated.last_mut().unwrap();
        last.truncate(last.len() - 10);
        let cases = [
            ("not JSON in the last slice", with_record(5, b"this is not json {")),
            (
                "a missing field in the second slice",
                with_record(4, br#"{"review_id":"x"}"#),
            ),
            (
                "two records in one message",
                with_record(3, &[&good[3][..], &good[3]].concat()),
            ),
            ("an empty message", with_record(2, b"")),
            ("a truncated record", truncated),
        ];
        let offsets: Vec<i64> = (0..6).collect();
        for (what, records) in cases {
            for chunk_bytes in [1, CHUNK_BYTES] {
                match encode(Entity::Review, 0, &lines_of(&records, chunk_bytes), &offsets, 3) {
                    Err(EncodeError::Records(_)) => {}
                    other => panic!("{what}, chunks of {chunk_bytes} bytes: {other:?}"),
                }
            }
        }
        // And each misfit is found alone.
        assert!(fits(Entity::Review, 0, &good[0], 0).is_ok());
        for bad in [
            &b"this is not json {"[..],
            br#"{"review_id":"x"}"#,
            b"",
            &[&good[3][..], &good[3]].concat(),
        ] {
            assert!(
                fits(Entity::Review, 0, bad, 0).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
