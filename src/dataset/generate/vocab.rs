//! The vocabulary of businesses, mostly data: cities, business profiles (categories and name
//! nouns), people's names, streets, attributes and opening hours, and the small functions that
//! draw a name, address, postal code, coordinates, categories, attributes or hours from them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::rng::Prng;

pub(super) struct City {
    pub(super) name: &'static str,
    pub(super) state: &'static str,
    pub(super) latitude: f64,
    pub(super) longitude: f64,
    /// First digits of the ZIP codes; empty for Canadian cities.
    zip_prefix: &'static str,
    /// Businesses in the 2022 release, to weight the choice.
    pub(super) weight: u32,
}

pub(super) const CITIES: [City; 12] = [
    City {
        name: "Philadelphia",
        state: "PA",
        latitude: 39.9526,
        longitude: -75.1652,
        zip_prefix: "191",
        weight: 14569,
    },
    City {
        name: "Tucson",
        state: "AZ",
        latitude: 32.2226,
        longitude: -110.9747,
        zip_prefix: "857",
        weight: 9250,
    },
    City {
        name: "Tampa",
        state: "FL",
        latitude: 27.9506,
        longitude: -82.4572,
        zip_prefix: "336",
        weight: 9050,
    },
    City {
        name: "Indianapolis",
        state: "IN",
        latitude: 39.7684,
        longitude: -86.1581,
        zip_prefix: "462",
        weight: 7540,
    },
    City {
        name: "Nashville",
        state: "TN",
        latitude: 36.1627,
        longitude: -86.7816,
        zip_prefix: "372",
        weight: 6971,
    },
    City {
        name: "New Orleans",
        state: "LA",
        latitude: 29.9511,
        longitude: -90.0715,
        zip_prefix: "701",
        weight: 6209,
    },
    City {
        name: "Reno",
        state: "NV",
        latitude: 39.5296,
        longitude: -119.8138,
        zip_prefix: "895",
        weight: 5935,
    },
    City {
        name: "Edmonton",
        state: "AB",
        latitude: 53.5461,
        longitude: -113.4938,
        zip_prefix: "",
        weight: 5054,
    },
    City {
        name: "Saint Louis",
        state: "MO",
        latitude: 38.6270,
        longitude: -90.1994,
        zip_prefix: "631",
        weight: 4827,
    },
    City {
        name: "Santa Barbara",
        state: "CA",
        latitude: 34.4208,
        longitude: -119.6982,
        zip_prefix: "931",
        weight: 3829,
    },
    City {
        name: "Boise",
        state: "ID",
        latitude: 43.6150,
        longitude: -116.2023,
        zip_prefix: "837",
        weight: 2937,
    },
    City {
        name: "Clearwater",
        state: "FL",
        latitude: 27.9659,
        longitude: -82.8001,
        zip_prefix: "337",
        weight: 2221,
    },
];

/// A kind of business: its categories (the first two always listed), name nouns, and whether
/// the restaurant attributes apply.
pub(super) struct Profile {
    categories: &'static [&'static str],
    nouns: &'static [&'static str],
    food: bool,
    pub(super) weight: u32,
}

// "Beer, Wine & Spirits" is one category containing a comma, as in the real data: splitting
// on commas turns it into "Beer" and "Wine & Spirits" there too.
pub(super) const PROFILES: [Profile; 16] = [
    Profile {
        categories: &[
            "Restaurants",
            "Mexican",
            "Tacos",
            "Tex-Mex",
            "Bars",
            "Nightlife",
            "Food Trucks",
        ],
        nouns: &["Taqueria", "Cantina", "Tacos", "Cocina"],
        food: true,
        weight: 10,
    },
    Profile {
        categories: &[
            "Restaurants",
            "Pizza",
            "Italian",
            "Salad",
            "Chicken Wings",
            "Sandwiches",
        ],
        nouns: &["Pizza", "Pizzeria", "Trattoria"],
        food: true,
        weight: 12,
    },
    Profile {
        categories: &[
            "Food",
            "Coffee & Tea",
            "Cafes",
            "Breakfast & Brunch",
            "Bakeries",
            "Restaurants",
        ],
        nouns: &["Coffee", "Cafe", "Roasters", "Espresso Bar"],
        food: true,
        weight: 9,
    },
    Profile {
        categories: &[
            "Nightlife",
            "Bars",
            "American (Traditional)",
            "Restaurants",
            "Sports Bars",
            "Pubs",
            "Cocktail Bars",
            "Beer, Wine & Spirits",
        ],
        nouns: &["Tavern", "Pub", "Taproom", "Lounge"],
        food: true,
        weight: 10,
    },
    Profile {
        categories: &[
            "Restaurants",
            "Chinese",
            "Asian Fusion",
            "Noodles",
            "Dim Sum",
            "Seafood",
        ],
        nouns: &["Garden", "Kitchen", "Noodle House", "Wok"],
        food: true,
        weight: 7,
    },
    Profile {
        categories: &[
            "Restaurants",
            "Burgers",
            "Fast Food",
            "American (New)",
            "Hot Dogs",
            "Sandwiches",
        ],
        nouns: &["Burgers", "Grill", "Diner", "Drive-In"],
        food: true,
        weight: 9,
    },
    Profile {
        categories: &["Restaurants", "Japanese", "Sushi Bars", "Ramen", "Asian Fusion"],
        nouns: &["Sushi", "Ramen", "Izakaya"],
        food: true,
        weight: 5,
    },
    Profile {
        categories: &["Restaurants", "Cajun/Creole", "Seafood", "Southern", "Soul Food"],
        nouns: &["Kitchen", "Po-Boys", "Oyster Bar"],
        food: true,
        weight: 4,
    },
    Profile {
        categories: &["Food", "Ice Cream & Frozen Yogurt", "Desserts", "Bakeries", "Donuts"],
        nouns: &["Creamery", "Sweets", "Bakery"],
        food: true,
        weight: 5,
    },
    Profile {
        categories: &[
            "Beauty & Spas",
            "Hair Salons",
            "Nail Salons",
            "Barbers",
            "Hair Removal",
            "Eyelash Service",
        ],
        nouns: &["Salon", "Hair Studio", "Beauty Bar"],
        food: false,
        weight: 8,
    },
    Profile {
        categories: &[
            "Automotive",
            "Auto Repair",
            "Oil Change Stations",
            "Tires",
            "Car Wash",
            "Body Shops",
        ],
        nouns: &["Auto Care", "Motors", "Tire & Auto"],
        food: false,
        weight: 6,
    },
    Profile {
        categories: &[
            "Health & Medical",
            "Doctors",
            "Dentists",
            "Chiropractors",
            "Acupuncture",
            "Naturopathic/Holistic",
            "Traditional Chinese Medicine",
        ],
        nouns: &["Family Dental", "Wellness Center", "Chiropractic"],
        food: false,
        weight: 6,
    },
    Profile {
        categories: &[
            "Shopping",
            "Food",
            "Grocery",
            "Convenience Stores",
            "Specialty Food",
            "Health Markets",
            "Drugstores",
        ],
        nouns: &["Market", "Grocery", "Food Mart"],
        food: false,
        weight: 7,
    },
    Profile {
        categories: &[
            "Home Services",
            "Contractors",
            "Plumbing",
            "Heating & Air Conditioning/HVAC",
            "Electricians",
            "Handyman",
        ],
        nouns: &["Plumbing", "Home Services", "Heating & Air"],
        food: false,
        weight: 5,
    },
    Profile {
        categories: &[
            "Active Life",
            "Fitness & Instruction",
            "Gyms",
            "Yoga",
            "Trainers",
            "Pilates",
        ],
        nouns: &["Fitness", "Yoga Studio", "Athletic Club"],
        food: false,
        weight: 4,
    },
    Profile {
        categories: &["Pets", "Pet Services", "Pet Groomers", "Veterinarians", "Pet Stores"],
        nouns: &["Pet Care", "Animal Hospital", "Pet Supply"],
        food: false,
        weight: 3,
    },
];

const SURNAMES: [&str; 30] = [
    "Smith",
    "Johnson",
    "Garcia",
    "Nguyen",
    "Rossi",
    "Kim",
    "Patel",
    "Miller",
    "Lopez",
    "Chen",
    "Brown",
    "Davis",
    "Martinez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Moore",
    "Jackson",
    "Lee",
    "Walker",
    "Hernandez",
    "O'Brien",
    "Murphy",
    "Russo",
    "Schmidt",
    "Dubois",
    "Kowalski",
    "Tanaka",
    "Singh",
    "Romano",
];

const ADJECTIVES: [&str; 20] = [
    "Golden",
    "Blue",
    "Little",
    "Happy",
    "Rustic",
    "Urban",
    "Lucky",
    "Silver",
    "Old Town",
    "Green",
    "Red",
    "Sunny",
    "Royal",
    "Hidden",
    "Corner",
    "Main Street",
    "Southern",
    "Coastal",
    "Modern",
    "Copper",
];

pub(super) const FIRST_NAMES: [&str; 40] = [
    "Walker",
    "Jennifer",
    "Michael",
    "Sarah",
    "David",
    "Jessica",
    "Chris",
    "Ashley",
    "John",
    "Emily",
    "Daniel",
    "Amanda",
    "Kevin",
    "Melissa",
    "Brian",
    "Nicole",
    "James",
    "Stephanie",
    "Mark",
    "Lauren",
    "Jason",
    "Elizabeth",
    "Ryan",
    "Rachel",
    "Eric",
    "Megan",
    "Steve",
    "Amy",
    "Matt",
    "Laura",
    "Tony",
    "Linda",
    "Karen",
    "Jose",
    "Maria",
    "Wei",
    "Priya",
    "Ahmed",
    "Olga",
    "Kenji",
];

const STREETS: [&str; 25] = [
    "Main",
    "Chapala",
    "Walnut",
    "Market",
    "Broad",
    "Oak",
    "Maple",
    "Pine",
    "Cedar",
    "Elm",
    "Washington",
    "Lincoln",
    "Jefferson",
    "Franklin",
    "Canal",
    "Magnolia",
    "Bourbon",
    "Speedway",
    "Meridian",
    "Fairview",
    "Sunset",
    "Lake",
    "Park",
    "Church",
    "Mill",
];

const STREET_SUFFIXES: [&str; 8] = ["St", "Ave", "Rd", "Blvd", "Dr", "Ln", "Way", "Pike"];

pub(super) fn business_name(rng: &mut Prng, profile: &Profile) -> String {
    let noun = rng.pick(profile.nouns);
    match rng.below(4) {
        0 => format!("{}'s {noun}", rng.pick(&SURNAMES)),
        1 => format!("The {} {noun}", rng.pick(&ADJECTIVES)),
        2 => format!("{} {noun}", rng.pick(&ADJECTIVES)),
        _ => format!("{} & {} {noun}", rng.pick(&SURNAMES), rng.pick(&SURNAMES)),
    }
}

pub(super) fn address(rng: &mut Prng) -> String {
    // Food trucks and mobile services have no address in the real data.
    if rng.chance(0.03) {
        return String::new();
    }
    let mut address = format!(
        "{} {} {}",
        rng.range_i64(1, 9999),
        rng.pick(&STREETS),
        rng.pick(&STREET_SUFFIXES)
    );
    if rng.chance(0.08) {
        address.push_str(&format!(", Ste {}", rng.range_i64(1, 400)));
    }
    address
}

pub(super) fn postal_code(rng: &mut Prng, city: &City) -> String {
    if city.zip_prefix.is_empty() {
        // Canadian format, "T5J 0N3".
        const LETTERS: &[u8] = b"ABCEGHJKLMNPRSTVXY";
        let letter = |rng: &mut Prng| char::from(*rng.pick(LETTERS));
        return format!(
            "T{}{} {}{}{}",
            rng.below(7),
            letter(rng),
            rng.below(10),
            letter(rng),
            rng.below(10)
        );
    }
    format!("{}{:02}", city.zip_prefix, rng.below(100))
}

/// Within about ±0.08° (a city's extent), rounded to 7 decimals like the real coordinates.
pub(super) fn jitter_coordinate(rng: &mut Prng, centre: f64) -> f64 {
    let value = centre + (rng.unit() - 0.5) * 0.16;
    (value * 1e7).round() / 1e7
}

/// `"Restaurants, Mexican, Bars"`: the profile's two main categories plus up to three more, in
/// random order as in the real data.
pub(super) fn categories(rng: &mut Prng, profile: &Profile) -> String {
    let pool = profile.categories;
    let mut chosen: Vec<&str> = vec![pool[0], pool[1]];
    let extra = rng.below(4) as usize;
    for _ in 0..extra {
        let candidate = *rng.pick(&pool[2..]);
        if !chosen.contains(&candidate) {
            chosen.push(candidate);
        }
    }
    for i in (1..chosen.len()).rev() {
        chosen.swap(i, rng.below(i as u64 + 1) as usize);
    }
    chosen.join(", ")
}

/// How an attribute's value is drawn. Values are strings holding Python literals, the
/// dataset's best-known quirk.
enum AttributeValue {
    /// `"True"` / `"False"`, rarely `"None"`.
    Bool,
    Choice(&'static [&'static str]),
    /// A Python dict literal of booleans, `"{'garage': False, 'street': True, …}"`.
    Dict(&'static [&'static str]),
}

const COMMON_ATTRIBUTES: [(&str, AttributeValue); 6] = [
    ("BusinessAcceptsCreditCards", AttributeValue::Bool),
    (
        "BusinessParking",
        AttributeValue::Dict(&["garage", "street", "validated", "lot", "valet"]),
    ),
    ("WheelchairAccessible", AttributeValue::Bool),
    ("ByAppointmentOnly", AttributeValue::Bool),
    ("BikeParking", AttributeValue::Bool),
    ("DogsAllowed", AttributeValue::Bool),
];

const FOOD_ATTRIBUTES: [(&str, AttributeValue); 16] = [
    (
        "RestaurantsPriceRange2",
        AttributeValue::Choice(&["1", "2", "2", "2", "3", "4", "None"]),
    ),
    (
        "WiFi",
        AttributeValue::Choice(&["u'free'", "'free'", "u'no'", "'no'", "u'paid'", "None"]),
    ),
    (
        "Alcohol",
        AttributeValue::Choice(&[
            "u'full_bar'",
            "'full_bar'",
            "u'beer_and_wine'",
            "'beer_and_wine'",
            "u'none'",
            "'none'",
            "None",
        ]),
    ),
    (
        "NoiseLevel",
        AttributeValue::Choice(&[
            "u'average'",
            "'average'",
            "u'quiet'",
            "'quiet'",
            "u'loud'",
            "u'very_loud'",
        ]),
    ),
    (
        "RestaurantsAttire",
        AttributeValue::Choice(&["u'casual'", "'casual'", "'dressy'", "u'formal'"]),
    ),
    ("RestaurantsTakeOut", AttributeValue::Bool),
    ("RestaurantsDelivery", AttributeValue::Bool),
    ("RestaurantsReservations", AttributeValue::Bool),
    ("OutdoorSeating", AttributeValue::Bool),
    ("GoodForKids", AttributeValue::Bool),
    ("HasTV", AttributeValue::Bool),
    ("Caters", AttributeValue::Bool),
    ("RestaurantsGoodForGroups", AttributeValue::Bool),
    ("HappyHour", AttributeValue::Bool),
    (
        "Ambience",
        AttributeValue::Dict(&[
            "touristy", "hipster", "romantic", "divey", "intimate", "trendy", "upscale", "classy", "casual",
        ]),
    ),
    (
        "GoodForMeal",
        AttributeValue::Dict(&["dessert", "latenight", "lunch", "dinner", "brunch", "breakfast"]),
    ),
];

pub(super) fn attributes(rng: &mut Prng, profile: &Profile) -> BTreeMap<String, Value> {
    let mut attrs = BTreeMap::new();
    let food: &[(&str, AttributeValue)] = if profile.food { &FOOD_ATTRIBUTES } else { &[] };
    for (name, kind) in COMMON_ATTRIBUTES.iter().chain(food) {
        if rng.chance(0.6) {
            attrs.insert((*name).to_string(), Value::String(attribute_value(rng, kind)));
        }
    }
    if attrs.is_empty() {
        attrs.insert(
            "BusinessAcceptsCreditCards".to_string(),
            Value::String("True".to_string()),
        );
    }
    attrs
}

fn attribute_value(rng: &mut Prng, kind: &AttributeValue) -> String {
    let python_bool = |rng: &mut Prng| match rng.below(40) {
        0 => "None",
        n if n < 24 => "True",
        _ => "False",
    };
    match kind {
        AttributeValue::Bool => python_bool(rng).to_string(),
        AttributeValue::Choice(options) => (*rng.pick(options)).to_string(),
        AttributeValue::Dict(keys) => {
            let entries: Vec<String> = keys.iter().map(|k| format!("'{k}': {}", python_bool(rng))).collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

const WEEKDAYS: [(&str, f64); 7] = [
    ("Monday", 0.85),
    ("Tuesday", 0.92),
    ("Wednesday", 0.92),
    ("Thursday", 0.92),
    ("Friday", 0.93),
    ("Saturday", 0.85),
    ("Sunday", 0.65),
];

/// Weekday → `"8:0-18:30"` (hours and minutes unpadded, as in the files). Some businesses
/// list `"0:0-0:0"` for every day, another real quirk.
pub(super) fn hours(rng: &mut Prng) -> BTreeMap<String, String> {
    let all_day = rng.chance(0.05);
    let open_hour: i64 = *rng.pick(&[6, 7, 7, 8, 8, 9, 10, 11, 11, 16, 17]);
    let open_minute: i64 = *rng.pick(&[0, 0, 0, 30, 0, 15]);
    // Evening openers (bars) close around midnight, day businesses in the evening.
    let close_hour = if open_hour >= 16 {
        (open_hour + rng.range_i64(5, 9)) % 24
    } else {
        open_hour + rng.range_i64(6, 12)
    };
    let close_minute: i64 = *rng.pick(&[0, 0, 30, 0, 45]);
    let mut hours = BTreeMap::new();
    for (day, p) in WEEKDAYS {
        if !rng.chance(p) {
            continue;
        }
        let value = if all_day {
            "0:0-0:0".to_string()
        } else {
            format!("{open_hour}:{open_minute}-{close_hour}:{close_minute}")
        };
        hours.insert(day.to_string(), value);
    }
    hours
}
