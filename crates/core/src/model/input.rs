//! Validated input records (CONTRACT.md section 2). Every value here already passed the
//! checks of section 6, so detectors never re-validate.
use super::time::EventTime;

/// The six input streams; also the `stream` field of replay lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Camera,
    Plate,
    Weather,
    Patrol,
    Ack,
    /// `operator-actions`: the command center acts on alerts.
    Operator,
}

impl Stream {
    pub const ALL: [Stream; 6] = [
        Stream::Camera,
        Stream::Plate,
        Stream::Weather,
        Stream::Patrol,
        Stream::Ack,
        Stream::Operator,
    ];

    /// The replay `stream` name and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Camera => "camera",
            Stream::Plate => "plate",
            Stream::Weather => "weather",
            Stream::Patrol => "patrol",
            Stream::Ack => "ack",
            Stream::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Camera(CameraEvent),
    Plate(PlateRead),
    Weather(WeatherObservation),
    Patrol(PatrolPosition),
    Ack(DispatchAck),
    Operator(OperatorAction),
}

impl Record {
    pub fn ts(&self) -> EventTime {
        match self {
            Record::Camera(r) => r.ts,
            Record::Plate(r) => r.ts,
            Record::Weather(r) => r.ts,
            Record::Patrol(r) => r.ts,
            Record::Ack(r) => r.ts,
            Record::Operator(r) => r.ts,
        }
    }

    pub fn stream(&self) -> Stream {
        match self {
            Record::Camera(_) => Stream::Camera,
            Record::Plate(_) => Stream::Plate,
            Record::Weather(_) => Stream::Weather,
            Record::Patrol(_) => Stream::Patrol,
            Record::Ack(_) => Stream::Ack,
            Record::Operator(_) => Stream::Operator,
        }
    }
}

/// Defines a closed set of wire names for an enum, so decoding and encoding share one table.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        /// For reading documents back (the simulator's patrol apps read alerts); the
        /// record decoders check wire names themselves, with their own reasons.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} {s:?}", stringify!($name)))
                })
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// Camera object classes. Classes outside this list are counted and ignored.
    DetectionClass {
        Pedestrian => "pedestrian",
        Bicycle => "bicycle",
        Tricycle => "tricycle",
        Vehicle => "vehicle",
        Animal => "animal",
        Other => "other",
    }
);

wire_enum!(PlateColor {
    Blue => "blue",
    Yellow => "yellow",
    Green => "green",
    YellowGreen => "yellow_green",
    White => "white",
    Black => "black",
});

wire_enum!(VehicleClass {
    Car => "car",
    Van => "van",
    Bus => "bus",
    Truck => "truck",
    Other => "other",
});

wire_enum!(RoadSurfaceState {
    Dry => "dry",
    Damp => "damp",
    Wet => "wet",
    Snow => "snow",
    Ice => "ice",
});

wire_enum!(UnitStatus {
    Available => "available",
    Busy => "busy",
    OffDuty => "off_duty",
});

wire_enum!(AckStatus {
    Accepted => "accepted",
    Declined => "declined",
    Arrived => "arrived",
    Resolved => "resolved",
});

wire_enum!(
    /// What a unit or an operator found: the `outcome` of a `resolved` ack or a `close`
    /// action. An alert that ends without one carries `unknown` ([`Outcome::Unknown`]),
    /// which no input may send.
    Outcome {
        Confirmed => "confirmed",
        FalseAlarm => "false_alarm",
        NotFound => "not_found",
        Duplicate => "duplicate",
        Unknown => "unknown",
    }
);

impl Outcome {
    /// What a unit or an operator may report (`unknown` is the absence of a report).
    pub fn parse_reported(s: &str) -> Option<Outcome> {
        Outcome::parse(s).filter(|o| *o != Outcome::Unknown)
    }
}

wire_enum!(ActionKind {
    Acknowledge => "acknowledge",
    Assign => "assign",
    Close => "close",
    Note => "note",
});

#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub class: DetectionClass,
    pub confidence: f64,
    pub lon: f64,
    pub lat: f64,
    /// The camera's track, as text (`17` and `"17"` are the same track). Always `None` for
    /// `vehicle`: no detector follows vehicle tracks, and keeping them cost an allocation
    /// for most detections.
    pub track_id: Option<String>,
}

/// `camera-detections`.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraEvent {
    pub event_id: String,
    pub camera_id: String,
    pub ts: EventTime,
    /// Detections of known classes, in input order; classes the contract does not list
    /// are ignored (a newer camera firmware may send more).
    pub detections: Vec<Detection>,
}

/// `plate-reads`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateRead {
    pub event_id: String,
    pub reader_id: String,
    pub ts: EventTime,
    pub plate: String,
    pub plate_color: PlateColor,
    pub vehicle_class: VehicleClass,
    pub lon: f64,
    pub lat: f64,
    pub confidence: Option<f64>,
}

/// `weather-observations`. `None` means the station did not measure that quantity, which
/// is not an observation of it (DOMAIN.md).
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherObservation {
    pub event_id: String,
    pub station_id: String,
    pub ts: EventTime,
    pub lon: f64,
    pub lat: f64,
    pub visibility_m: Option<f64>,
    pub precipitation_mm_h: Option<f64>,
    pub wind_speed_mps: Option<f64>,
    pub wind_gust_mps: Option<f64>,
    pub road_surface_temp_c: Option<f64>,
    pub road_surface_state: Option<RoadSurfaceState>,
    pub air_temp_c: Option<f64>,
}

/// `patrol-positions`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatrolPosition {
    pub unit_id: String,
    pub ts: EventTime,
    pub lon: f64,
    pub lat: f64,
    pub status: UnitStatus,
    pub speed_kmh: Option<f64>,
}

/// `dispatch-acks`.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchAck {
    pub alert_id: String,
    pub unit_id: String,
    pub ts: EventTime,
    pub status: AckStatus,
    /// What the unit found; only a `resolved` ack carries one (elsewhere it is ignored).
    pub outcome: Option<Outcome>,
}

/// Longest operator note (CONTRACT section 2), in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// `operator-actions`.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorAction {
    pub action_id: String,
    pub operator_id: String,
    pub ts: EventTime,
    pub alert_id: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Acknowledge,
    /// Send this unit, whatever the ranking says.
    Assign {
        unit_id: String,
    },
    Close {
        outcome: Outcome,
    },
    Note {
        text: String,
    },
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Acknowledge => ActionKind::Acknowledge,
            Action::Assign { .. } => ActionKind::Assign,
            Action::Close { .. } => ActionKind::Close,
            Action::Note { .. } => ActionKind::Note,
        }
    }
}
