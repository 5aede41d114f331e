//! Records exactly as they appear in the Yelp Open Dataset files (one JSON object per line).
//!
//! Field order follows the official files so that serialising a record reproduces their layout.
//! Identifiers are required; everything else defaults when absent, because the stream transform —
//! not the parser — decides what is valid and sends the rest to the dead-letter topic with a reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Business {
    pub business_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub postal_code: String,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
    #[serde(default)]
    pub stars: f64,
    #[serde(default)]
    pub review_count: i64,
    #[serde(default)]
    pub is_open: i64,
    /// `null`, or attribute name → string; strings may hold Python literals
    /// (`"{'garage': False, 'lot': True}"`, `"u'free'"`, `"None"`).
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, serde_json::Value>>,
    /// Comma-separated (`"Mexican, Burgers, Gastropubs"`) or `null`.
    #[serde(default)]
    pub categories: Option<String>,
    /// `null`, or weekday → `"H:M-H:M"` (`"8:0-18:30"`).
    #[serde(default)]
    pub hours: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub review_id: String,
    pub user_id: String,
    pub business_id: String,
    /// A float in the files (`4.0`).
    pub stars: f64,
    #[serde(default)]
    pub useful: i64,
    #[serde(default)]
    pub funny: i64,
    #[serde(default)]
    pub cool: i64,
    #[serde(default)]
    pub text: String,
    /// `"YYYY-MM-DD HH:MM:SS"`.
    pub date: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub review_count: i64,
    /// `"YYYY-MM-DD HH:MM:SS"`.
    #[serde(default)]
    pub yelping_since: String,
    #[serde(default)]
    pub useful: i64,
    #[serde(default)]
    pub funny: i64,
    #[serde(default)]
    pub cool: i64,
    /// Comma-separated years, may be empty; the 2021 dataset writes 2020 as `"20,20"`.
    #[serde(default)]
    pub elite: String,
    /// Comma-separated user ids, or the literal `"None"`.
    #[serde(default)]
    pub friends: String,
    #[serde(default)]
    pub fans: i64,
    #[serde(default)]
    pub average_stars: f64,
    #[serde(default)]
    pub compliment_hot: i64,
    #[serde(default)]
    pub compliment_more: i64,
    #[serde(default)]
    pub compliment_profile: i64,
    #[serde(default)]
    pub compliment_cute: i64,
    #[serde(default)]
    pub compliment_list: i64,
    #[serde(default)]
    pub compliment_note: i64,
    #[serde(default)]
    pub compliment_plain: i64,
    #[serde(default)]
    pub compliment_cool: i64,
    #[serde(default)]
    pub compliment_funny: i64,
    #[serde(default)]
    pub compliment_writer: i64,
    #[serde(default)]
    pub compliment_photos: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkin {
    pub business_id: String,
    /// One string of comma-separated `"YYYY-MM-DD HH:MM:SS"` timestamps.
    pub date: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tip {
    pub user_id: String,
    pub business_id: String,
    #[serde(default)]
    pub text: String,
    /// `"YYYY-MM-DD HH:MM:SS"`.
    pub date: String,
    #[serde(default)]
    pub compliment_count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines in the shape of the official files (values made up, quirks real).
    const BUSINESS: &str = r#"{"business_id":"Pns2l4eNsfO8kk83dixA6A","name":"Abby Rappoport, LAC, CMQ","address":"1616 Chapala St, Ste 2","city":"Santa Barbara","state":"CA","postal_code":"93101","latitude":34.4266787,"longitude":-119.7111968,"stars":5.0,"review_count":7,"is_open":0,"attributes":{"ByAppointmentOnly":"True","BusinessParking":"{'garage': False, 'street': False, 'validated': False, 'lot': True, 'valet': False}","WiFi":"u'free'","Alcohol":"None"},"categories":"Doctors, Traditional Chinese Medicine, Naturopathic\/Holistic","hours":{"Monday":"0:0-0:0","Tuesday":"8:0-18:30"}}"#;
    const BUSINESS_NULLS: &str = r#"{"business_id":"mpf3x-BjTdTEA3yCZrAYPw","name":"The UPS Store","address":"87 Grasso Plaza Shopping Center","city":"Affton","state":"MO","postal_code":"63123","latitude":38.551126,"longitude":-90.335695,"stars":3.0,"review_count":15,"is_open":1,"attributes":null,"categories":null,"hours":null}"#;
    const USER: &str = r#"{"user_id":"qVc8ODYU5SZjKXVBgXdI7w","name":"Walker","review_count":585,"yelping_since":"2007-01-25 16:47:26","useful":7217,"funny":1259,"cool":5994,"elite":"2007,2019,20,20,2021","friends":"NSCy54eWehBJyZdG2iE84w, pe42u7DcCH2QmI81NX-8qA","fans":267,"average_stars":3.91,"compliment_hot":250,"compliment_more":65,"compliment_profile":55,"compliment_cute":56,"compliment_list":18,"compliment_note":232,"compliment_plain":844,"compliment_cool":467,"compliment_funny":467,"compliment_writer":239,"compliment_photos":180}"#;

    #[test]
    fn parses_business_with_python_literal_attributes() {
        let b: Business = serde_json::from_str(BUSINESS).unwrap();
        assert_eq!(b.city, "Santa Barbara");
        assert_eq!(b.is_open, 0);
        let attrs = b.attributes.unwrap();
        assert_eq!(attrs["WiFi"], "u'free'");
        assert_eq!(
            b.categories.as_deref(),
            Some("Doctors, Traditional Chinese Medicine, Naturopathic/Holistic")
        );
        assert_eq!(b.hours.unwrap()["Tuesday"], "8:0-18:30");
    }

    #[test]
    fn parses_business_with_nulls() {
        let b: Business = serde_json::from_str(BUSINESS_NULLS).unwrap();
        assert!(b.attributes.is_none() && b.categories.is_none() && b.hours.is_none());
    }

    #[test]
    fn parses_user_and_round_trips_field_order() {
        let u: User = serde_json::from_str(USER).unwrap();
        assert_eq!(u.elite, "2007,2019,20,20,2021");
        assert_eq!(serde_json::to_string(&u).unwrap(), USER);
    }

    #[test]
    fn review_requires_ids_and_date() {
        let err = serde_json::from_str::<Review>(
            r#"{"user_id":"u","business_id":"b","stars":4.0,"date":"2018-07-07 22:09:11"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("missing field `review_id`"), "{err}");
        let r: Review = serde_json::from_str(
            r#"{"review_id":"KU_O5udG6zpxOg-VcAEodg","user_id":"mh_-eMZ6K5RLWhZyISBhwA","business_id":"XQfwVwDr-v0ZS3_CbbE5Xw","stars":3.0,"useful":0,"funny":0,"cool":0,"text":"If you decide to eat here...","date":"2018-07-07 22:09:11","extra":1}"#,
        )
        .unwrap();
        assert_eq!(r.stars, 3.0);
    }

    #[test]
    fn checkin_and_tip_parse() {
        let c: Checkin = serde_json::from_str(
            r#"{"business_id":"---kPU91CF4Lq2-WlRu9Lw","date":"2020-03-13 21:10:56, 2020-06-02 22:18:06"}"#,
        )
        .unwrap();
        assert!(c.date.contains(", "));
        let t: Tip = serde_json::from_str(r#"{"user_id":"AGNUgVwnZUey3gcPCJ76iw","business_id":"3uLgwr0qeCNMjKenHJwPGQ","text":"Avengers time with the ladies.","date":"2012-05-18 02:17:21","compliment_count":0}"#).unwrap();
        assert_eq!(t.compliment_count, 0);
    }
}
