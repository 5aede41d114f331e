//! What libpq takes in a connection string and tokio-postgres does not: `sslmode=verify-ca` and
//! `verify-full`, `sslrootcert=FILE` and `passfile=FILE` (and the password file itself,
//! `PGPASSFILE` or `~/.pgpass`). They are taken out of the string here, so a URL that works with
//! `psql` works with `lab`, and tokio-postgres parses the rest.

use std::path::{Path, PathBuf};

/// How the server's certificate is checked (libpq's `sslmode`, beyond tokio-postgres's three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// `disable`, `allow`, `prefer` (the default), `require` without a root certificate: TLS
    /// when the mode asks for it, the certificate not checked (libpq does the same).
    Nothing,
    /// `verify-ca`, or `require` with `sslrootcert`: signed by a trusted CA, any host name.
    Chain,
    /// `verify-full`: signed by a trusted CA and issued for the host connected to.
    ChainAndHost,
}

/// A connection string split into what tokio-postgres parses and what `lab` handles itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// The string without `sslrootcert` and `passfile`, `verify-*` modes written as `require`.
    pub for_driver: String,
    pub verify: Verify,
    /// The CA certificates (PEM) to trust instead of the public roots.
    pub root_cert: Option<PathBuf>,
    /// A password file named in the string (else `PGPASSFILE`, else `~/.pgpass`).
    pub passfile: Option<PathBuf>,
}

/// Splits `url` (a `postgresql://` URL or `key=value` pairs). The error says what is wrong.
pub fn split(url: &str) -> Result<ConnInfo, String> {
    let (for_driver, extras) = if url.contains("://") {
        split_url(url)
    } else {
        split_keywords(url)?
    };
    let root_cert = extras.root_cert.map(PathBuf::from);
    let verify = match extras.sslmode.as_deref() {
        Some("verify-full") => Verify::ChainAndHost,
        Some("verify-ca") => Verify::Chain,
        Some("require") if root_cert.is_some() => Verify::Chain,
        Some("disable" | "allow" | "prefer" | "require") | None => Verify::Nothing,
        Some(other) => {
            return Err(format!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ));
        }
    };
    Ok(ConnInfo {
        for_driver,
        verify,
        root_cert,
        passfile: extras.passfile.map(PathBuf::from),
    })
}

#[derive(Default)]
struct Extras {
    sslmode: Option<String>,
    root_cert: Option<String>,
    passfile: Option<String>,
}

impl Extras {
    /// Takes the parameter if it is one of ours; returns what the driver should get instead.
    fn take(&mut self, key: &str, value: String) -> Option<(String, String)> {
        match key {
            "sslrootcert" => self.root_cert = Some(value),
            "passfile" => self.passfile = Some(value),
            "sslmode" => {
                let driver = match value.as_str() {
                    "verify-ca" | "verify-full" => "require".to_string(),
                    "allow" => "prefer".to_string(),
                    other => other.to_string(),
                };
                self.sslmode = Some(value);
                return Some((key.to_string(), driver));
            }
            _ => return Some((key.to_string(), value)),
        }
        None
    }
}

fn split_url(url: &str) -> (String, Extras) {
    let mut extras = Extras::default();
    let Some((main, query)) = url.split_once('?') else {
        return (url.to_string(), extras);
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(raw);
        if let Some((key, driver)) = extras.take(key, value.clone()) {
            // The driver's value unchanged keeps its original encoding.
            kept.push(if driver == value {
                pair.to_string()
            } else {
                format!("{key}={driver}")
            });
        }
    }
    let rebuilt = if kept.is_empty() {
        main.to_string()
    } else {
        format!("{main}?{}", kept.join("&"))
    };
    (rebuilt, extras)
}

fn split_keywords(text: &str) -> Result<(String, Extras), String> {
    let mut extras = Extras::default();
    let mut kept = Vec::new();
    for (key, value) in keyword_pairs(text)? {
        if let Some((key, driver)) = extras.take(&key, value) {
            kept.push(format!("{key}={}", quote(&driver)));
        }
    }
    Ok((kept.join(" "), extras))
}

/// `key = value` pairs as libpq reads them: values single-quoted when they hold spaces, with
/// `\'` and `\\` escapes.
fn keyword_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("{key:?} has no value: write key=value"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("the value of {key} has no closing quote")),
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

fn quote(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '\'', '\\', '\t', '\n']) {
        return value.to_string();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a password-file line is matched against (libpq's defaults filled in by the caller).
#[derive(Debug)]
pub struct PassKey<'a> {
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// The password file to read: the one named in the string, else `PGPASSFILE`, else `~/.pgpass`.
#[must_use]
pub fn passfile_path(named: Option<&Path>) -> Option<PathBuf> {
    named
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("PGPASSFILE").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))
}

/// The first matching password of a libpq password file (`host:port:database:user:password`,
/// `*` matching anything, `\:` and `\\` escaped); `Ok(None)` when no line matches or there is no
/// file. Like libpq, a file others may read is not used: the error says so and how to fix it.
pub fn password_from_file(path: &Path, key: &PassKey<'_>) -> Result<Option<String>, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map(|m| m.permissions().mode()).unwrap_or(0);
        if mode & 0o077 != 0 {
            return Err(format!(
                "password file {} was not used: others may read it (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    let port = key.port.to_string();
    let matches = |field: &str, wanted: &str| field == "*" || field == wanted;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        if let [host, port_f, db, user, password] = pgpass_fields(line).as_slice()
            && matches(host, key.host)
            && matches(port_f, &port)
            && matches(db, key.database)
            && matches(user, key.user)
        {
            return Ok(Some(password.clone()));
        }
    }
    Ok(None)
}

/// One line's five fields; the password is everything after the fourth unescaped colon.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == ':' && fields.len() < 5 {
            fields.push(String::new());
            continue;
        }
        let Some(c) = (if c == '\\' { chars.next() } else { Some(c) }) else {
            break;
        };
        if let Some(field) = fields.last_mut() {
            field.push(c);
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_what_the_driver_cannot_parse_and_keep_the_rest() {
        let info = split("postgresql://u:p%40ss@db.example:5433/yelp?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=lab")
            .unwrap();
        assert_eq!(
            info.for_driver,
            "postgresql://u:p%40ss@db.example:5433/yelp?sslmode=require&application_name=lab"
        );
        assert_eq!(info.verify, Verify::ChainAndHost);
        assert_eq!(info.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        let ca = split("postgres://h/db?sslmode=verify-ca&passfile=/p").unwrap();
        assert_eq!(
            (ca.verify, ca.passfile.as_deref()),
            (Verify::Chain, Some(Path::new("/p")))
        );
        assert_eq!(ca.for_driver, "postgres://h/db?sslmode=require");
        assert_eq!(split("postgres://h/db").unwrap().verify, Verify::Nothing);
        // libpq: `require` with a root certificate checks the chain.
        assert_eq!(
            split("postgres://h/db?sslmode=require&sslrootcert=/ca").unwrap().verify,
            Verify::Chain
        );
        assert!(
            split("postgres://h/db?sslmode=sometimes")
                .unwrap_err()
                .contains("sslmode=sometimes")
        );
    }

    #[test]
    fn keyword_strings_are_read_as_libpq_reads_them() {
        let info =
            split("host=127.0.0.1 port = 5432 user=lab password='it''s' sslmode=verify-full sslrootcert='/a b/ca.pem'");
        // A doubled quote is not libpq's escape: the value ends at the second quote, and the
        // rest is a key without a value.
        assert!(info.is_err(), "{info:?}");
        let info = split(r"host=127.0.0.1 port = 5432 user=lab password='it\'s a secret' sslmode=verify-full sslrootcert='/a b/ca.pem'")
            .unwrap();
        assert_eq!(
            info.for_driver,
            r"host=127.0.0.1 port=5432 user=lab password='it\'s a secret' sslmode=require"
        );
        assert_eq!(info.root_cert.as_deref(), Some(Path::new("/a b/ca.pem")));
        assert_eq!(info.verify, Verify::ChainAndHost);
        assert!(split("host=x user").unwrap_err().contains("\"user\" has no value"));
        assert!(split("password='open").unwrap_err().contains("no closing quote"));
        // The driver reads what is kept.
        let config: tokio_postgres::Config = info.for_driver.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"it's a secret"[..]));
    }

    #[test]
    fn password_files_match_like_libpqs_and_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(
            &path,
            "# comment\nother:5432:*:*:wrong\n127.0.0.1:5432:yelp:lab:first\n*:*:*:lab:p\\:w\\\\d:tail\n",
        )
        .unwrap();
        let key = |host, database| PassKey {
            host,
            port: 5432,
            database,
            user: "lab",
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let refused = password_from_file(&path, &key("127.0.0.1", "yelp")).unwrap_err();
            assert!(refused.contains("chmod 600"), "{refused}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let found = |key: PassKey<'_>| password_from_file(&path, &key).unwrap();
        assert_eq!(found(key("127.0.0.1", "yelp")).as_deref(), Some("first"));
        assert_eq!(
            found(key("db.example", "other")).as_deref(),
            Some("p:w\\d:tail"),
            "escapes, and colons after the fourth belong to the password"
        );
        assert_eq!(
            found(PassKey {
                user: "nobody",
                ..key("127.0.0.1", "yelp")
            }),
            None
        );
        assert_eq!(password_from_file(&dir.path().join("none"), &key("h", "d")), Ok(None));
    }
}
