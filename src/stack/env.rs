//! Environment values with `${secret:NAME}` placeholders. `$$` is a literal `$`; any other `$`
//! form is rejected, so a typo never silently reaches a container.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum EnvPart {
    Literal(String),
    Secret(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvValue(pub Vec<EnvPart>);

impl EnvValue {
    /// Parses a value; the error is a reason for the user.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            literal.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                literal.push('$');
                rest = tail;
                continue;
            }
            let Some(body) = after.strip_prefix('{') else {
                return Err(format!(
                    "stray '$' in {text:?}: write $$ for a literal dollar or ${{secret:NAME}} for a generated secret"
                ));
            };
            let Some(end) = body.find('}') else {
                return Err(format!("unclosed '${{' in {text:?}"));
            };
            let inner = &body[..end];
            let Some(name) = inner.strip_prefix("secret:") else {
                return Err(format!(
                    "unknown placeholder ${{{inner}}}: only ${{secret:NAME}} is supported"
                ));
            };
            if !is_secret_name(name) {
                return Err(format!(
                    "secret name {name:?} is invalid: use lowercase letters, digits and '_'"
                ));
            }
            if !literal.is_empty() {
                parts.push(EnvPart::Literal(std::mem::take(&mut literal)));
            }
            parts.push(EnvPart::Secret(name.to_string()));
            rest = &body[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(EnvPart::Literal(literal));
        }
        Ok(Self(parts))
    }

    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            EnvPart::Secret(name) => Some(name.as_str()),
            EnvPart::Literal(_) => None,
        })
    }

    /// The value with every secret replaced by its generated value.
    pub fn resolve(&self, secrets: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                EnvPart::Literal(s) => out.push_str(s),
                EnvPart::Secret(name) => out.push_str(
                    secrets
                        .get(name)
                        .ok_or_else(|| format!("secret {name} was not generated"))?,
                ),
            }
        }
        Ok(out)
    }

    /// The value in docker-compose syntax: secrets as `${NAME}` (from the env file), `$` escaped.
    #[must_use]
    pub fn to_compose(&self) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                EnvPart::Literal(s) => out.push_str(&s.replace('$', "$$")),
                EnvPart::Secret(name) => {
                    out.push_str("${");
                    out.push_str(&compose_variable(name));
                    out.push('}');
                }
            }
        }
        out
    }
}

/// The variable a secret becomes in the compose env file.
#[must_use]
pub fn compose_variable(secret: &str) -> String {
    format!("LAB_SECRET_{}", secret.to_ascii_uppercase())
}

#[must_use]
pub fn is_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_secrets_and_escapes() {
        let v = EnvValue::parse("postgresql://u:${secret:pg_pw}@db/x?a=$$1").unwrap();
        assert_eq!(
            v.0,
            vec![
                EnvPart::Literal("postgresql://u:".into()),
                EnvPart::Secret("pg_pw".into()),
                EnvPart::Literal("@db/x?a=$1".into()),
            ]
        );
        let secrets = BTreeMap::from([("pg_pw".to_string(), "s3cr3t".to_string())]);
        assert_eq!(v.resolve(&secrets).unwrap(), "postgresql://u:s3cr3t@db/x?a=$1");
        assert_eq!(v.to_compose(), "postgresql://u:${LAB_SECRET_PG_PW}@db/x?a=$$1");
        assert!(v.resolve(&BTreeMap::new()).is_err());
    }

    #[test]
    fn rejects_unknown_syntax() {
        for bad in [
            "${env:HOME}",
            "$HOME",
            "${secret:}",
            "${secret:Bad-Name}",
            "${secret:x",
            "a$",
        ] {
            assert!(EnvValue::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
