//! Licence plates that pass `is_valid_plate` (DOMAIN.md "Plates"), and the deliberately
//! invalid ones the DLQ must catch.
use std::collections::HashSet;

use super::rng::Rng;
use roadwatch_core::model::{PlateColor, VehicleClass};

/// Plate letters: Latin capitals without I and O.
const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";

/// Provinces of vehicles seen on Guizhou expressways, with rough shares: mostly 贵,
/// then the neighbours (川 渝 云 湘 桂) and the far provinces long-haul traffic brings.
const PROVINCES: &[(char, f64)] = &[
    ('贵', 80.0),
    ('川', 5.0),
    ('渝', 4.0),
    ('云', 3.0),
    ('湘', 2.0),
    ('桂', 2.0),
    ('粤', 1.5),
    ('浙', 0.8),
    ('鄂', 0.7),
    ('苏', 0.5),
    ('京', 0.5),
];

/// City letters of Guizhou plates: F is Bijie, A Guiyang; the rest share the remainder.
const GUIZHOU_CITIES: &[(char, f64)] = &[
    ('F', 60.0),
    ('A', 18.0),
    ('B', 5.0),
    ('C', 5.0),
    ('D', 3.0),
    ('E', 3.0),
    ('G', 2.0),
    ('H', 2.0),
    ('J', 2.0),
];

/// What kind of plate to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlateStyle {
    /// 7 characters, blue (private) or yellow (commercial, large).
    Ordinary,
    /// 8 characters, green: small new-energy car.
    NewEnergySmall,
    /// 8 characters, yellow-green: large new-energy vehicle (bus, truck).
    NewEnergyLarge,
}

/// Makes unique plates: the same plate never goes to two simulated vehicles.
/// Recurring vehicles never share a plate, and no one-off vehicle of a day takes one
/// of theirs or another's of the same day. Across days one-off plates may repeat (a
/// visitor coming back), which keeps the memory of long runs bounded.
#[derive(Debug, Default)]
pub struct PlateFactory {
    used: HashSet<String>,
    today: HashSet<String>,
}

impl PlateFactory {
    /// A fresh plate. `local` forces a Bijie (贵F) plate, as commuters and local
    /// operators have; otherwise the province mix above applies.
    pub fn make(&mut self, rng: &mut Rng, style: PlateStyle, local: bool) -> String {
        loop {
            let plate = random_plate(rng, style, local);
            // Membership only: the set's iteration order never reaches the output.
            if self.used.insert(plate.clone()) {
                return plate;
            }
        }
    }

    /// A plate for a one-off vehicle of the current day.
    pub fn make_one_off(&mut self, rng: &mut Rng, style: PlateStyle) -> String {
        loop {
            let plate = random_plate(rng, style, false);
            if !self.used.contains(&plate) && self.today.insert(plate.clone()) {
                return plate;
            }
        }
    }

    /// Forgets the one-off plates of the day that ended.
    pub fn new_day(&mut self) {
        self.today.clear();
    }
}

fn weighted_char(rng: &mut Rng, table: &[(char, f64)]) -> char {
    let weights: Vec<f64> = table.iter().map(|t| t.1).collect();
    table[rng.weighted(&weights)].0
}

fn random_plate(rng: &mut Rng, style: PlateStyle, local: bool) -> String {
    let province = if local {
        '贵'
    } else {
        weighted_char(rng, PROVINCES)
    };
    let city = if province == '贵' {
        if local {
            'F'
        } else {
            weighted_char(rng, GUIZHOU_CITIES)
        }
    } else {
        char::from(*rng.pick(&LETTERS[..8]))
    };
    let mut s = String::with_capacity(12);
    s.push(province);
    s.push(city);
    match style {
        PlateStyle::Ordinary => {
            // Serial numbers are mostly digits, with at most two letters mixed in.
            let letters = rng.weighted(&[6.0, 3.0, 1.0]);
            let mut chars: Vec<u8> = (0..5).map(|_| *rng.pick(DIGITS)).collect();
            for _ in 0..letters {
                let at = rng.index(5);
                chars[at] = *rng.pick(LETTERS);
            }
            s.extend(chars.into_iter().map(char::from));
        }
        PlateStyle::NewEnergySmall => {
            // D (pure electric) or F (hybrid), then a letter or digit, then 4 digits.
            s.push(if rng.chance(0.8) { 'D' } else { 'F' });
            let second = if rng.chance(0.5) { LETTERS } else { DIGITS };
            s.push(char::from(*rng.pick(second)));
            s.extend((0..4).map(|_| char::from(*rng.pick(DIGITS))));
        }
        PlateStyle::NewEnergyLarge => {
            s.extend((0..5).map(|_| char::from(*rng.pick(DIGITS))));
            s.push(if rng.chance(0.8) { 'D' } else { 'F' });
        }
    }
    s
}

/// A misread of `plate`: one serial character replaced by another that keeps the plate
/// valid (8 ↔ B, 0 ↔ D and the like are what ANPR confuses).
pub fn misread(rng: &mut Rng, plate: &str) -> String {
    let mut chars: Vec<char> = plate.chars().collect();
    // The last character of a large new-energy plate must stay D/F; the first two are
    // province and city. Only digits are swapped, for digits, so every format holds.
    let digit_positions: Vec<usize> = (2..chars.len())
        .filter(|&i| chars[i].is_ascii_digit())
        .collect();
    if digit_positions.is_empty() {
        return plate.to_owned();
    }
    let at = *rng.pick(&digit_positions);
    let confusions: &[(char, char)] = &[
        ('0', '8'),
        ('8', '3'),
        ('1', '7'),
        ('7', '1'),
        ('5', '6'),
        ('6', '5'),
        ('3', '8'),
        ('2', '7'),
        ('4', '1'),
        ('9', '0'),
    ];
    let current = chars[at];
    chars[at] = confusions
        .iter()
        .find(|(from, _)| *from == current)
        .map_or('0', |(_, to)| *to);
    chars.into_iter().collect()
}

/// A plate no format allows, the way broken readers produce them.
pub fn invalid_plate(rng: &mut Rng, plate: &str) -> String {
    let chars: Vec<char> = plate.chars().collect();
    match rng.index(4) {
        // The letter O, which plates never use.
        0 => {
            let mut c = chars.clone();
            let last = c.len() - 1;
            c[last] = 'O';
            c.into_iter().collect()
        }
        // Characters lost (two, so an 8-character plate cannot become a valid 7).
        1 => chars[..chars.len() - 2].iter().collect(),
        // Lower case city letter.
        2 => {
            let mut c = chars.clone();
            c[1] = c[1].to_ascii_lowercase();
            if c[1] == chars[1] {
                c[1] = 'x';
            }
            c.into_iter().collect()
        }
        // The province character unread.
        _ => {
            let mut c = chars.clone();
            c[0] = '?';
            c.into_iter().collect()
        }
    }
}

/// Colour and style of a vehicle's plate, by class (GA 36: small private blue, large
/// and commercial yellow, new-energy green / yellow-green).
pub fn style_for(rng: &mut Rng, class: VehicleClass) -> (PlateStyle, PlateColor) {
    match class {
        VehicleClass::Car | VehicleClass::Van | VehicleClass::Other => {
            if rng.chance(0.15) {
                (PlateStyle::NewEnergySmall, PlateColor::Green)
            } else {
                (PlateStyle::Ordinary, PlateColor::Blue)
            }
        }
        VehicleClass::Bus | VehicleClass::Truck => {
            if rng.chance(0.06) {
                (PlateStyle::NewEnergyLarge, PlateColor::YellowGreen)
            } else {
                (PlateStyle::Ordinary, PlateColor::Yellow)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadwatch_core::model::is_valid_plate;

    #[test]
    fn generated_plates_are_valid_and_unique() {
        let mut rng = Rng::new(3);
        let mut f = PlateFactory::default();
        let mut seen = HashSet::new();
        for i in 0..5000 {
            let style = match i % 3 {
                0 => PlateStyle::Ordinary,
                1 => PlateStyle::NewEnergySmall,
                _ => PlateStyle::NewEnergyLarge,
            };
            let p = f.make(&mut rng, style, i % 7 == 0);
            assert!(is_valid_plate(&p).is_some(), "{p}");
            assert!(seen.insert(p.clone()), "duplicate {p}");
            let m = misread(&mut rng, &p);
            assert!(is_valid_plate(&m).is_some(), "misread {p} -> {m}");
            let bad = invalid_plate(&mut rng, &p);
            assert!(is_valid_plate(&bad).is_none(), "{p} -> {bad}");
        }
    }
}
