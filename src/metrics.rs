//! The metric families of one scrape, and their encoding as Prometheus text (0.0.4) or
//! OpenMetrics through `prometheus-client`.
//!
//! Families are built fresh for every scrape from what was read, so nothing per container
//! outlives the scrape and nothing needs cleaning up when a container goes away.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, LabelSetEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

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
        }
    }
}

/// Labels of one sample besides its target's: a fixed key, a value.
pub type Labels = Vec<(&'static str, String)>;

/// The labels every sample of one target (a container, or a raw cgroup) carries.
pub type TargetLabels = Arc<Vec<(String, String)>>;

#[derive(Debug, Clone)]
pub struct Sample {
    /// Index into `Exposition::targets`; `None` for samples that belong to no target.
    pub target: Option<usize>,
    pub labels: Labels,
    pub value: Value,
}

#[derive(Debug)]
pub struct Family {
    pub desc: &'static Desc,
    pub samples: Vec<Sample>,
}

/// Everything one scrape found, ready to encode.
#[derive(Debug, Default)]
pub struct Exposition {
    pub targets: Vec<TargetLabels>,
    families: Vec<Family>,
    by_name: HashMap<&'static str, usize>,
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
        let index = *self.by_name.entry(desc.name).or_insert_with(|| {
            self.families.push(Family {
                desc,
                samples: Vec::new(),
            });
            self.families.len() - 1
        });
        self.families[index].samples.push(Sample {
            target,
            labels,
            value: value.into(),
        });
    }

    /// Families sorted by name, as other exporters present them.
    pub fn families(&self) -> Vec<&Family> {
        let mut families: Vec<&Family> = self.families.iter().collect();
        families.sort_by_key(|family| family.desc.name);
        families
    }

    pub fn family(&self, name: &str) -> Option<&Family> {
        self.by_name.get(name).map(|index| &self.families[*index])
    }

    pub fn sample_count(&self) -> usize {
        self.families
            .iter()
            .map(|family| family.samples.len())
            .sum()
    }
}

/// The samples one collector found for one target, before they are committed to the
/// exposition (a target that vanished during the scrape is dropped whole).
#[derive(Debug, Default)]
pub struct TargetSamples {
    pub samples: Vec<(&'static Desc, Labels, Value)>,
}

impl TargetSamples {
    pub fn add(&mut self, desc: &'static Desc, value: impl Into<Value>) {
        self.samples.push((desc, Vec::new(), value.into()));
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
            self.samples.push((desc, labels, value.into()));
        }
    }

    pub fn commit(self, exposition: &mut Exposition, target: usize) {
        for (desc, labels, value) in self.samples {
            exposition.push(desc, Some(target), labels, value);
        }
    }
}

pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
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

pub fn encode(exposition: Arc<Exposition>, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ExpositionCollector(exposition)));
    let mut out = String::new();
    let result = match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
    };
    // Writing into a String cannot fail; an error here would be a bug in the encoder.
    result.expect("encoding metrics into a String");
    out
}

#[derive(Debug)]
struct ExpositionCollector(Arc<Exposition>);

/// A sample's label set: its target's labels, then its own.
struct SampleLabels<'a> {
    target: &'a [(String, String)],
    own: &'a [(&'static str, String)],
}

impl EncodeLabelSet for SampleLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        for (key, value) in self.target {
            (key.as_str(), value.as_str()).encode(encoder.encode_label())?;
        }
        for (key, value) in self.own {
            (*key, value.as_str()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

use prometheus_client::encoding::EncodeLabel;

impl Collector for ExpositionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let exposition = &self.0;
        for family in exposition.families() {
            let desc = family.desc;
            let (name, metric_type) = match desc.kind {
                // The encoders append `_total` to counter samples themselves.
                Kind::Counter => (
                    desc.name.strip_suffix("_total").unwrap_or(desc.name),
                    MetricType::Counter,
                ),
                Kind::Gauge => (desc.name, MetricType::Gauge),
            };
            let mut metric_encoder =
                encoder.encode_descriptor(name, desc.help, None, metric_type)?;
            for sample in &family.samples {
                let labels = SampleLabels {
                    target: sample
                        .target
                        .and_then(|index| exposition.targets.get(index))
                        .map(|labels| labels.as_slice())
                        .unwrap_or_default(),
                    own: &sample.labels,
                };
                let sample_encoder = metric_encoder.encode_family(&labels)?;
                match (desc.kind, sample.value) {
                    (Kind::Counter, Value::Unsigned(value)) => {
                        ConstCounter::new(value).encode(sample_encoder)?
                    }
                    (Kind::Counter, value) => {
                        ConstCounter::new(value.as_f64().max(0.0)).encode(sample_encoder)?
                    }
                    (Kind::Gauge, Value::Unsigned(value)) => {
                        ConstGauge::new(value).encode(sample_encoder)?
                    }
                    (Kind::Gauge, Value::Signed(value)) => {
                        ConstGauge::new(value).encode(sample_encoder)?
                    }
                    (Kind::Gauge, Value::Float(value)) => {
                        ConstGauge::new(value).encode(sample_encoder)?
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static USAGE: Desc = counter("container_cpu_usage_seconds_total", "CPU time used.");
    static LIMIT: Desc = gauge("container_spec_memory_limit_bytes", "Memory limit.");

    fn sample_exposition() -> Arc<Exposition> {
        let mut exposition = Exposition::default();
        let target = exposition.add_target(Arc::new(vec![
            ("id".to_owned(), "/docker/abc".to_owned()),
            ("name".to_owned(), "web \"1\"".to_owned()),
        ]));
        exposition.push(&USAGE, Some(target), vec![("cpu", "total".to_owned())], 1.5);
        exposition.push(&LIMIT, Some(target), Vec::new(), 67108864u64);
        exposition.push(&LIMIT, None, Vec::new(), 0u64);
        Arc::new(exposition)
    }

    #[test]
    fn text_format_names_counters_with_total_and_escapes_labels() {
        let text = encode(sample_exposition(), Format::Text);
        assert!(
            text.contains("# TYPE container_cpu_usage_seconds_total counter\n"),
            "{text}"
        );
        assert!(text.contains(
            "container_cpu_usage_seconds_total{id=\"/docker/abc\",name=\"web \\\"1\\\"\",cpu=\"total\"} 1.5\n"
        ), "{text}");
        assert!(text.contains(
            "container_spec_memory_limit_bytes{id=\"/docker/abc\",name=\"web \\\"1\\\"\"} 67108864\n"
        ), "{text}");
        assert!(
            text.contains("container_spec_memory_limit_bytes 0\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
        // Sorted by family name.
        assert!(text.find("container_cpu").unwrap() < text.find("container_spec").unwrap());
    }

    #[test]
    fn openmetrics_format_ends_with_eof() {
        let text = encode(sample_exposition(), Format::OpenMetrics);
        assert!(
            text.contains("# TYPE container_cpu_usage_seconds counter\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
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
}
