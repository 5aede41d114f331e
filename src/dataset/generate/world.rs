//! The simulated world: line counts, popularity, and the review assignments every file agrees
//! on, and the writing of each of the five files from it. Businesses and users are written
//! with counts and averages tallied from a first pass over the assignments, so that they agree
//! with the reviews written afterwards.

use std::io::{self, Write};

use super::calendar::{
    CHECKIN_START, DATASET_END, USER_SINCE_END, USER_SINCE_START, push_datetime, push_elite, year_of,
};
use super::invalid::{
    InvalidSchedule, REVIEW_INVALID_KINDS, TIP_INVALID_KINDS, write_invalid_review, write_invalid_tip,
};
use super::rng::{Popularity, Prng, Stream, draw_stars, push_id, scaled};
use super::text::TextGenerator;
use super::vocab::{
    CITIES, FIRST_NAMES, PROFILES, address, attributes, business_name, categories, hours, jitter_coordinate,
    postal_code,
};
use super::{Counts, GenerateOptions, write_line};
use crate::dataset::Entity;
use crate::dataset::types::{Business, Checkin, Review, Tip, User};

/// Line counts derived from the number of reviews, with the real dataset's ratios
/// (6.99 M reviews, 150 k businesses, 1.99 M users, 909 k tips, 131 k check-in lines).
#[derive(Debug, Clone, Copy)]
pub(super) struct Sizes {
    businesses: usize,
    users: usize,
    reviews: u64,
    tips: u64,
}

impl Sizes {
    fn for_reviews(reviews: u64) -> Self {
        let reviews_f = reviews as f64;
        Sizes {
            businesses: ((reviews_f / 45.0) as usize).max(10),
            users: ((reviews_f / 3.5) as usize).max(10),
            reviews,
            tips: reviews / 8,
        }
    }
}

/// Reviews received (or written) and the sum of their stars.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    count: u32,
    star_sum: u32,
}

impl Tally {
    fn add(&mut self, stars: u8) {
        self.count += 1;
        self.star_sum += u32::from(stars);
    }

    fn mean(self) -> Option<f64> {
        (self.count > 0).then(|| f64::from(self.star_sum) / f64::from(self.count))
    }
}

/// Who reviews what with how many stars; replayed identically from its own stream by
/// [`World::build`] (to count) and when writing reviews.
struct Assignment {
    business: usize,
    user: usize,
    stars: u8,
}

pub(super) struct World {
    seed: u64,
    pub(super) sizes: Sizes,
    invalid_rate: f64,
    business_popularity: Popularity,
    user_popularity: Popularity,
    /// Each business's "true" rating, which a share of its reviews follow so that businesses differ.
    business_typical_stars: Vec<u8>,
    business_tally: Vec<Tally>,
    user_tally: Vec<Tally>,
    /// Unix seconds; reviews and tips by a user never predate it.
    user_since: Vec<i64>,
    text: TextGenerator,
}

impl World {
    pub(super) fn build(opts: &GenerateOptions) -> Self {
        let sizes = Sizes::for_reviews(opts.reviews);
        let seed = opts.seed;
        let mut rng = Prng::new(seed, Stream::Popularity);
        let business_popularity = Popularity::new(sizes.businesses, &mut rng);
        let user_popularity = Popularity::new(sizes.users, &mut rng);
        let mut rng = Prng::new(seed, Stream::Typical);
        let business_typical_stars = (0..sizes.businesses).map(|_| draw_stars(rng.unit())).collect();
        let mut rng = Prng::new(seed, Stream::Since);
        let user_since = (0..sizes.users)
            .map(|_| rng.range_i64(USER_SINCE_START, USER_SINCE_END))
            .collect();
        let mut world = World {
            seed,
            sizes,
            invalid_rate: opts.invalid_rate,
            business_popularity,
            user_popularity,
            business_typical_stars,
            business_tally: vec![Tally::default(); sizes.businesses],
            user_tally: vec![Tally::default(); sizes.users],
            user_since,
            text: TextGenerator::new(),
        };
        world.tally_reviews();
        world
    }

    /// First pass over the assignments, so businesses and users, written before the reviews,
    /// can carry counts and averages that match them.
    fn tally_reviews(&mut self) {
        let mut rng = Prng::new(self.seed, Stream::Assignment);
        for _ in 0..self.sizes.reviews {
            let a = self.assign(&mut rng);
            self.business_tally[a.business].add(a.stars);
            self.user_tally[a.user].add(a.stars);
        }
    }

    fn assign(&self, rng: &mut Prng) -> Assignment {
        let business = self.business_popularity.sample(rng);
        let user = self.user_popularity.sample(rng);
        // A mixture of the business's typical rating and the global distribution: the overall
        // distribution stays the global one (typical ratings are drawn from it), yet businesses differ.
        let stars = if rng.chance(0.35) {
            self.business_typical_stars[business]
        } else {
            draw_stars(rng.unit())
        };
        Assignment { business, user, stars }
    }

    pub(super) fn write(&self, entity: Entity, out: &mut impl Write) -> io::Result<Counts> {
        match entity {
            Entity::Business => self.write_businesses(out),
            Entity::User => self.write_users(out),
            Entity::Review => self.write_reviews(out),
            Entity::Tip => self.write_tips(out),
            Entity::Checkin => self.write_checkins(out),
        }
    }

    fn business_id(&self, index: usize, out: &mut String) {
        push_id(out, self.seed, Stream::Business, index as u64);
    }

    fn user_id(&self, index: usize, out: &mut String) {
        push_id(out, self.seed, Stream::User, index as u64);
    }

    // -- businesses ---------------------------------------------------------------------------

    fn write_businesses(&self, out: &mut impl Write) -> io::Result<Counts> {
        let mut rng = Prng::new(self.seed, Stream::Business);
        for index in 0..self.sizes.businesses {
            write_line(out, &self.business(index, &mut rng))?;
        }
        Ok(Counts {
            lines: self.sizes.businesses as u64,
            invalid: 0,
        })
    }

    fn business(&self, index: usize, rng: &mut Prng) -> Business {
        let profile = rng.weighted(&PROFILES, |p| p.weight);
        let city = rng.weighted(&CITIES, |c| c.weight);
        let tally = self.business_tally[index];
        let stars = tally.mean().map_or(f64::from(self.business_typical_stars[index]), |m| {
            (m * 2.0).round() / 2.0
        });
        let mut business_id = String::with_capacity(22);
        self.business_id(index, &mut business_id);
        Business {
            business_id,
            name: business_name(rng, profile),
            address: address(rng),
            city: city.name.to_string(),
            state: city.state.to_string(),
            postal_code: postal_code(rng, city),
            latitude: Some(jitter_coordinate(rng, city.latitude)),
            longitude: Some(jitter_coordinate(rng, city.longitude)),
            stars,
            review_count: i64::from(tally.count),
            is_open: i64::from(rng.chance(0.8)),
            attributes: (!rng.chance(0.10)).then(|| attributes(rng, profile)),
            categories: (!rng.chance(0.01)).then(|| categories(rng, profile)),
            hours: (!rng.chance(0.15)).then(|| hours(rng)),
        }
    }

    // -- users --------------------------------------------------------------------------------

    fn write_users(&self, out: &mut impl Write) -> io::Result<Counts> {
        let mut rng = Prng::new(self.seed, Stream::User);
        for index in 0..self.sizes.users {
            write_line(out, &self.user(index, &mut rng))?;
        }
        Ok(Counts {
            lines: self.sizes.users as u64,
            invalid: 0,
        })
    }

    fn user(&self, index: usize, rng: &mut Prng) -> User {
        let tally = self.user_tally[index];
        let reviews = i64::from(tally.count);
        let since = self.user_since[index];
        let mut user_id = String::with_capacity(22);
        self.user_id(index, &mut user_id);
        let mut yelping_since = String::with_capacity(19);
        push_datetime(&mut yelping_since, since);
        let mut elite = String::new();
        push_elite(&mut elite, rng, year_of(since), tally.count);
        let (friends, friend_count) = self.friends(index, rng);
        let fans = scaled(rng, friend_count as f64 * 0.4, 2) + if elite.is_empty() { 0 } else { rng.range_i64(3, 60) };
        let average_stars = tally.mean().unwrap_or_else(|| 1.0 + rng.below(401) as f64 / 100.0);
        let fame = (fans + reviews) as f64; // compliments follow visibility
        User {
            user_id,
            name: rng.pick(&FIRST_NAMES).to_string(),
            review_count: reviews,
            yelping_since,
            useful: scaled(rng, reviews as f64 * 6.0, 3),
            funny: scaled(rng, reviews as f64 * 2.0, 3),
            cool: scaled(rng, reviews as f64 * 3.0, 3),
            elite,
            friends,
            fans,
            average_stars: (average_stars * 100.0).round() / 100.0,
            compliment_hot: scaled(rng, fame * 0.8, 3),
            compliment_more: scaled(rng, fame * 0.2, 3),
            compliment_profile: scaled(rng, fame * 0.15, 3),
            compliment_cute: scaled(rng, fame * 0.15, 3),
            compliment_list: scaled(rng, fame * 0.05, 3),
            compliment_note: scaled(rng, fame * 0.8, 3),
            compliment_plain: scaled(rng, fame * 1.5, 3),
            compliment_cool: scaled(rng, fame * 1.2, 3),
            compliment_funny: scaled(rng, fame * 1.2, 3),
            compliment_writer: scaled(rng, fame * 0.6, 3),
            compliment_photos: scaled(rng, fame * 0.4, 3),
        }
    }

    /// `", "`-separated ids of other existing users, or the dataset's literal `"None"`.
    fn friends(&self, index: usize, rng: &mut Prng) -> (String, usize) {
        if rng.chance(0.45) {
            return ("None".to_string(), 0);
        }
        let wanted = (1 + scaled(rng, 60.0, 3) as usize).min(self.sizes.users - 1);
        let mut chosen: Vec<usize> = Vec::with_capacity(wanted);
        // Popular users are befriended more; a bounded number of tries keeps tiny worlds finite.
        for _ in 0..wanted * 4 {
            if chosen.len() == wanted {
                break;
            }
            let friend = self.user_popularity.sample(rng);
            if friend != index && !chosen.contains(&friend) {
                chosen.push(friend);
            }
        }
        let mut friends = String::with_capacity(chosen.len() * 24);
        for (i, &friend) in chosen.iter().enumerate() {
            if i > 0 {
                friends.push_str(", ");
            }
            self.user_id(friend, &mut friends);
        }
        if chosen.is_empty() {
            friends.push_str("None");
        }
        (friends, chosen.len())
    }

    // -- reviews ------------------------------------------------------------------------------

    fn write_reviews(&self, out: &mut impl Write) -> io::Result<Counts> {
        let mut assignments = Prng::new(self.seed, Stream::Assignment);
        let mut rng = Prng::new(self.seed, Stream::Review);
        let mut invalid = InvalidSchedule::new(self.invalid_rate, &REVIEW_INVALID_KINDS);
        // One record reused for every line: its strings keep their capacity, so the hot loop
        // does not allocate.
        let mut review = Review {
            review_id: String::with_capacity(22),
            user_id: String::with_capacity(22),
            business_id: String::with_capacity(22),
            stars: 0.0,
            useful: 0,
            funny: 0,
            cool: 0,
            text: String::with_capacity(2048),
            date: String::with_capacity(19),
        };
        let mut scratch = Vec::with_capacity(4096);
        for index in 0..self.sizes.reviews {
            let a = self.assign(&mut assignments);
            self.fill_review(index, &a, &mut rng, &mut review);
            match invalid.for_next_line() {
                None => write_line(out, &review)?,
                Some(kind) => write_invalid_review(out, &mut review, kind, &mut scratch)?,
            }
        }
        Ok(Counts {
            lines: self.sizes.reviews,
            invalid: invalid.injected,
        })
    }

    fn fill_review(&self, index: u64, a: &Assignment, rng: &mut Prng, review: &mut Review) {
        review.review_id.clear();
        push_id(&mut review.review_id, self.seed, Stream::Review, index);
        review.user_id.clear();
        self.user_id(a.user, &mut review.user_id);
        review.business_id.clear();
        self.business_id(a.business, &mut review.business_id);
        review.stars = f64::from(a.stars);
        review.useful = scaled(rng, 8.0, 4);
        review.funny = scaled(rng, 4.0, 5);
        review.cool = scaled(rng, 5.0, 5);
        self.text.review(rng, a.stars, &mut review.text);
        review.date.clear();
        push_datetime(&mut review.date, self.activity_time(rng, a.user));
    }

    /// A moment between the user's sign-up and the end of the dataset, skewed towards recent
    /// years as Yelp's activity was.
    fn activity_time(&self, rng: &mut Prng, user: usize) -> i64 {
        let since = self.user_since[user];
        let span = (DATASET_END - since) as f64;
        since + (span * rng.unit().sqrt()) as i64
    }

    // -- tips ---------------------------------------------------------------------------------

    fn write_tips(&self, out: &mut impl Write) -> io::Result<Counts> {
        let mut rng = Prng::new(self.seed, Stream::Tip);
        let mut invalid = InvalidSchedule::new(self.invalid_rate, &TIP_INVALID_KINDS);
        let mut tip = Tip {
            user_id: String::with_capacity(22),
            business_id: String::with_capacity(22),
            text: String::with_capacity(256),
            date: String::with_capacity(19),
            compliment_count: 0,
        };
        let mut scratch = Vec::with_capacity(1024);
        for _ in 0..self.sizes.tips {
            self.fill_tip(&mut rng, &mut tip);
            match invalid.for_next_line() {
                None => write_line(out, &tip)?,
                Some(kind) => write_invalid_tip(out, &mut tip, kind, &mut scratch)?,
            }
        }
        Ok(Counts {
            lines: self.sizes.tips,
            invalid: invalid.injected,
        })
    }

    fn fill_tip(&self, rng: &mut Prng, tip: &mut Tip) {
        let user = self.user_popularity.sample(rng);
        let business = self.business_popularity.sample(rng);
        tip.user_id.clear();
        self.user_id(user, &mut tip.user_id);
        tip.business_id.clear();
        self.business_id(business, &mut tip.business_id);
        let stars = self.business_typical_stars[business];
        self.text.tip(rng, stars, &mut tip.text);
        tip.date.clear();
        push_datetime(&mut tip.date, self.activity_time(rng, user));
        tip.compliment_count = match rng.unit() {
            u if u < 0.975 => 0,
            u if u < 0.997 => 1,
            _ => rng.range_i64(2, 4),
        };
    }

    // -- check-ins ----------------------------------------------------------------------------

    fn write_checkins(&self, out: &mut impl Write) -> io::Result<Counts> {
        let mut rng = Prng::new(self.seed, Stream::Checkin);
        let mut checkin = Checkin {
            business_id: String::with_capacity(22),
            date: String::new(),
        };
        let mut times: Vec<i64> = Vec::new();
        let mut lines = 0;
        for business in 0..self.sizes.businesses {
            // About one business in five never had a check-in and has no line at all.
            if !rng.chance(0.8) {
                continue;
            }
            checkin.business_id.clear();
            self.business_id(business, &mut checkin.business_id);
            let reviews = f64::from(self.business_tally[business].count);
            let count = (1 + scaled(&mut rng, reviews * 2.0 + 4.0, 1)).min(MAX_CHECKINS_PER_BUSINESS);
            times.clear();
            times.extend((0..count).map(|_| rng.range_i64(CHECKIN_START, DATASET_END)));
            times.sort_unstable(); // the official lines are in chronological order
            checkin.date.clear();
            for (i, &t) in times.iter().enumerate() {
                if i > 0 {
                    checkin.date.push_str(", ");
                }
                push_datetime(&mut checkin.date, t);
            }
            write_line(out, &checkin)?;
            lines += 1;
        }
        Ok(Counts { lines, invalid: 0 })
    }
}

/// Caps the longest check-in line (the real maximum is tens of thousands of timestamps; a few
/// thousand show the shape without bloating small datasets).
const MAX_CHECKINS_PER_BUSINESS: i64 = 3000;
