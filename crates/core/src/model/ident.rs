//! Identifier and licence-plate syntax (CONTRACT.md section 1, DOMAIN.md "Plates").

/// 1–64 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// The provincial prefixes of mainland civilian plates (GA 36).
const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlateKind {
    /// Province + letter + 5 of `[A-HJ-NP-Z0-9]`: 7 characters.
    Ordinary,
    /// 8 characters: small new-energy (letter + letter/digit + 4 digits after the prefix).
    NewEnergySmall,
    /// 8 characters: large new-energy (5 digits + `D`/`F` after the prefix).
    NewEnergyLarge,
}

/// Letters used on plates: the Latin alphabet without I and O, which read as 1 and 0.
fn is_plate_letter(c: char) -> bool {
    c.is_ascii_uppercase() && c != 'I' && c != 'O'
}

fn is_plate_alnum(c: char) -> bool {
    is_plate_letter(c) || c.is_ascii_digit()
}

/// Classifies a plate; `None` when it fits neither format (it then goes to the DLQ).
pub fn is_valid_plate(plate: &str) -> Option<PlateKind> {
    // Plates are at most 8 characters: a fixed buffer, not a Vec, since every plate read
    // passes here.
    let mut buf = ['\0'; 8];
    let mut len = 0;
    for c in plate.chars() {
        if len == buf.len() {
            return None;
        }
        buf[len] = c;
        len += 1;
    }
    let chars = &buf[..len];
    if chars.len() < 7 || !PROVINCES.contains(chars[0]) || !is_plate_letter(chars[1]) {
        return None;
    }
    let rest = &chars[2..];
    match rest.len() {
        5 if rest.iter().all(|&c| is_plate_alnum(c)) => Some(PlateKind::Ordinary),
        6 if is_plate_letter(rest[0])
            && is_plate_alnum(rest[1])
            && rest[2..].iter().all(|c| c.is_ascii_digit()) =>
        {
            Some(PlateKind::NewEnergySmall)
        }
        6 if rest[..5].iter().all(|c| c.is_ascii_digit()) && matches!(rest[5], 'D' | 'F') => {
            Some(PlateKind::NewEnergyLarge)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_valid_identifier("cam-G76-0042"));
        assert!(is_valid_identifier("a"));
        assert!(is_valid_identifier(&"x".repeat(64)));
        assert!(!is_valid_identifier(""));
        assert!(!is_valid_identifier(&"x".repeat(65)));
        assert!(!is_valid_identifier("cam 1"));
        assert!(!is_valid_identifier("cam/1"));
        assert!(!is_valid_identifier("摄像头1"));
    }

    #[test]
    fn plates() {
        assert_eq!(is_valid_plate("贵F12345"), Some(PlateKind::Ordinary));
        assert_eq!(is_valid_plate("贵FA2B45"), Some(PlateKind::Ordinary));
        assert_eq!(is_valid_plate("贵FD12345"), Some(PlateKind::NewEnergySmall));
        assert_eq!(is_valid_plate("贵FDA1234"), Some(PlateKind::NewEnergySmall));
        assert_eq!(is_valid_plate("贵F12345D"), Some(PlateKind::NewEnergyLarge));
        // I and O are never used; a lower-case letter is a misread.
        assert_eq!(is_valid_plate("贵F1234O"), None);
        assert_eq!(is_valid_plate("贵I12345"), None);
        assert_eq!(is_valid_plate("贵f12345"), None);
        // Wrong lengths, unknown province, suffix plates.
        assert_eq!(is_valid_plate("贵F1234"), None);
        assert_eq!(is_valid_plate("贵F1234567"), None);
        assert_eq!(is_valid_plate("X F12345"), None);
        assert_eq!(is_valid_plate("贵F1234学"), None);
        assert_eq!(is_valid_plate("贵F12345X"), None);
        assert_eq!(is_valid_plate(""), None);
    }
}
