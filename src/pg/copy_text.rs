//! Arrow values → PostgreSQL COPY text format (tab-separated, `\N` for NULL).
//!
//! Columns are first cast to a small set of canonical Arrow types so that encoding is one match.

use std::fmt::Write;
use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampSecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::arrow::error::ArrowError;

fn canonical(ty: &DataType) -> DataType {
    match ty {
        DataType::Utf8View | DataType::LargeUtf8 | DataType::Utf8 => DataType::Utf8,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => DataType::Int64,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
        DataType::Date32 | DataType::Date64 => DataType::Date32,
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            DataType::List(Arc::new(Field::new("item", canonical(f.data_type()), true)))
        }
        other => other.clone(),
    }
}

/// Casts every column of a batch to its canonical type.
pub fn canonicalize(batch: &RecordBatch) -> Result<Vec<ArrayRef>, ArrowError> {
    batch
        .columns()
        .iter()
        .map(|c| cast(c, &canonical(c.data_type())))
        .collect()
}

/// Appends row `row` of `columns` as one COPY text line.
pub fn write_row(columns: &[ArrayRef], row: usize, out: &mut String) -> Result<(), ArrowError> {
    for (i, col) in columns.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        if col.is_null(row) {
            out.push_str("\\N");
        } else {
            let mut value = String::new();
            scalar_text(col, row, &mut value, false)?;
            escape_copy(&value, out);
        }
    }
    out.push('\n');
    Ok(())
}

/// The PostgreSQL input text of one value; inside an array literal, strings are quoted.
fn scalar_text(col: &ArrayRef, row: usize, out: &mut String, in_array: bool) -> Result<(), ArrowError> {
    let unsupported = || ArrowError::NotYetImplemented(format!("COPY encoding of {}", col.data_type()));
    match col.data_type() {
        DataType::Utf8 => {
            let s = col
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(unsupported)?
                .value(row);
            if in_array {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            } else {
                out.push_str(s);
            }
        }
        DataType::Int64 => {
            push_display(
                out,
                col.as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or_else(unsupported)?
                    .value(row),
            );
        }
        DataType::Float64 => {
            // Rust's shortest round-trip formatting: PostgreSQL reads back the identical double.
            let v = col
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(unsupported)?
                .value(row);
            push_display(out, format_args!("{v:?}"));
        }
        DataType::Boolean => {
            let v = col
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(unsupported)?
                .value(row);
            out.push_str(if v { "t" } else { "f" });
        }
        DataType::Date32 => {
            let d = col
                .as_any()
                .downcast_ref::<Date32Array>()
                .ok_or_else(unsupported)?
                .value_as_date(row)
                .ok_or_else(unsupported)?;
            push_display(out, d.format("%Y-%m-%d"));
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            let secs = col
                .as_any()
                .downcast_ref::<TimestampSecondArray>()
                .ok_or_else(unsupported)?
                .value(row);
            let ts = DateTime::from_timestamp(secs, 0).ok_or_else(unsupported)?;
            push_display(out, ts.format("%Y-%m-%d %H:%M:%S+00"));
        }
        DataType::List(_) => {
            let items = col.as_list::<i32>().value(row);
            out.push('{');
            for i in 0..items.len() {
                if i > 0 {
                    out.push(',');
                }
                if items.is_null(i) {
                    out.push_str("NULL");
                } else {
                    scalar_text(&items, i, out, true)?;
                }
            }
            out.push('}');
        }
        _ => return Err(unsupported()),
    }
    Ok(())
}

fn push_display(out: &mut String, value: impl std::fmt::Display) {
    // Formatting into a String cannot fail.
    let written = write!(out, "{value}");
    debug_assert!(written.is_ok());
}

/// COPY text escaping: backslash, tab, newline and carriage return. NUL is dropped: PostgreSQL's `text` cannot hold it, and one
/// value with it would fail the whole load. The transform already removes it from every clean
/// record; this keeps a record written to a clean topic by something else from blocking the load.
fn escape_copy(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\0' => {}
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Int32Array, ListBuilder, StringBuilder, StringViewArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::Schema;

    #[test]
    fn encodes_every_canonical_type() {
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value("Bars");
        list.values().append_value("Tea \"Rooms\"\\x");
        list.append(true);
        list.append(false);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec![Some("a\tb\\c"), None])),
            Arc::new(Int32Array::from(vec![Some(7), Some(-1)])),
            Arc::new(Float64Array::from(vec![Some(3.0), Some(0.1)])),
            Arc::new(TimestampMicrosecondArray::from(vec![Some(1_531_001_351_000_000), None]).with_timezone("UTC")),
            Arc::new(list.finish()),
        ];
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(schema, columns).unwrap();
        let cols = canonicalize(&batch).unwrap();
        let mut out = String::new();
        write_row(&cols, 0, &mut out).unwrap();
        write_row(&cols, 1, &mut out).unwrap();
        assert_eq!(
            out,
            "a\\tb\\\\c\t7\t3.0\t2018-07-07 22:09:11+00\t{\"Bars\",\"Tea \\\\\"Rooms\\\\\"\\\\\\\\x\"}\n\\N\t-1\t0.1\t\\N\t\\N\n"
        );
    }

    #[test]
    fn nul_never_reaches_copy_text() {
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value("Ba\0rs");
        list.append(true);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec![Some("Caf\0é\0")])),
            Arc::new(list.finish()),
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", columns[0].data_type().clone(), true),
            Field::new("categories", columns[1].data_type().clone(), true),
        ]));
        let cols = canonicalize(&RecordBatch::try_new(schema, columns).unwrap()).unwrap();
        let mut out = String::new();
        write_row(&cols, 0, &mut out).unwrap();
        assert_eq!(out, "Café\t{\"Bars\"}\n");
    }
}
