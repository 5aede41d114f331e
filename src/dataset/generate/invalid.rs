//! Malformed lines, injected at `invalid_rate` to exercise dead-lettering: the schedule that
//! decides which review and tip lines are replaced and by which [`InvalidKind`], and the writers
//! of each kind (a dropped or retyped field, a bad value, a line cut in half).

use std::io::{self, Write};

use serde::Serialize;

use super::{InvalidKind, write_line};
use crate::dataset::types::{Review, Tip};

pub(super) const REVIEW_INVALID_KINDS: [InvalidKind; 6] = [
    InvalidKind::TruncatedJson,
    InvalidKind::StarsOutOfRange,
    InvalidKind::MissingId,
    InvalidKind::BadDate,
    InvalidKind::EmptyBusinessId,
    InvalidKind::WrongType,
];

/// Tips have no stars, so one kind fewer.
pub(super) const TIP_INVALID_KINDS: [InvalidKind; 5] = [
    InvalidKind::TruncatedJson,
    InvalidKind::MissingId,
    InvalidKind::BadDate,
    InvalidKind::EmptyBusinessId,
    InvalidKind::WrongType,
];

/// Decides, deterministically and evenly spread, which lines are replaced by malformed ones:
/// line `i` is bad when `floor((i + 1) × rate)` exceeds `floor(i × rate)`, which makes exactly
/// `floor(lines × rate)` bad lines.
pub(super) struct InvalidSchedule {
    rate: f64,
    kinds: &'static [InvalidKind],
    line: u64,
    pub(super) injected: u64,
}

impl InvalidSchedule {
    pub(super) fn new(rate: f64, kinds: &'static [InvalidKind]) -> Self {
        InvalidSchedule {
            rate,
            kinds,
            line: 0,
            injected: 0,
        }
    }

    /// The kind of malformed line to write instead of the next line, if any.
    pub(super) fn for_next_line(&mut self) -> Option<InvalidKind> {
        let before = (self.line as f64 * self.rate).floor();
        self.line += 1;
        let after = (self.line as f64 * self.rate).floor();
        if after <= before {
            return None;
        }
        let kind = self.kinds[(self.injected % self.kinds.len() as u64) as usize];
        self.injected += 1;
        Some(kind)
    }
}

/// A review whose fields the malformed kinds can drop or retype, in the official field order.
#[derive(Serialize)]
struct LooseReview<'a, S: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    review_id: Option<&'a str>,
    user_id: &'a str,
    business_id: &'a str,
    stars: S,
    useful: i64,
    funny: i64,
    cool: i64,
    text: &'a str,
    date: &'a str,
}

/// `review` as a [`LooseReview`] with the given `review_id` and `stars`.
fn loose_review<'a, S: Serialize>(review: &'a Review, review_id: Option<&'a str>, stars: S) -> LooseReview<'a, S> {
    LooseReview {
        review_id,
        user_id: &review.user_id,
        business_id: &review.business_id,
        stars,
        useful: review.useful,
        funny: review.funny,
        cool: review.cool,
        text: &review.text,
        date: &review.date,
    }
}

pub(super) fn write_invalid_review(
    out: &mut impl Write,
    review: &mut Review,
    kind: InvalidKind,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    match kind {
        InvalidKind::TruncatedJson => write_truncated(out, review, scratch),
        InvalidKind::StarsOutOfRange => {
            review.stars = 7.0;
            write_line(out, review)
        }
        InvalidKind::MissingId => write_line(out, &loose_review(review, None, review.stars)),
        InvalidKind::BadDate => {
            review.date.clear();
            review.date.push_str("not a date");
            write_line(out, review)
        }
        InvalidKind::EmptyBusinessId => {
            review.business_id.clear();
            write_line(out, review)
        }
        InvalidKind::WrongType => write_line(out, &loose_review(review, Some(&review.review_id), "five")),
    }
}

/// A tip whose fields the malformed kinds can drop or retype, in the official field order.
#[derive(Serialize)]
struct LooseTip<'a, C: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    business_id: &'a str,
    text: &'a str,
    date: &'a str,
    compliment_count: C,
}

/// `tip` as a [`LooseTip`] with the given `user_id` and `compliment_count`.
fn loose_tip<'a, C: Serialize>(tip: &'a Tip, user_id: Option<&'a str>, compliment_count: C) -> LooseTip<'a, C> {
    LooseTip {
        user_id,
        business_id: &tip.business_id,
        text: &tip.text,
        date: &tip.date,
        compliment_count,
    }
}

pub(super) fn write_invalid_tip(
    out: &mut impl Write,
    tip: &mut Tip,
    kind: InvalidKind,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    match kind {
        InvalidKind::TruncatedJson => write_truncated(out, tip, scratch),
        InvalidKind::MissingId => write_line(out, &loose_tip(tip, None, tip.compliment_count)),
        InvalidKind::BadDate => {
            tip.date.clear();
            tip.date.push_str("not a date");
            write_line(out, tip)
        }
        InvalidKind::EmptyBusinessId => {
            tip.business_id.clear();
            write_line(out, tip)
        }
        // Tips have no stars ([`TIP_INVALID_KINDS`] never asks); a retyped count stands in.
        InvalidKind::WrongType | InvalidKind::StarsOutOfRange => {
            write_line(out, &loose_tip(tip, Some(&tip.user_id), "one"))
        }
    }
}

/// The first half of the record's line, cut on a character boundary so that the line is
/// broken JSON but still valid UTF-8 (one defect per line keeps dead-letter reasons clear).
fn write_truncated<W: Write, T: Serialize>(out: &mut W, record: &T, scratch: &mut Vec<u8>) -> io::Result<()> {
    scratch.clear();
    write_line(scratch, record)?;
    let mut cut = scratch.len() / 2;
    while cut > 0 && (scratch[cut] & 0xC0) == 0x80 {
        cut -= 1; // inside a multi-byte UTF-8 sequence
    }
    out.write_all(&scratch[..cut])?;
    out.write_all(b"\n")
}
