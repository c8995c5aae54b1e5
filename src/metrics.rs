//! The samples of one scrape, and their encoding as Prometheus text (0.0.4) or OpenMetrics.
//!
//! Samples are built fresh for every scrape from what was read, so nothing per container
//! outlives the scrape and nothing needs cleaning up when a container goes away. Each
//! target's label set is formatted once, when the target is resolved; encoding writes it
//! as it is and streams the text out in pieces, so a scrape of 10,000 cgroups never holds
//! its whole text in memory.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// What a metric family is. Counter names end in `_total`, as they appear on `/metrics`.
#[derive(Debug, PartialEq, Eq)]
pub struct Desc {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

pub const fn counter(name: &'static str, help: &'static str) -> Desc {
    Desc {
        name,
        help,
        kind: Kind::Counter,
    }
}

pub const fn gauge(name: &'static str, help: &'static str) -> Desc {
    Desc {
        name,
        help,
        kind: Kind::Gauge,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    /// A time the kernel counts in whole µs or ns, written in seconds with every digit.
    Nanoseconds(u64),
}

impl From<u64> for Value {
    fn from(value: u64) -> Self {
        Value::Unsigned(value)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Signed(value)
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Float(value)
    }
}

impl From<std::time::Duration> for Value {
    fn from(value: std::time::Duration) -> Self {
        Value::Nanoseconds(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Unsigned(u64::from(value))
    }
}

impl Value {
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Unsigned(value) => value as f64,
            Value::Signed(value) => value as f64,
            Value::Float(value) => value,
            Value::Nanoseconds(nanos) => nanos as f64 / 1e9,
        }
    }

    /// Integers as integers; floats in the shortest form that reads back the same, with
    /// `.0` on whole numbers, and `NaN`, `+Inf`, `-Inf` as the formats spell them. These
    /// are the encoder's most frequent steps: `itoa` and `ryu` write a number in a third of
    /// the instructions `std::fmt` takes.
    fn write_to(self, out: &mut String) {
        match self {
            Value::Unsigned(value) => out.push_str(itoa::Buffer::new().format(value)),
            Value::Signed(value) => out.push_str(itoa::Buffer::new().format(value)),
            Value::Float(value) if value.is_nan() => out.push_str("NaN"),
            Value::Float(value) if value.is_infinite() => {
                out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" })
            }
            Value::Float(value) => out.push_str(ryu::Buffer::new().format_finite(value)),
            Value::Nanoseconds(nanos) => {
                // Whole seconds, a point, then the nanoseconds without their trailing zeros:
                // exact, and cheaper than a float's shortest form.
                out.push_str(itoa::Buffer::new().format(nanos / 1_000_000_000));
                out.push('.');
                push_fraction(out, nanos % 1_000_000_000);
            }
        }
    }
}

/// The nine digits of `nanos` (below a second) without their trailing zeros, and at least
/// one: `500_000_000` is `5`, `44_000` is `000044`, `0` is `0`.
fn push_fraction(out: &mut String, nanos: u64) {
    if nanos == 0 {
        out.push('0');
        return;
    }
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(nanos);
    for _ in digits.len()..9 {
        out.push('0');
    }
    out.push_str(digits.trim_end_matches('0'));
}

/// A label value: most are fixed words (`total`, `pgfault`, `Read`) and cost nothing.
pub type LabelValue = Cow<'static, str>;

/// Labels of one sample besides its target's: a fixed key, a value.
pub type Labels = Vec<(&'static str, LabelValue)>;

/// The labels every sample of one target (a container, a raw cgroup, the root) carries,
/// with their text as the formats write it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabelSet {
    pairs: Vec<(String, String)>,
    /// `key="value",...`, escaped.
    text: String,
}

pub type TargetLabels = Arc<LabelSet>;

impl LabelSet {
    pub fn new(pairs: Vec<(String, String)>) -> TargetLabels {
        let mut text = String::new();
        for (key, value) in &pairs {
            write_label(&mut text, key, value);
        }
        Arc::new(LabelSet { pairs, text })
    }
}

impl std::ops::Deref for LabelSet {
    type Target = [(String, String)];

    fn deref(&self) -> &Self::Target {
        &self.pairs
    }
}

/// Appends `key="value"`, after a comma unless it is the first label.
fn write_label(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() && !out.ends_with('{') {
        out.push(',');
    }
    out.push_str(key);
    out.push_str("=\"");
    // Label values rarely need escaping: those that do not are copied whole.
    if value
        .bytes()
        .any(|byte| matches!(byte, b'\\' | b'"' | b'\n'))
    {
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
    } else {
        out.push_str(value);
    }
    out.push('"');
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub desc: &'static Desc,
    /// Labels besides the target's: most samples have none and allocate nothing, and the
    /// others keep the list they were given (made at its length by `vec!`) as it is.
    labels: Box<[(&'static str, LabelValue)]>,
    pub value: Value,
}

impl Sample {
    fn new(desc: &'static Desc, labels: Labels, value: Value) -> Sample {
        Sample {
            desc,
            labels: labels.into_boxed_slice(),
            value,
        }
    }

    pub fn labels(&self) -> &[(&'static str, LabelValue)] {
        &self.labels
    }
}

/// Samples of one target (or of none), in the order added.
#[derive(Debug, Default)]
struct Chunk {
    target: Option<u32>,
    samples: Vec<Sample>,
}

/// Everything one scrape found, ready to encode: samples in the order they were added,
/// in chunks that share a target, so that a target's samples are stored without it and
/// committing a target moves them rather than copying.
#[derive(Debug, Default)]
pub struct Exposition {
    pub targets: Vec<TargetLabels>,
    chunks: Vec<Chunk>,
    /// Whether the last chunk takes samples pushed one by one.
    last_chunk_open: bool,
}

impl Exposition {
    /// Adds a target's label set; its samples refer to it by the returned index.
    pub fn add_target(&mut self, labels: TargetLabels) -> usize {
        self.targets.push(labels);
        self.targets.len() - 1
    }

    pub fn push(
        &mut self,
        desc: &'static Desc,
        target: Option<usize>,
        labels: Labels,
        value: impl Into<Value>,
    ) {
        let target = target.map(target_index);
        let continues = self.last_chunk_open
            && self
                .chunks
                .last()
                .is_some_and(|chunk| chunk.target == target);
        if !continues {
            self.chunks.push(Chunk {
                target,
                samples: Vec::new(),
            });
            self.last_chunk_open = true;
        }
        let chunk = self.chunks.last_mut().expect("an open chunk");
        chunk.samples.push(Sample::new(desc, labels, value.into()));
    }

    /// Every sample with its target, in the order added.
    pub fn samples(&self) -> impl Iterator<Item = (Option<u32>, &Sample)> {
        self.chunks.iter().flat_map(|chunk| {
            chunk
                .samples
                .iter()
                .map(move |sample| (chunk.target, sample))
        })
    }

    /// The samples of family `name` with their targets, in the order added.
    pub fn family(&self, name: &str) -> Vec<(Option<u32>, &Sample)> {
        self.samples()
            .filter(|(_, sample)| sample.desc.name == name)
            .collect()
    }

    pub fn sample_count(&self) -> usize {
        self.chunks.iter().map(|chunk| chunk.samples.len()).sum()
    }
}

fn target_index(index: usize) -> u32 {
    u32::try_from(index).expect("fewer than 2^32 targets")
}

/// The samples one target gave, before they are committed to the exposition (a target
/// that vanished during the scrape is dropped whole).
#[derive(Debug, Default)]
pub struct TargetSamples {
    samples: Vec<Sample>,
}

impl TargetSamples {
    pub fn with_capacity(samples: usize) -> TargetSamples {
        TargetSamples {
            samples: Vec::with_capacity(samples),
        }
    }

    pub fn add(&mut self, desc: &'static Desc, value: impl Into<Value>) {
        self.samples
            .push(Sample::new(desc, Vec::new(), value.into()));
    }

    /// Adds the sample only when there is data (`None`: the file was not there).
    pub fn add_some<V: Into<Value>>(&mut self, desc: &'static Desc, value: Option<V>) {
        if let Some(value) = value {
            self.add(desc, value);
        }
    }

    pub fn add_labelled<V: Into<Value>>(
        &mut self,
        desc: &'static Desc,
        labels: Labels,
        value: Option<V>,
    ) {
        if let Some(value) = value {
            self.samples.push(Sample::new(desc, labels, value.into()));
        }
    }

    /// The samples gathered so far, in a list of their exact size, leaving this one empty
    /// with its room, to gather the next target's.
    pub fn take_exact(&mut self) -> TargetSamples {
        TargetSamples {
            samples: self.samples.drain(..).collect(),
        }
    }

    /// Moves the samples into the exposition.
    pub fn commit(self, exposition: &mut Exposition, target: usize) {
        exposition.chunks.push(Chunk {
            target: Some(target_index(target)),
            samples: self.samples,
        });
        exposition.last_chunk_open = false;
    }
}

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// OpenMetrics when the scraper's `Accept` header asks for it, text otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }
}

/// Bytes of text handed on at a time while encoding: each piece wakes the thread that
/// sends it, and 3 MB (1,000 cgroups) in 64 KiB pieces made 47 wake-ups a scrape.
pub const PIECE_BYTES: usize = 256 * 1024;

/// The whole text at once (the one-shot `scrape` command and tests).
pub fn encode(exposition: &Exposition, format: Format) -> String {
    let mut text = String::new();
    encode_in_pieces(exposition, format, &mut |piece| text.push_str(&piece));
    text
}

/// Encodes families sorted by name, as other exporters present them, handing the text to
/// `emit` in pieces of about `PIECE_BYTES`.
pub fn encode_in_pieces(exposition: &Exposition, format: Format, emit: &mut dyn FnMut(String)) {
    // Each family's samples in the order added, by a counting sort: a family number per
    // sample, then each sample's (chunk, position) placed in its family's run.
    let mut family_of: HashMap<*const Desc, u16, BuildAddressHasher> = HashMap::default();
    let mut families: Vec<(&'static Desc, usize)> = Vec::new();
    let mut numbers: Vec<u16> = Vec::with_capacity(exposition.sample_count());
    for (_, sample) in exposition.samples() {
        let number = *family_of
            .entry(std::ptr::from_ref(sample.desc))
            .or_insert_with(|| {
                families.push((sample.desc, 0));
                u16::try_from(families.len() - 1).expect("fewer than 65,536 families")
            });
        families[usize::from(number)].1 += 1;
        numbers.push(number);
    }
    let mut starts = Vec::with_capacity(families.len());
    let mut start = 0;
    for (_, count) in &families {
        starts.push(start);
        start += count;
    }
    let mut placed: Vec<(u32, u32)> = vec![(0, 0); numbers.len()];
    let mut next = starts.clone();
    let mut numbers = numbers.into_iter();
    for (chunk_index, chunk) in exposition.chunks.iter().enumerate() {
        for position in 0..chunk.samples.len() {
            let family = usize::from(numbers.next().expect("a number per sample"));
            placed[next[family]] = (chunk_index as u32, position as u32);
            next[family] += 1;
        }
    }

    let mut by_name: Vec<usize> = (0..families.len()).collect();
    by_name.sort_by_key(|&family| families[family].0.name);

    let mut out = String::with_capacity(PIECE_BYTES + 4096);
    for family in by_name {
        let (desc, count) = families[family];
        write_descriptor(&mut out, desc, format);
        for &(chunk, position) in &placed[starts[family]..starts[family] + count] {
            let chunk = &exposition.chunks[chunk as usize];
            let target = chunk
                .target
                .and_then(|index| exposition.targets.get(index as usize))
                .map_or("", |labels| labels.text.as_str());
            write_sample(&mut out, target, &chunk.samples[position as usize]);
            if out.len() >= PIECE_BYTES {
                emit(std::mem::replace(
                    &mut out,
                    String::with_capacity(PIECE_BYTES + 4096),
                ));
            }
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    if !out.is_empty() {
        emit(out);
    }
}

/// Hashes a family's description by its address: descriptions are statics, so the address
/// is the identity, and a multiply is all the mixing a few hundred of them need.
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8 | u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, address: usize) {
        self.0 = (address as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type BuildAddressHasher = std::hash::BuildHasherDefault<AddressHasher>;

/// `# HELP` and `# TYPE`; OpenMetrics names a counter family without its `_total`.
fn write_descriptor(out: &mut String, desc: &Desc, format: Format) {
    let (name, kind) = match desc.kind {
        Kind::Counter if format == Format::OpenMetrics => (
            desc.name.strip_suffix("_total").unwrap_or(desc.name),
            "counter",
        ),
        Kind::Counter => (desc.name, "counter"),
        Kind::Gauge => (desc.name, "gauge"),
    };
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    // Help texts rarely need escaping: those that do not are copied whole.
    if desc.help.contains(['\\', '\n']) {
        for c in desc.help.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
    } else {
        out.push_str(desc.help);
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// `target`: the sample's target's labels as text.
fn write_sample(out: &mut String, target: &str, sample: &Sample) {
    out.push_str(sample.desc.name);
    if !target.is_empty() || !sample.labels.is_empty() {
        out.push('{');
        out.push_str(target);
        for (key, value) in sample.labels() {
            write_label(out, key, value);
        }
        out.push('}');
    }
    out.push(' ');
    let value = match (sample.desc.kind, sample.value) {
        // A counter never goes below 0.
        (Kind::Counter, Value::Signed(value)) => Value::Unsigned(value.max(0) as u64),
        (Kind::Counter, Value::Float(value)) => Value::Float(value.max(0.0)),
        (_, value) => value,
    };
    value.write_to(out);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static USAGE: Desc = counter("container_cpu_usage_seconds_total", "CPU time used.");
    static LIMIT: Desc = gauge("container_spec_memory_limit_bytes", "Memory limit.");

    fn sample_exposition() -> Exposition {
        let mut exposition = Exposition::default();
        let target = exposition.add_target(LabelSet::new(vec![
            ("id".to_owned(), "/docker/abc".to_owned()),
            ("name".to_owned(), "web \"1\"\\\n".to_owned()),
        ]));
        let mut samples = TargetSamples::default();
        samples.add(&LIMIT, 67108864u64);
        samples.add_labelled(&USAGE, vec![("cpu", "total".into())], Some(1.5));
        samples.commit(&mut exposition, target);
        exposition.push(&LIMIT, None, Vec::new(), 0u64);
        exposition.push(&USAGE, Some(target), vec![("cpu", "x".into())], 700.0);
        exposition
    }

    #[test]
    fn text_format_names_counters_with_total_and_escapes_labels() {
        let text = encode(&sample_exposition(), Format::Text);
        assert_eq!(
            text,
            "# HELP container_cpu_usage_seconds_total CPU time used.\n\
             # TYPE container_cpu_usage_seconds_total counter\n\
             container_cpu_usage_seconds_total{id=\"/docker/abc\",name=\"web \\\"1\\\"\\\\\\n\",cpu=\"total\"} 1.5\n\
             container_cpu_usage_seconds_total{id=\"/docker/abc\",name=\"web \\\"1\\\"\\\\\\n\",cpu=\"x\"} 700.0\n\
             # HELP container_spec_memory_limit_bytes Memory limit.\n\
             # TYPE container_spec_memory_limit_bytes gauge\n\
             container_spec_memory_limit_bytes{id=\"/docker/abc\",name=\"web \\\"1\\\"\\\\\\n\"} 67108864\n\
             container_spec_memory_limit_bytes 0\n"
        );
    }

    #[test]
    fn help_text_escapes_backslashes_and_newlines_only() {
        static ODD: Desc = gauge("odd", "A \\ and a\nnew line, \"quoted\".");
        let mut exposition = Exposition::default();
        exposition.push(&ODD, None, Vec::new(), 1u64);
        assert_eq!(
            encode(&exposition, Format::Text),
            "# HELP odd A \\\\ and a\\nnew line, \"quoted\".\n# TYPE odd gauge\nodd 1\n"
        );
    }

    #[test]
    fn openmetrics_format_names_counter_families_without_total_and_ends_with_eof() {
        let text = encode(&sample_exposition(), Format::OpenMetrics);
        assert!(
            text.contains("# TYPE container_cpu_usage_seconds counter\n"),
            "{text}"
        );
        assert!(
            text.contains("\ncontainer_cpu_usage_seconds_total{"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn samples_are_taken_at_their_exact_size_and_the_scratch_keeps_its_room() {
        let mut scratch = TargetSamples::with_capacity(64);
        scratch.add(&USAGE, 1u64);
        scratch.add(&LIMIT, 2u64);
        let taken = scratch.take_exact();
        assert_eq!(taken.samples.len(), 2);
        assert_eq!(taken.samples.capacity(), 2);
        assert!(scratch.samples.is_empty());
        assert!(scratch.samples.capacity() >= 64);
        let mut exposition = Exposition::default();
        let target = exposition.add_target(LabelSet::new(vec![("id".into(), "/a".into())]));
        taken.commit(&mut exposition, target);
        assert_eq!(
            encode(&exposition, Format::Text)
                .lines()
                .filter(|line| !line.starts_with('#'))
                .collect::<Vec<_>>(),
            [
                "container_cpu_usage_seconds_total{id=\"/a\"} 1",
                "container_spec_memory_limit_bytes{id=\"/a\"} 2"
            ]
        );
    }

    #[test]
    fn times_in_seconds() {
        let written = |time: std::time::Duration| {
            let mut out = String::new();
            Value::from(time).write_to(&mut out);
            out
        };
        assert_eq!(
            written(std::time::Duration::from_micros(31_604)),
            "0.031604"
        );
        assert_eq!(
            written(std::time::Duration::from_nanos(12_345_678_901)),
            "12.345678901"
        );
        assert_eq!(written(std::time::Duration::from_secs(3)), "3.0");
        assert_eq!(written(std::time::Duration::from_micros(44)), "0.000044");
        assert_eq!(
            Value::from(std::time::Duration::from_millis(2500)).as_f64(),
            2.5
        );
    }

    #[test]
    fn special_values_and_counters_below_zero() {
        let mut out = String::new();
        for value in [
            Value::Float(f64::NAN),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NEG_INFINITY),
            Value::Float(0.1),
            Value::Signed(-3),
        ] {
            value.write_to(&mut out);
            out.push(' ');
        }
        assert_eq!(out, "NaN +Inf -Inf 0.1 -3 ");
        let mut exposition = Exposition::default();
        exposition.push(&USAGE, None, Vec::new(), -2i64);
        assert!(
            encode(&exposition, Format::Text).ends_with("container_cpu_usage_seconds_total 0\n")
        );
    }

    #[test]
    fn long_expositions_come_in_pieces_that_join_to_the_whole() {
        let mut exposition = Exposition::default();
        for n in 0..20_000u64 {
            let target = exposition.add_target(LabelSet::new(vec![(
                "id".to_owned(),
                format!("/docker/{n:064}"),
            )]));
            let mut samples = TargetSamples::default();
            samples.add(&LIMIT, n);
            samples.add(&USAGE, n as f64);
            samples.commit(&mut exposition, target);
        }
        let mut pieces = Vec::new();
        encode_in_pieces(&exposition, Format::Text, &mut |piece| pieces.push(piece));
        let whole = encode(&exposition, Format::Text);
        assert_eq!(whole.lines().count(), 40_004);
        assert!(whole.len() > 5 * PIECE_BYTES);
        assert!(pieces.len() > 5);
        assert!(pieces.iter().all(|piece| piece.len() < PIECE_BYTES + 4096));
        assert_eq!(pieces.concat(), whole);
    }

    #[test]
    fn negotiation_follows_the_accept_header() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
    }

    proptest! {
        #[test]
        fn label_values_are_escaped_so_a_line_stays_one_line(value in "\\PC*") {
            let labels = LabelSet::new(vec![("name".to_owned(), value.clone())]);
            prop_assert!(!labels.text.contains('\n'));
            prop_assert!(labels.text.starts_with("name=\"") && labels.text.ends_with('"'));
            // Unescaping gives the value back.
            let inner = &labels.text["name=\"".len()..labels.text.len() - 1];
            let mut unescaped = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => unescaped.push('\n'),
                        Some(other) => unescaped.push(other),
                        None => prop_assert!(false, "dangling escape"),
                    }
                } else {
                    prop_assert!(c != '"', "an unescaped quote");
                    unescaped.push(c);
                }
            }
            prop_assert_eq!(unescaped, value);
        }

        #[test]
        fn integers_are_written_as_rust_writes_them(unsigned in any::<u64>(), signed in any::<i64>()) {
            let mut out = String::new();
            Value::Unsigned(unsigned).write_to(&mut out);
            out.push(' ');
            Value::Signed(signed).write_to(&mut out);
            prop_assert_eq!(out, format!("{unsigned} {signed}"));
        }

        #[test]
        fn times_are_written_in_seconds_with_every_digit(nanos in any::<u64>()) {
            let mut out = String::new();
            Value::Nanoseconds(nanos).write_to(&mut out);
            let (seconds, fraction) = out.split_once('.').expect("a point");
            prop_assert_eq!(seconds.parse::<u64>().unwrap(), nanos / 1_000_000_000);
            prop_assert!(!fraction.is_empty() && fraction.len() <= 9);
            prop_assert!(fraction == "0" || !fraction.ends_with('0'), "{}", out);
            let padded = format!("{fraction:0<9}");
            prop_assert_eq!(padded.parse::<u64>().unwrap(), nanos % 1_000_000_000);
        }

        #[test]
        fn floats_read_back_as_the_same_number(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let mut out = String::new();
            Value::Float(value).write_to(&mut out);
            prop_assert_eq!(out.parse::<f64>().unwrap(), value);
        }
    }
}
