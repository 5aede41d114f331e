//! Review and tip texts: the word lists (common words by frequency, positive and negative
//! sentiment words) and the [`TextGenerator`] that builds sentences from them.

use super::rng::Prng;

/// Common words, most frequent first (sampled with Zipf weights by rank).
const WORDS: &[&str] = &[
    "the",
    "and",
    "I",
    "a",
    "to",
    "was",
    "it",
    "of",
    "for",
    "is",
    "in",
    "we",
    "my",
    "with",
    "this",
    "they",
    "but",
    "you",
    "on",
    "that",
    "had",
    "were",
    "food",
    "so",
    "place",
    "here",
    "at",
    "not",
    "have",
    "our",
    "be",
    "good",
    "are",
    "very",
    "all",
    "just",
    "there",
    "out",
    "like",
    "great",
    "me",
    "time",
    "as",
    "one",
    "service",
    "get",
    "back",
    "would",
    "if",
    "up",
    "which",
    "their",
    "an",
    "really",
    "or",
    "came",
    "go",
    "from",
    "also",
    "order",
    "us",
    "what",
    "when",
    "about",
    "some",
    "will",
    "more",
    "can",
    "ordered",
    "nice",
    "it's",
    "staff",
    "little",
    "because",
    "been",
    "always",
    "menu",
    "only",
    "even",
    "got",
    "try",
    "by",
    "restaurant",
    "no",
    "other",
    "well",
    "chicken",
    "too",
    "first",
    "went",
    "don't",
    "then",
    "could",
    "table",
    "people",
    "make",
    "know",
    "than",
    "made",
    "come",
    "our",
    "much",
    "came",
    "minutes",
    "pretty",
    "server",
    "wait",
    "bar",
    "night",
    "experience",
    "sauce",
    "definitely",
    "she",
    "he",
    "again",
    "after",
    "check",
    "over",
    "price",
    "prices",
    "way",
    "went",
    "lunch",
    "dinner",
    "drinks",
    "said",
    "two",
    "area",
    "location",
    "next",
    "friends",
    "ever",
    "since",
    "going",
    "want",
    "day",
    "before",
    "everything",
    "sure",
    "fries",
    "cheese",
    "pizza",
    "salad",
    "burger",
    "coffee",
    "last",
    "bit",
    "where",
    "home",
    "though",
    "right",
    "these",
    "think",
    "atmosphere",
    "side",
    "selection",
    "town",
    "lot",
    "small",
    "around",
    "new",
    "order",
    "times",
    "while",
    "drink",
    "fresh",
    "meal",
    "ask",
    "hot",
    "bread",
    "see",
    "hour",
    "table",
    "seated",
    "kitchen",
    "portion",
    "portions",
    "sandwich",
    "tacos",
    "rice",
    "beef",
    "pork",
    "shrimp",
    "fish",
    "soup",
    "dessert",
    "cake",
    "tea",
    "beer",
    "wine",
    "cocktails",
    "happy",
    "weekend",
    "Saturday",
    "Friday",
    "morning",
    "parking",
    "street",
    "downtown",
    "neighborhood",
    "owner",
    "manager",
    "waitress",
    "waiter",
    "bartender",
    "customer",
    "customers",
    "appointment",
    "car",
    "hair",
    "room",
    "hotel",
    "stay",
    "visit",
    "visited",
    "tried",
    "felt",
    "seemed",
    "looked",
    "decided",
    "wanted",
    "needed",
    "took",
    "gave",
    "left",
    "found",
    "called",
    "said",
    "told",
    "asked",
    "paid",
    "bill",
    "tip",
    "cash",
    "card",
    "line",
    "crowd",
    "busy",
    "quiet",
    "clean",
    "spot",
    "patio",
    "music",
    "view",
    "decor",
    "space",
    "inside",
    "outside",
    "upstairs",
    "menu",
    "special",
    "specials",
    "options",
    "vegan",
    "vegetarian",
    "gluten-free",
    "spicy",
    "sweet",
    "sour",
    "savory",
    "rich",
    "light",
    "crispy",
    "tender",
    "juicy",
    "huge",
    "tiny",
    "quick",
    "long",
    "late",
    "early",
    "open",
    "closed",
    "family",
    "kids",
    "dog",
    "birthday",
    "anniversary",
    "date",
    "group",
    "party",
    "reservation",
    "minute",
    "hours",
    "week",
    "month",
    "year",
    "years",
    "ago",
    "later",
    "soon",
    "never",
    "usually",
    "often",
    "probably",
    "maybe",
    "actually",
    "honestly",
    "overall",
    "though",
    "however",
    "especially",
    "almost",
    "quite",
    "café",
    "jalapeño",
    "crème",
    "brûlée",
    "piña",
    "colada",
    "$20",
    "5/5",
    "24/7",
];

const POSITIVE_WORDS: &[&str] = &[
    "amazing",
    "delicious",
    "fantastic",
    "excellent",
    "wonderful",
    "perfect",
    "awesome",
    "fresh",
    "friendly",
    "attentive",
    "outstanding",
    "incredible",
    "tasty",
    "cozy",
    "lovely",
    "helpful",
    "welcoming",
    "flavorful",
    "spotless",
    "reasonable",
    "generous",
    "recommend",
    "favorite",
    "impressed",
    "gem",
    "beautiful",
    "superb",
    "fast",
    "professional",
    "yummy",
    "10/10",
    "highly",
    "loved",
    "enjoyed",
    "pleasant",
    "best",
    "authentic",
    "perfectly",
    "worth",
    "thank",
];

const NEGATIVE_WORDS: &[&str] = &[
    "terrible",
    "rude",
    "awful",
    "bland",
    "cold",
    "overpriced",
    "dirty",
    "slow",
    "disappointing",
    "worst",
    "horrible",
    "mediocre",
    "greasy",
    "soggy",
    "stale",
    "unprofessional",
    "ignored",
    "waited",
    "wrong",
    "burnt",
    "disgusting",
    "refund",
    "complaint",
    "gross",
    "unfriendly",
    "sticky",
    "undercooked",
    "salty",
    "dry",
    "forgot",
    "poor",
    "lukewarm",
    "noisy",
    "avoid",
    "sadly",
    "meh",
    "unacceptable",
    "inedible",
    "never",
    "rushed",
];

/// Number of slots of the word table; a power of two so a slot is a mask of random bits.
const WORD_TABLE_SLOTS: usize = 4096;

/// Builds review and tip texts into reused buffers: random words from [`WORDS`] with Zipf
/// frequencies, seasoned with sentiment words that match the stars, in capitalised sentences.
pub(super) struct TextGenerator {
    /// Index into [`WORDS`] per slot, each word holding slots in proportion to its frequency,
    /// so drawing a word is one random number and one lookup.
    word_table: Vec<u16>,
}

impl TextGenerator {
    pub(super) fn new() -> Self {
        let mut total = 0.0;
        let cumulative: Vec<f64> = (0..WORDS.len())
            .map(|rank| {
                total += 1.0 / (rank + 1) as f64;
                total
            })
            .collect();
        let word_table = (0..WORD_TABLE_SLOTS)
            .map(|slot| {
                let target = (slot as f64 + 0.5) / WORD_TABLE_SLOTS as f64 * total;
                cumulative.partition_point(|&c| c <= target).min(WORDS.len() - 1) as u16
            })
            .collect();
        TextGenerator { word_table }
    }

    /// 20–149 words in sentences, sometimes split into paragraphs with `" \n\n"` like real reviews.
    pub(super) fn review(&self, rng: &mut Prng, stars: u8, out: &mut String) {
        out.clear();
        let u = rng.unit();
        let words = 20 + (130.0 * u * u.sqrt()) as usize;
        let mut written = 0;
        while written < words {
            if written > 0 {
                out.push_str(if rng.chance(0.07) { " \n\n" } else { " " });
            }
            let len = (6 + rng.below(11) as usize).min(words - written);
            self.sentence(rng, stars, len, out);
            written += len;
        }
    }

    /// One sentence of 3–24 words.
    pub(super) fn tip(&self, rng: &mut Prng, stars: u8, out: &mut String) {
        out.clear();
        let len = 3 + rng.below(22) as usize;
        self.sentence(rng, stars, len, out);
    }

    fn sentence(&self, rng: &mut Prng, stars: u8, len: usize, out: &mut String) {
        let mut previous = "";
        for i in 0..len {
            let mut word = self.word(rng, stars);
            if word == previous {
                word = self.word(rng, stars); // "the the" reads like a bug, not like a review
            }
            previous = word;
            if i == 0 {
                push_capitalised(out, word);
            } else {
                out.push_str(if rng.chance(0.05) { ", " } else { " " });
                out.push_str(word);
            }
        }
        out.push(if rng.chance(0.12) { '!' } else { '.' });
    }

    fn word(&self, rng: &mut Prng, stars: u8) -> &'static str {
        let bits = rng.next_u64();
        // The low bits pick a slot, independent high bits decide on a sentiment word.
        if (bits >> 56) < 28 {
            // ≈ 11 % of words carry the review's sentiment; 3★ reviews mix both.
            let pool = match stars {
                1 | 2 => NEGATIVE_WORDS,
                3 if bits & (1 << 40) != 0 => NEGATIVE_WORDS,
                _ => POSITIVE_WORDS,
            };
            return pool[((bits >> 16) % pool.len() as u64) as usize];
        }
        WORDS[usize::from(self.word_table[(bits as usize) & (WORD_TABLE_SLOTS - 1)])]
    }
}

fn push_capitalised(out: &mut String, word: &str) {
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        out.push(first.to_ascii_uppercase());
        out.push_str(chars.as_str());
    }
}
