//! The simulator's knobs. Every field has a default sized for the shipped Bijie network
//! (a few hundred thousand records per simulated day); `scale` style fields multiply it.

/// One simulated day, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// What to simulate. Build with struct-update syntax over [`SimConfig::default`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Same seed, same configuration, same network → byte-identical records and truth.
    pub seed: u64,
    /// Event time of the first record (epoch milliseconds).
    pub start_ms: i64,
    /// How much event time to simulate after `start_ms`.
    pub duration_ms: i64,
    /// Plate-read history to emit before `start_ms` (only vehicles that come back day
    /// after day: commuters, buses, operators), so that the ride-hailing pattern
    /// detector has the several days of history it needs. 0 = none.
    pub warmup_ms: i64,
    /// Event time covered by one [`super::Simulator::next_batch`] call.
    pub batch_ms: i64,
    /// Local time zone of the region, seconds east of UTC: daily rhythms (rush hours,
    /// night fog, shifts) and RFC 3339 timestamps use it. Bijie: +08:00.
    pub utc_offset_s: i32,

    // ---- traffic --------------------------------------------------------------------
    /// Multiplies the one-off traffic (tourists, travellers, trucks) per day.
    pub traffic_scale: f64,
    /// One-off private car trips per day (tourists, travellers) at `traffic_scale` 1.
    pub car_trips_per_day: f64,
    /// One-off truck trips per day at `traffic_scale` 1.
    pub truck_trips_per_day: f64,
    /// Private commuters: two short trips on working days.
    pub private_commuters: u32,
    /// Long-distance commuters: two long trips on working days, so their daily distance
    /// exceeds the 85.8 km/day line without being operators (hard negatives).
    pub long_distance_commuters: u32,
    /// Intercity buses (yellow plates, `bus`): several trips a day between two towns.
    pub buses: u32,
    /// Licensed passenger operators (on the whitelist the simulator generates).
    pub licensed_operators: u32,
    /// Illegal operators (非法营运): many trips a day between the same two towns.
    pub illegal_operators: u32,
    /// How many of the illegal operators are also on the watchlist.
    pub watchlisted_operators: u32,
    /// Watchlisted private cars that are not operators (a suspect vehicle) and that
    /// travel now and then.
    pub watchlisted_suspects: u32,
    /// Watchlisted plates that never appear on this network.
    pub watchlisted_absent: u32,
    /// ANPR gantry spacing along each carriageway, metres (uniform in the range).
    pub gantry_spacing_m: (f64, f64),
    /// Share of plate passes a reader misses.
    pub missed_read_rate: f64,
    /// Share of plate reads that come out as a different (valid) plate.
    pub misread_rate: f64,

    // ---- cameras and people -----------------------------------------------------------
    /// Spacing of roadside cameras on open road, metres.
    pub camera_spacing_m: f64,
    /// Spacing of cameras inside tunnels, metres (each sees half of it either way, so a
    /// tube is covered end to end, as tunnel AID systems are).
    pub tunnel_camera_spacing_m: f64,
    /// Mean interval between a camera's routine events (vehicles and noise), seconds.
    pub camera_event_interval_s: f64,
    /// Pedestrians/cyclists on the carriageway per day (the incidents to detect).
    pub pedestrian_incidents_per_day: f64,
    /// Share of incidents placed in tunnels and on bridges.
    pub structure_incident_share: f64,
    /// People walking in service areas per day (allowed; not incidents).
    pub service_area_people_per_day: f64,
    /// People beside the road but off the carriageway per day (not incidents).
    pub roadside_people_per_day: f64,
    /// Per routine camera event: chance of a low-confidence false pedestrian.
    pub low_confidence_noise_rate: f64,
    /// Per routine camera event: chance of a lone mid-confidence false pedestrian on the
    /// carriageway (one frame; never confirmed on its own).
    pub phantom_noise_rate: f64,
    /// Per routine camera event: chance of a confident false detection off the road.
    pub off_road_noise_rate: f64,

    // ---- weather ----------------------------------------------------------------------
    /// Fog episodes per day over the whole network (each day's first is dense: < 50 m).
    pub fog_episodes_per_day: f64,
    /// Freezing (凝冻) episodes per day.
    pub ice_episodes_per_day: f64,
    /// Wind-gust episodes per day.
    pub wind_episodes_per_day: f64,
    /// Heavy-rain episodes per day.
    pub rain_episodes_per_day: f64,
    /// Mean air temperature, °C (the diurnal swing is added).
    pub base_air_temp_c: f64,

    // ---- patrol -------------------------------------------------------------------------
    /// Patrol units `P-01`…
    pub patrol_units: u32,
    /// Dispatch answers: accepted / declined shares; the rest stay silent.
    pub accept_share: f64,
    pub decline_share: f64,

    // ---- noise ----------------------------------------------------------------------------
    /// Share of records that are followed by a deliberately broken copy (DLQ input).
    pub dirty_rate: f64,
    /// Share of camera, plate and patrol records delivered late (by up to 25 s).
    pub late_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            // 2026-11-23T00:00:00+08:00, a Monday (commuters commute) in late November:
            // the start of Bijie's fog and freezing season, while the shipped network's
            // timed work zone is active, and in the past, so that a replay does not
            // refuse the records as future timestamps (`time.max_future_skew_s`).
            start_ms: 1_795_363_200_000,
            duration_ms: DAY_MS,
            warmup_ms: 0,
            batch_ms: 10_000,
            utc_offset_s: 8 * 3600,
            traffic_scale: 1.0,
            car_trips_per_day: 12_000.0,
            truck_trips_per_day: 5_000.0,
            private_commuters: 2_500,
            long_distance_commuters: 300,
            buses: 40,
            licensed_operators: 25,
            illegal_operators: 30,
            watchlisted_operators: 8,
            watchlisted_suspects: 3,
            watchlisted_absent: 5,
            gantry_spacing_m: (5_000.0, 10_000.0),
            missed_read_rate: 0.015,
            misread_rate: 0.003,
            camera_spacing_m: 2_000.0,
            tunnel_camera_spacing_m: 300.0,
            camera_event_interval_s: 60.0,
            pedestrian_incidents_per_day: 16.0,
            structure_incident_share: 0.45,
            service_area_people_per_day: 200.0,
            roadside_people_per_day: 40.0,
            low_confidence_noise_rate: 0.03,
            phantom_noise_rate: 0.002,
            off_road_noise_rate: 0.01,
            fog_episodes_per_day: 2.5,
            ice_episodes_per_day: 1.0,
            wind_episodes_per_day: 1.0,
            rain_episodes_per_day: 1.0,
            base_air_temp_c: 6.0,
            patrol_units: 14,
            accept_share: 0.8,
            decline_share: 0.08,
            dirty_rate: 0.001,
            late_rate: 0.003,
        }
    }
}

impl SimConfig {
    /// Event time just past the last record.
    pub fn end_ms(&self) -> i64 {
        self.start_ms.saturating_add(self.duration_ms.max(0))
    }

    /// Every problem with the configuration, for the caller to print at once.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.start_ms < 0 {
            p.push("start_ms must not be negative".to_owned());
        }
        if self.duration_ms <= 0 {
            p.push("duration_ms must be positive".to_owned());
        }
        if self.warmup_ms < 0 || self.warmup_ms > self.start_ms {
            p.push("warmup_ms must be between 0 and start_ms".to_owned());
        }
        if self.batch_ms <= 0 {
            p.push("batch_ms must be positive".to_owned());
        }
        if self.utc_offset_s.abs() >= 86_400 {
            p.push("utc_offset_s must be less than a day".to_owned());
        }
        let (lo, hi) = self.gantry_spacing_m;
        if !(lo >= 500.0 && hi >= lo) {
            p.push("gantry_spacing_m must be (lo, hi) with 500 <= lo <= hi".to_owned());
        }
        if !(self.camera_spacing_m >= 100.0 && self.tunnel_camera_spacing_m >= 100.0) {
            p.push("camera spacings must be at least 100 m".to_owned());
        }
        if self.camera_event_interval_s.is_nan() || self.camera_event_interval_s < 1.0 {
            p.push("camera_event_interval_s must be at least 1".to_owned());
        }
        if self.watchlisted_operators > self.illegal_operators {
            p.push("watchlisted_operators must not exceed illegal_operators".to_owned());
        }
        if self.patrol_units > 99 {
            p.push("patrol_units must be at most 99".to_owned());
        }
        let shares = [
            ("missed_read_rate", self.missed_read_rate),
            ("misread_rate", self.misread_rate),
            ("structure_incident_share", self.structure_incident_share),
            ("low_confidence_noise_rate", self.low_confidence_noise_rate),
            ("phantom_noise_rate", self.phantom_noise_rate),
            ("off_road_noise_rate", self.off_road_noise_rate),
            ("accept_share", self.accept_share),
            ("decline_share", self.decline_share),
            ("dirty_rate", self.dirty_rate),
            ("late_rate", self.late_rate),
        ];
        for (name, v) in shares {
            if !(0.0..=1.0).contains(&v) {
                p.push(format!("{name} must be between 0 and 1"));
            }
        }
        if self.accept_share + self.decline_share > 1.0 {
            p.push("accept_share + decline_share must not exceed 1".to_owned());
        }
        let rates = [
            ("traffic_scale", self.traffic_scale),
            ("car_trips_per_day", self.car_trips_per_day),
            ("truck_trips_per_day", self.truck_trips_per_day),
            (
                "pedestrian_incidents_per_day",
                self.pedestrian_incidents_per_day,
            ),
            (
                "service_area_people_per_day",
                self.service_area_people_per_day,
            ),
            ("roadside_people_per_day", self.roadside_people_per_day),
            ("fog_episodes_per_day", self.fog_episodes_per_day),
            ("ice_episodes_per_day", self.ice_episodes_per_day),
            ("wind_episodes_per_day", self.wind_episodes_per_day),
            ("rain_episodes_per_day", self.rain_episodes_per_day),
        ];
        for (name, v) in rates {
            if !(v.is_finite() && v >= 0.0) {
                p.push(format!("{name} must be a non-negative number"));
            }
        }
        if !self.base_air_temp_c.is_finite() {
            p.push("base_air_temp_c must be a number".to_owned());
        }
        p
    }
}
