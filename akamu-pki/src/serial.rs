//! Certificate serial numbers as text: the one spelling every crate stores,
//! compares and puts on the wire (`serial_hex` in `shared_proto::signer`),
//! lower-case hex of the serial's magnitude without leading zero bytes, two
//! digits per byte (what openssl's `BN_bn2hex` prints, lower-cased).

/// Most bytes a serial's magnitude may have (RFC 5280 §4.1.2.2: at most 20
/// octets).
pub const MAX_BYTES: usize = 20;

/// Why a text is not a serial number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    /// Empty, or a character other than a hex digit or `:`.
    #[error("{0:?} is not a hexadecimal serial")]
    NotHex(String),
    /// All zeros: a serial number is a positive integer.
    #[error("serial {0:?} is zero")]
    Zero(String),
    /// Longer than [`MAX_BYTES`] bytes without its leading zeros.
    #[error("serial {0:?} is longer than {MAX_BYTES} bytes")]
    TooLong(String),
}

/// The canonical spelling of `text`: accepts upper or lower case, `:`
/// separators (`00:AB:CD`), leading zeros and an odd number of digits;
/// returns lower-case hex without leading zero bytes (`"abcd"`, `"0abc"`).
pub fn normalize(text: &str) -> Result<String, SerialError> {
    decode(text).map(hex::encode)
}

/// The magnitude of the serial `text` (any spelling [`normalize`] accepts),
/// big-endian, without leading zero bytes. A DER INTEGER needs a leading
/// `0x00` in front when the top bit of the first byte is set.
pub fn decode(text: &str) -> Result<Vec<u8>, SerialError> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SerialError::NotHex(text.to_owned()));
    }
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Err(SerialError::Zero(text.to_owned()));
    }
    let even = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_owned()
    };
    let bytes = hex::decode(even).map_err(|_| SerialError::NotHex(text.to_owned()))?;
    if bytes.len() > MAX_BYTES {
        return Err(SerialError::TooLong(text.to_owned()));
    }
    Ok(bytes)
}

/// The canonical spelling of a serial given as big-endian bytes (a DER
/// INTEGER's content, or a BIGNUM's): leading zero bytes dropped, lower-case
/// hex. A zero serial (no non-zero byte) gives `"00"`, which [`normalize`]
/// refuses.
pub fn to_hex(bytes: &[u8]) -> String {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    match &bytes[start..] {
        [] => "00".to_owned(),
        magnitude => hex::encode(magnitude),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_normalize_to_one() {
        for (text, want) in [
            ("abcd", "abcd"),
            ("ABCD", "abcd"),
            ("00:AB:cd", "abcd"),
            ("0000abcd", "abcd"),
            ("abc", "0abc"),
            ("0abc", "0abc"),
            ("00:0A:BC", "0abc"),
            ("1", "01"),
            ("7f", "7f"),
            ("80", "80"),
            (&"ab".repeat(20), &"ab".repeat(20)),
        ] {
            assert_eq!(normalize(text).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn non_serials_are_refused() {
        for (text, err) in [
            ("", SerialError::NotHex(String::new())),
            (":", SerialError::NotHex(":".into())),
            ("0x12", SerialError::NotHex("0x12".into())),
            ("zz", SerialError::NotHex("zz".into())),
            ("ab cd", SerialError::NotHex("ab cd".into())),
            ("0", SerialError::Zero("0".into())),
            ("00:00", SerialError::Zero("00:00".into())),
            (&"11".repeat(21), SerialError::TooLong("11".repeat(21))),
        ] {
            assert_eq!(normalize(text), Err(err), "{text}");
        }
        assert!(normalize(&format!("00{}", "ab".repeat(20))).is_ok());
    }

    #[test]
    fn decode_gives_the_magnitude() {
        assert_eq!(decode("01"), Ok(vec![1]));
        assert_eq!(decode("abc"), Ok(vec![0x0a, 0xbc]));
        assert_eq!(decode("0080"), Ok(vec![0x80]));
    }

    #[test]
    fn bytes_print_as_the_normal_form() {
        assert_eq!(to_hex(&[0x00, 0x80, 0x01]), "8001");
        assert_eq!(to_hex(&[0x0a, 0xbc]), "0abc");
        assert_eq!(to_hex(&[0x4f; 16]), "4f".repeat(16));
        assert_eq!(to_hex(&[]), "00");
        assert_eq!(to_hex(&[0, 0]), "00");
        for bytes in [&[0x01][..], &[0x00, 0xff, 0x10], &[0x7f; 20]] {
            let hex = to_hex(bytes);
            assert_eq!(normalize(&hex), Ok(hex.clone()));
            assert_eq!(normalize(&hex.to_uppercase()), Ok(hex));
        }
    }
}
