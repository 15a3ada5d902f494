//! ACME Renewal Information (RFC 9773): the certificate identifier clients
//! name a certificate by, and the renewal window this CA suggests for it.

use crate::error::Error;

/// Seconds before `notAfter` at which the default window closes (the
/// reference: "End: 24 hours before the certificate expires").
pub const WINDOW_END_BEFORE_EXPIRY_SECS: i64 = 24 * 3600;

/// How far in the past an "renew now" window lies (RFC 9773 §4.2: a window
/// whose end is in the past asks for renewal at once).
const IMMEDIATE_WINDOW_SECS: i64 = 3600;

/// A certificate as RFC 9773 §4.1 names it: the `keyIdentifier` of its
/// Authority Key Identifier and the content octets of its serial number's
/// DER INTEGER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertId {
    /// The AKI `keyIdentifier`, raw.
    pub key_id: Vec<u8>,
    /// The serial's DER INTEGER content (a leading `0x00` when the top bit
    /// of the magnitude is set).
    pub serial: Vec<u8>,
}

impl CertId {
    /// Parses `base64url(keyIdentifier) "." base64url(serial)` (no padding).
    /// Anything else — padding, a missing part, a serial that is not a
    /// minimal positive DER INTEGER, more than 20 octets of magnitude — is
    /// `malformed`.
    pub fn parse(text: &str) -> Result<CertId, Error> {
        let bad = |why: &str| {
            Error::Malformed(format!(
                "{text:?} is not an ARI certificate identifier: {why}"
            ))
        };
        let (aki, serial) = text.split_once('.').ok_or_else(|| bad("no '.'"))?;
        let key_id =
            akamu_jose::b64_decode(aki).map_err(|_| bad("the key identifier is not base64url"))?;
        let serial =
            akamu_jose::b64_decode(serial).map_err(|_| bad("the serial is not base64url"))?;
        if key_id.is_empty() {
            return Err(bad("empty key identifier"));
        }
        match serial.as_slice() {
            [] => return Err(bad("empty serial")),
            [first, ..] if first & 0x80 != 0 => return Err(bad("negative serial")),
            [0, next, ..] if next & 0x80 == 0 => {
                return Err(bad("serial with a superfluous leading zero"));
            }
            [0] => return Err(bad("zero serial")),
            _ => {}
        }
        let magnitude = serial.iter().skip_while(|b| **b == 0).count();
        if magnitude > akamu_pki::serial::MAX_BYTES {
            return Err(bad("serial longer than 20 octets"));
        }
        Ok(CertId { key_id, serial })
    }

    /// The certificate identifier of a certificate with AKI `key_id` and
    /// serial magnitude `serial` (big-endian, as [`akamu_pki::serial::decode`]
    /// gives it).
    pub fn of(key_id: &[u8], serial_magnitude: &[u8]) -> CertId {
        let start = serial_magnitude
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(serial_magnitude.len());
        let magnitude = &serial_magnitude[start..];
        let mut serial = Vec::with_capacity(magnitude.len() + 1);
        if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
            serial.push(0);
        }
        serial.extend_from_slice(magnitude);
        CertId {
            key_id: key_id.to_vec(),
            serial,
        }
    }

    /// The serial in the spelling the store uses ([`akamu_pki::serial`]).
    pub fn serial_hex(&self) -> String {
        akamu_pki::serial::to_hex(&self.serial)
    }

    /// The text form (what [`CertId::parse`] reads).
    pub fn text(&self) -> String {
        format!(
            "{}.{}",
            akamu_jose::b64(&self.key_id),
            akamu_jose::b64(&self.serial)
        )
    }
}

/// A suggested renewal window, Unix seconds, `start < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Renew no earlier than this.
    pub start: i64,
    /// Renew no later than this.
    pub end: i64,
}

/// Why the window is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The certificate's own lifetime.
    Schedule,
    /// The certificate is revoked.
    Revoked,
    /// An operator asked for early renewal (`akamu-cli admin renew-early`).
    MarkedEarly,
}

/// The window this CA suggests at `now` for a certificate valid from
/// `not_before` to `not_after`: renew now (a window just past) when it is
/// revoked or marked for early renewal; otherwise from two thirds of its
/// lifetime to 24 hours before it expires (the reference's rule). A
/// lifetime too short for that (under three days) closes the window half
/// way between its start and the expiry instead.
pub fn suggested_window(not_before: i64, not_after: i64, now: i64, reason: Reason) -> Window {
    match reason {
        Reason::Revoked | Reason::MarkedEarly => Window {
            start: now - 2 * IMMEDIATE_WINDOW_SECS,
            end: now - IMMEDIATE_WINDOW_SECS,
        },
        Reason::Schedule => {
            let lifetime = (not_after - not_before).max(2);
            let start = not_before + lifetime * 2 / 3;
            let end = not_after - WINDOW_END_BEFORE_EXPIRY_SECS;
            let end = if end > start {
                end
            } else {
                start + ((not_after - start) / 2).max(1)
            };
            Window { start, end }
        }
    }
}

/// RFC 9773 §5: a replacement must name a certificate of the same account
/// that shares at least one identifier with the new order. `owner` is the
/// predecessor's account, `shared` whether an identifier is common.
pub fn check_replacement(owner: &str, requester: &str, shared: bool) -> Result<(), Error> {
    super::require_owner(owner, requester, "the certificate named in replaces")?;
    if shared {
        Ok(())
    } else {
        Err(Error::Malformed(
            "the certificate named in replaces shares no identifier with this order".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9773_example_round_trips() {
        // RFC 9773 §4.1's example: keyIdentifier 69:88:5B:6B:87:46:40:41:
        // E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 00:87:65:43:21.
        let text = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
        let id = CertId::parse(text).expect("parses");
        assert_eq!(
            hex::encode(&id.key_id),
            "69885b6b87464041e1b37b847ba0ae2cde01c8d4"
        );
        assert_eq!(id.serial, vec![0x00, 0x87, 0x65, 0x43, 0x21]);
        assert_eq!(id.serial_hex(), "87654321");
        assert_eq!(id.text(), text);
        assert_eq!(CertId::of(&id.key_id, &[0x87, 0x65, 0x43, 0x21]), id);
        assert_eq!(CertId::of(&id.key_id, &[0, 0, 0x12]).serial, vec![0x12]);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            ".",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.",
            ".AIdlQyE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE=",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.h2VDIQ", // negative (top bit set)
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AAEC",   // superfluous zero
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AA",     // zero
            "a+b.AIdlQyE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE.x",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AQEBAQEBAQEBAQEBAQEBAQEBAQEB", // 21 octets
        ] {
            assert!(
                matches!(CertId::parse(bad), Err(Error::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn windows() {
        let day = 86_400;
        // 90 days: the reference's example, day 60 to day 89.
        let w = suggested_window(0, 90 * day, 10, Reason::Schedule);
        assert_eq!(
            w,
            Window {
                start: 60 * day,
                end: 89 * day
            }
        );
        // Two days: starts at 32 h, closes half way to the expiry.
        let w = suggested_window(0, 2 * day, 0, Reason::Schedule);
        assert_eq!(w.start, 32 * 3600);
        assert_eq!(w.end, 40 * 3600);
        assert!(w.start < w.end);
        // Revoked or marked: entirely in the past.
        for r in [Reason::Revoked, Reason::MarkedEarly] {
            let w = suggested_window(0, 90 * day, 5 * day, r);
            assert!(w.start < w.end && w.end < 5 * day, "{r:?}");
        }
    }

    #[test]
    fn replacement_rules() {
        assert!(check_replacement("a", "a", true).is_ok());
        assert!(matches!(
            check_replacement("a", "b", true),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            check_replacement("a", "a", false),
            Err(Error::Malformed(_))
        ));
    }
}
