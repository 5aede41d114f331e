//! Image references (`[registry[:port]/]path[:tag][@sha256:digest]`), checked the way the Docker
//! reference grammar does, and required to be pinned: no implicit or explicit `latest`.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    /// Everything before the tag: `apache/kafka`, `registry:5000/team/img`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and checks a reference; the error is a reason for the user.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > 255 {
            return Err("it must have 1 to 255 characters".into());
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or("the digest must start with sha256:")?;
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
                    return Err("a sha256 digest has 64 lowercase hex digits".into());
                }
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[last_slash..].find(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        let mut components: Vec<&str> = repository.split('/').collect();
        if components.len() > 1 && looks_like_registry(components[0]) {
            components.remove(0);
        }
        for c in &components {
            if !valid_path_component(c) {
                return Err(format!(
                    "path component {c:?} must be lowercase letters and digits, separated by '.', '_', '__' or '-'"
                ));
            }
        }
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(format!(
                "tag {tag:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
            ));
        }
        if digest.is_none() && matches!(tag, None | Some("latest")) {
            return Err("pin a version tag (e.g. postgres:16.4): `latest` changes under you".into());
        }
        Ok(Self {
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn looks_like_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

fn valid_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or a run of "-", always between alphanumerics.
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.chars().all(|ch| ch == '-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_pinned_references() {
        for ok in [
            "postgres:16.4",
            "apache/kafka:3.9.1",
            "lab-test/busybox:1",
            "registry.example.com:5000/team/app_x:v1.2-rc",
            "localhost/img:1",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let parsed = ImageRef::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(parsed.to_string(), ok);
        }
        let r = ImageRef::parse("registry:5000/team/app:2").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_deref()),
            ("registry:5000/team/app", Some("2"))
        );
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Postgres:16",
            "postgres",
            "postgres:latest",
            "apache//kafka:1",
            "apache/kafka:",
            "apache/kafka:-x",
            "bad image:1",
            "img:1@sha256:abc",
            "img:1@md5:0123456789abcdef0123456789abcdef",
            "a-/b:1",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
