//! Deterministic randomness: the independent streams, SplitMix64 seeding xoshiro256**, the
//! distributions drawn from them (long-tailed counters, star ratings, Zipf-like popularity) and
//! the record identifiers derived from SplitMix64. Everything is specified here rather than
//! taken from a crate, so a seed means the same bytes forever.

/// Independent random streams, so that e.g. changing how tips are written does not change reviews.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stream {
    Assignment,
    Popularity,
    Typical,
    Since,
    Business,
    User,
    Review,
    Tip,
    Checkin,
}

impl Stream {
    fn salt(self) -> u64 {
        match self {
            Stream::Assignment => 0x6173_7369_676e_0001,
            Stream::Popularity => 0x706f_7075_6c61_0002,
            Stream::Typical => 0x7479_7069_6361_0003,
            Stream::Since => 0x7369_6e63_6500_0004,
            Stream::Business => 0x6275_7369_6e65_0005,
            Stream::User => 0x7573_6572_0000_0006,
            Stream::Review => 0x7265_7669_6577_0007,
            Stream::Tip => 0x7469_7000_0000_0008,
            Stream::Checkin => 0x6368_6563_6b69_0009,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PRNG: SplitMix64 seeding xoshiro256**, both by Blackman and Vigna (public domain).

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256**: fast, small, and fully specified, so a seed means the same sequence forever
/// (unlike `rand`'s `StdRng`, whose algorithm may change between versions).
pub(super) struct Prng {
    s: [u64; 4],
}

impl Prng {
    pub(super) fn new(seed: u64, stream: Stream) -> Self {
        let mut state = seed ^ stream.salt();
        Prng {
            s: [(); 4].map(|()| splitmix64(&mut state)),
        }
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`, 53 bits.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (Lemire); the bias is below 2⁻⁶⁴·n.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An item drawn with probability proportional to its integer weight.
    pub(super) fn weighted<'a, T>(&mut self, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
        let total: u64 = items.iter().map(|i| u64::from(weight(i))).sum();
        let mut target = self.below(total);
        for item in items {
            let w = u64::from(weight(item));
            if target < w {
                return item;
            }
            target -= w;
        }
        &items[items.len() - 1]
    }
}

/// `floor(max × uᵏ)`: mostly small with a long tail, the shape of most counters in the dataset
/// (useful votes, fans, compliments). Repeated multiplication instead of `powf` keeps it exact.
pub(super) fn scaled(rng: &mut Prng, max: f64, k: u32) -> i64 {
    let u = rng.unit();
    let mut x = max;
    for _ in 0..k {
        x *= u;
    }
    x as i64
}

/// Stars with the real dataset's skew: 1★ 15 %, 2★ 8 %, 3★ 11 %, 4★ 22 %, 5★ 44 %.
pub(super) fn draw_stars(u: f64) -> u8 {
    const CUMULATIVE: [f64; 5] = [0.15, 0.23, 0.34, 0.56, 1.0];
    CUMULATIVE.iter().position(|&c| u < c).map_or(5, |i| i as u8 + 1)
}

/// Zipf-like popularity (weight of rank r ∝ 1/√r, which gives the real dataset's long tail:
/// a few businesses with thousands of reviews, the median with a dozen), with ranks shuffled
/// over indices so file order does not reveal popularity.
pub(super) struct Popularity {
    cumulative: Vec<f64>,
    index_of_rank: Vec<u32>,
}

impl Popularity {
    pub(super) fn new(n: usize, rng: &mut Prng) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|rank| {
                total += 1.0 / ((rank + 1) as f64).sqrt();
                total
            })
            .collect();
        let mut index_of_rank: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize; // Fisher–Yates
            index_of_rank.swap(i, j);
        }
        Popularity {
            cumulative,
            index_of_rank,
        }
    }

    pub(super) fn sample(&self, rng: &mut Prng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let target = rng.unit() * total;
        let rank = self
            .cumulative
            .partition_point(|&c| c <= target)
            .min(self.cumulative.len() - 1);
        self.index_of_rank[rank] as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Identifiers

pub(super) const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Appends the 22-character id of record `index` of a kind: the URL-safe base64 of 128 bits, as
/// Yelp's ids are (hence their last character is always one of `A`, `Q`, `g`, `w`).
///
/// Derived from the index instead of stored, so friends lists, reviews and tips can name any
/// user or business for free. Unique within a kind: each id consumes two SplitMix64 states of
/// its own (stride 2), the first 64 bits are the output of distinct states, and SplitMix64's
/// output function is a bijection.
pub(super) fn push_id(out: &mut String, seed: u64, kind: Stream, index: u64) {
    const ID_SALT: u64 = 0x6964_7300_0000_0000; // keeps ids apart from the record streams
    let base = seed ^ kind.salt() ^ ID_SALT;
    let mut state = base.wrapping_add(index.wrapping_mul(2).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let bits = (u128::from(splitmix64(&mut state)) << 64) | u128::from(splitmix64(&mut state));
    for i in 0..21 {
        out.push(char::from(ID_ALPHABET[((bits >> (122 - 6 * i)) & 63) as usize]));
    }
    out.push(char::from(ID_ALPHABET[((bits & 3) << 4) as usize]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prng_matches_the_reference_algorithms() {
        // SplitMix64 from seed 1234567, as in Vigna's reference implementation.
        let mut state = 1_234_567u64;
        let outputs: Vec<u64> = (0..3).map(|_| splitmix64(&mut state)).collect();
        assert_eq!(
            outputs,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
        // xoshiro256** from state [1, 2, 3, 4], the test vector of the `rand_xoshiro` crate.
        let mut rng = Prng { s: [1, 2, 3, 4] };
        let outputs: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(outputs, [11_520, 0, 1_509_978_240, 1_215_971_899_390_074_240]);
    }
}
