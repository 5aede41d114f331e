//! PostgreSQL: connecting, the serving schema, and Arrow results as COPY text.

pub mod conninfo;
pub mod copy_text;
pub mod throwaway;
mod tls;

use std::future::Future;
use std::pin::Pin;

use tokio_postgres::Client;
use tokio_postgres::config::Host;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "PostgreSQL: cannot connect to {target}: {}\nis the server running? pass --pg URL or set LAB_PG_URL (e.g. host=127.0.0.1 port=5432 user=postgres dbname=yelp)",
        cause_text(.cause)
    )]
    Connect {
        target: String,
        // Not `#[source]`: the message already says it, and error chains would repeat it.
        cause: tokio_postgres::Error,
    },
    /// The connection string, its certificate or its password file cannot be used.
    #[error("PostgreSQL: {target}: {reason}")]
    Settings { target: String, reason: String },
    #[error("PostgreSQL: {action} failed: {}", cause_text(.cause))]
    Query {
        action: String,
        cause: tokio_postgres::Error,
    },
    #[error("PostgreSQL: {0}")]
    Other(String),
}

impl PgError {
    /// What went wrong without the advice around it (for a probe's one-line status).
    #[must_use]
    pub fn detail(&self) -> String {
        match self {
            PgError::Connect { cause, .. } | PgError::Query { cause, .. } => cause_text(cause),
            PgError::Settings { reason, .. } => reason.clone(),
            PgError::Other(text) => text.clone(),
        }
    }

    pub fn query(action: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> PgError {
        let action = action.into();
        move |cause| PgError::Query { action, cause }
    }
}

/// The server's own words (`ERROR: permission denied …`, with its hint) when it sent any, else
/// the client's with its causes (`error connecting to server: Connection refused (os error 111)`).
fn cause_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.hint() {
            Some(hint) => format!("{}: {} (hint: {hint})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => {
            // The client's message, then each cause it does not already spell out.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                let said = cause.to_string();
                if !text.contains(&said) {
                    text.push_str(": ");
                    text.push_str(&said);
                }
                source = cause.source();
            }
            text
        }
    }
}

/// The serving schema DDL (also readable at `sql/postgres/schema.sql`).
pub const SCHEMA_SQL: &str = include_str!("../../sql/postgres/schema.sql");

/// Connects and drives the connection on a background task.
pub async fn connect(url: &str) -> Result<Client, PgError> {
    let (client, connection) = open(url).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection closed");
        }
    });
    Ok(client)
}

/// The task that drives a connection: whoever opens one spawns it (and may abort it).
pub type Connection = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send>>;

/// Opens a connection as libpq would from the same string: TLS as its `sslmode` says (the lab's
/// own databases listen on loopback without it; a managed one usually requires it), the server's
/// certificate checked against `sslrootcert` (else the public roots) for `verify-ca` and
/// `verify-full`, and a password from the password file when the string has none.
pub async fn open(url: &str) -> Result<(Client, Connection), PgError> {
    let settings = |reason: String| PgError::Settings {
        target: redact(url),
        reason,
    };
    let info = conninfo::split(url).map_err(settings)?;
    let mut config: tokio_postgres::Config = info.for_driver.parse().map_err(|cause| PgError::Connect {
        target: redact(url),
        cause,
    })?;
    if config.get_password().is_none()
        && let Some(path) = conninfo::passfile_path(info.passfile.as_deref())
        && let Some(key) = pass_key(&config)
    {
        match conninfo::password_from_file(&path, &key) {
            Ok(Some(password)) => {
                config.password(password);
            }
            Ok(None) => {}
            // A password file nobody asked for by name is only a warning, as in libpq.
            Err(reason) if info.passfile.is_none() => tracing::warn!(%reason, "password file not used"),
            Err(reason) => return Err(settings(reason)),
        }
    }
    let tls = tls::MakeRustls::new(&info).map_err(settings)?;
    let (client, connection) = config.connect(tls).await.map_err(|cause| PgError::Connect {
        target: redact(url),
        cause,
    })?;
    Ok((client, Box::pin(connection)))
}

/// What a password-file line is matched against, with libpq's defaults: `localhost` for a
/// socket, port 5432, the database named like the user. None without a user.
fn pass_key(config: &tokio_postgres::Config) -> Option<conninfo::PassKey<'_>> {
    let user = config.get_user()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.as_str(),
        _ => "localhost",
    };
    Some(conninfo::PassKey {
        host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        database: config.get_dbname().unwrap_or(user),
        user,
    })
}

/// Creates the `yelp` schema and tables if missing.
pub async fn ensure_schema(client: &Client) -> Result<(), PgError> {
    client
        .batch_execute(SCHEMA_SQL)
        .await
        .map_err(PgError::query("create the serving schema"))
}

/// A connection string with any password replaced, for messages and logs. Both forms libpq
/// takes: a URL (`postgresql://user:secret@host/db`, also `?password=secret`) and keyword/value
/// pairs (`password=secret`, `password = 'with spaces'`).
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_keywords(url);
    };
    let (main, query) = match rest.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (rest, None),
    };
    // The user info ends at the LAST '@': an unencoded '@' in a password must not cut it short.
    let main = match main.rsplit_once('@') {
        Some((creds, host)) => match creds.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{creds}@{host}"),
        },
        None => main.to_string(),
    };
    match query {
        None => format!("{scheme}://{main}"),
        Some(query) => {
            let params: Vec<&str> = query
                .split('&')
                .map(|kv| {
                    if kv.starts_with("password=") {
                        "password=***"
                    } else {
                        kv
                    }
                })
                .collect();
            format!("{scheme}://{main}?{}", params.join("&"))
        }
    }
}

/// `key=value` pairs as libpq reads them: spaces allowed around `=`, a value single-quoted (with
/// `\'` and `\\` escapes) may hold spaces. Every `password` value becomes `***`.
fn redact_keywords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let take_spaces = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, into: &mut String| {
        while let Some(c) = chars.next_if(|c| c.is_whitespace()) {
            into.push(c);
        }
    };
    loop {
        take_spaces(&mut chars, &mut out);
        if chars.peek().is_none() {
            return out;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        out.push_str(&key);
        let mut between = String::new();
        take_spaces(&mut chars, &mut between);
        if chars.next_if_eq(&'=').is_none() {
            out.push_str(&between);
            continue;
        }
        between.push('=');
        take_spaces(&mut chars, &mut between);
        out.push_str(&between);
        let mut value = String::new();
        if let Some(quote) = chars.next_if_eq(&'\'') {
            value.push(quote);
            while let Some(c) = chars.next() {
                value.push(c);
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    _ => {}
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        out.push_str(if key == "password" { "***" } else { &value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgresql://lab:s3cret@127.0.0.1:5432/yelp"),
            "postgresql://lab:***@127.0.0.1:5432/yelp"
        );
        assert_eq!(
            redact("host=127.0.0.1 user=lab password=s3cret dbname=yelp"),
            "host=127.0.0.1 user=lab password=*** dbname=yelp"
        );
        assert_eq!(redact("host=127.0.0.1 user=postgres"), "host=127.0.0.1 user=postgres");
    }

    #[test]
    fn awkward_passwords_are_redacted_whole() {
        for (url, shown) in [
            // An unencoded '@' in the password.
            (
                "postgresql://lab:p@ss@db:5432/yelp",
                "postgresql://lab:***@db:5432/yelp",
            ),
            (
                "postgres://lab:secret@db/yelp?sslmode=disable&password=other",
                "postgres://lab:***@db/yelp?sslmode=disable&password=***",
            ),
            (
                "postgresql://db/yelp?password=only-here",
                "postgresql://db/yelp?password=***",
            ),
            ("postgresql://lab@db/yelp", "postgresql://lab@db/yelp"),
            // Quoted, with spaces and escapes; spaces around '='.
            (
                "host=db password='my secret \\' pass' dbname=yelp",
                "host=db password=*** dbname=yelp",
            ),
            ("host=db password = hunter2 user=lab", "host=db password = *** user=lab"),
            ("password=", "password=***"),
        ] {
            let redacted = redact(url);
            assert_eq!(redacted, shown, "{url}");
            for secret in ["p@ss", "secret", "other", "only-here", "my secret", "hunter2"] {
                if url.contains(secret) && !shown.contains(secret) {
                    assert!(!redacted.contains(secret), "{secret} leaked from {url}: {redacted}");
                }
            }
        }
    }
}
