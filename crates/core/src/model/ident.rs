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

/// A valid plate packed into 8 bytes, for maps with a million plates (the ride-hailing
/// state): no heap allocation per key, and the same order as the plate strings, so that
/// ties broken "by plate" do not change with the representation.
///
/// The province is its rank in code-point order (1–31) in the top 5 bits; each of the up
/// to seven characters after it is 1–36 (`0`–`9`, then `A`–`Z`, their ASCII order) in
/// 6 bits, 0 after the last one. A shorter plate that is a prefix of a longer one is then
/// smaller, as in string order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlateCode(u64);

/// The provinces sorted by code point: a plate's first character orders by its rank here.
fn province_rank(c: char) -> Option<u64> {
    let mut below = 0;
    let mut found = false;
    for p in PROVINCES.chars() {
        if p == c {
            found = true;
        } else if p < c {
            below += 1;
        }
    }
    found.then_some(below + 1)
}

impl PlateCode {
    const SLOTS: u32 = 7;

    /// `None` unless [`is_valid_plate`] accepts it.
    pub fn new(plate: &str) -> Option<PlateCode> {
        is_valid_plate(plate)?;
        let mut chars = plate.chars();
        let mut code = province_rank(chars.next()?)?;
        let mut slots = 0;
        for c in chars {
            let v = match c {
                '0'..='9' => c as u64 - '0' as u64 + 1,
                'A'..='Z' => c as u64 - 'A' as u64 + 11,
                _ => return None,
            };
            code = (code << 6) | v;
            slots += 1;
        }
        Some(PlateCode(code << (6 * (Self::SLOTS - slots))))
    }

    /// The plate again (tests, diagnostics).
    pub fn to_plate(self) -> String {
        let province_rank = (self.0 >> (6 * Self::SLOTS)) as usize;
        let mut sorted: Vec<char> = PROVINCES.chars().collect();
        sorted.sort_unstable();
        let mut out = String::with_capacity(12);
        out.push(sorted[province_rank - 1]);
        for slot in (0..Self::SLOTS).rev() {
            let v = ((self.0 >> (6 * slot)) & 63) as u8;
            match v {
                0 => break,
                1..=10 => out.push(char::from(b'0' + v - 1)),
                _ => out.push(char::from(b'A' + v - 11)),
            }
        }
        out
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
    #[test]
    fn plate_codes_round_trip_and_keep_the_string_order() {
        let plates = [
            "贵F12345",
            "贵FA2B45",
            "贵FD12345",
            "贵FDA1234",
            "贵F12345D",
            "京A00000",
            "琼Z9999F",
            "川B12345",
            "贵A88888",
            "贵C0000A",
            "沪A1234",
            "粤B12345",
        ];
        for p in plates.iter().filter(|p| is_valid_plate(p).is_some()) {
            assert_eq!(PlateCode::new(p).unwrap().to_plate(), *p);
        }
        assert_eq!(PlateCode::new("贵F1234O"), None);
        assert_eq!(PlateCode::new(""), None);
        let valid: Vec<&str> = plates
            .iter()
            .copied()
            .filter(|p| is_valid_plate(p).is_some())
            .collect();
        for a in &valid {
            for b in &valid {
                let (ca, cb) = (PlateCode::new(a).unwrap(), PlateCode::new(b).unwrap());
                assert_eq!(ca.cmp(&cb), a.cmp(b), "{a} vs {b}");
            }
        }
        // Every province ranks as its character orders.
        let mut all: Vec<String> = PROVINCES.chars().map(|c| format!("{c}A12345")).collect();
        all.sort();
        let codes: Vec<PlateCode> = all.iter().map(|p| PlateCode::new(p).unwrap()).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(codes.iter().map(|c| c.to_plate()).collect::<Vec<_>>(), all);
    }
}
