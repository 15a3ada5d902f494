//! Account contacts (RFC 8555 §7.3): `mailto:` URIs only.

use crate::error::Error;

/// Most contacts per account.
pub const MAX_CONTACTS: usize = 10;

/// Checks a contact list: every entry a single `mailto:` address without
/// header fields.
pub fn validate(contacts: &[String]) -> Result<(), Error> {
    if contacts.len() > MAX_CONTACTS {
        return Err(Error::InvalidContact(format!(
            "at most {MAX_CONTACTS} contacts"
        )));
    }
    for c in contacts {
        let Some(addr) = c.strip_prefix("mailto:") else {
            return Err(Error::UnsupportedContact(format!(
                "contact {c:?} is not a mailto: URI"
            )));
        };
        let valid = addr.len() <= 254
            && !addr.contains(['?', ',', ' ', '<', '>', '%'])
            && addr.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && shared_proto::identifier::is_valid_dns_name(domain)
            });
        if !valid {
            return Err(Error::InvalidContact(format!(
                "{c:?} is not a valid email address"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_rules() {
        assert!(validate(&["mailto:admin@example.org".into()]).is_ok());
        assert!(matches!(
            validate(&["tel:+1555".into()]),
            Err(Error::UnsupportedContact(_))
        ));
        for bad in [
            "mailto:",
            "mailto:no-at",
            "mailto:a@b@c.org",
            "mailto:a@example.org?subject=x",
            "mailto:a@x,b@y.org",
            "mailto:a@localhost",
        ] {
            assert!(
                matches!(validate(&[bad.into()]), Err(Error::InvalidContact(_))),
                "{bad}"
            );
        }
    }
}
