//! Prometheus' HTTP API answers (<https://prometheus.io/docs/prometheus/latest/querying/api/>)
//! read into series and values: pure functions of the answer's text.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// One time series of a query's answer: its labels and its points, oldest first. An instant
/// query's series has one point.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<Point>,
}

/// A value at a time (seconds since the epoch, as Prometheus writes them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub time: f64,
    pub value: f64,
}

impl Series {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Why an answer gave no data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Prometheus said no, in its own words (`bad_data`, `execution`, `timeout`, ...).
    #[error("{error_type}: {error}")]
    Refused { error_type: String, error: String },
    /// Not an answer of Prometheus' API.
    #[error("{0}")]
    Malformed(String),
}

/// Every answer: `{"status": "success", "data": ...}` or `{"status": "error",
/// "errorType": ..., "error": ...}`.
#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

fn data<T: DeserializeOwned>(body: &str) -> Result<T, AnswerError> {
    let envelope: Envelope<T> = serde_json::from_str(body).map_err(|error| {
        AnswerError::Malformed(format!(
            "not an answer of Prometheus' API ({error}): {}",
            excerpt(body)
        ))
    })?;
    match (envelope.status.as_str(), envelope.data) {
        ("success", Some(data)) => Ok(data),
        ("error", _) => Err(AnswerError::Refused {
            error_type: envelope.error_type.unwrap_or_else(|| "error".to_owned()),
            error: envelope.error.unwrap_or_default(),
        }),
        (status, _) => Err(AnswerError::Malformed(format!(
            "an answer with status {status:?} and no data: {}",
            excerpt(body)
        ))),
    }
}

/// The start of a body, for messages about it.
pub fn excerpt(body: &str) -> String {
    let mut text: String = body.chars().take(200).collect();
    if text.len() < body.len() {
        text.push('…');
    }
    text.trim().to_owned()
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawSeries {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
    value: Option<(f64, String)>,
}

/// Sample values are strings, so that `NaN` and `±Inf` survive JSON.
fn number(text: &str) -> Result<f64, AnswerError> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse()
            .map_err(|_| AnswerError::Malformed(format!("{text:?} is not a sample value"))),
    }
}

fn point((time, value): &(f64, String)) -> Result<Point, AnswerError> {
    Ok(Point {
        time: *time,
        value: number(value)?,
    })
}

/// The series of a query's answer: a range query's matrix, or an instant query's vector
/// (each series with its one point). A scalar answers as one series without labels.
pub fn series(body: &str) -> Result<Vec<Series>, AnswerError> {
    let data: QueryData = data(body)?;
    let wrong_shape = |error: serde_json::Error| {
        AnswerError::Malformed(format!(
            "a {} result of an unexpected shape: {error}",
            data.result_type
        ))
    };
    match data.result_type.as_str() {
        "matrix" | "vector" => {
            let raw: Vec<RawSeries> =
                serde_json::from_value(data.result.clone()).map_err(wrong_shape)?;
            raw.into_iter()
                .map(|series| {
                    let points = series
                        .values
                        .iter()
                        .chain(series.value.as_ref())
                        .map(point)
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Series {
                        labels: series.metric,
                        points,
                    })
                })
                .collect()
        }
        "scalar" => {
            let raw: (f64, String) =
                serde_json::from_value(data.result.clone()).map_err(wrong_shape)?;
            Ok(vec![Series {
                labels: BTreeMap::new(),
                points: vec![point(&raw)?],
            }])
        }
        other => Err(AnswerError::Malformed(format!(
            "a result of type {other:?}, where series were expected"
        ))),
    }
}

/// A list of strings: the values of a label (`/api/v1/label/<name>/values`).
pub fn strings(body: &str) -> Result<Vec<String>, AnswerError> {
    data(body)
}

/// How long Prometheus keeps samples, from `/api/v1/status/runtimeinfo`: its
/// `storageRetention` is `15d`, `30d or 10GiB`, or a size alone (`10GiB`, no time bound,
/// `None`).
pub fn retention(body: &str) -> Result<Option<Duration>, AnswerError> {
    #[derive(Deserialize)]
    struct RuntimeInfo {
        #[serde(rename = "storageRetention", default)]
        storage_retention: String,
    }
    let info: RuntimeInfo = data(body)?;
    Ok(info
        .storage_retention
        .split(" or ")
        .find_map(|part| crate::duration::parse(part.trim()).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_range_query_reads_into_series() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"name":"web","id":"/docker/abc"},"values":[[1700000000,"1.5"],[1700000002.5,"NaN"],[1700000005,"+Inf"]]},
            {"metric":{},"values":[]}]}}"#;
        let found = series(body).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].label("name"), Some("web"));
        assert_eq!(found[0].points.len(), 3);
        assert_eq!(
            found[0].points[0],
            Point {
                time: 1_700_000_000.0,
                value: 1.5
            }
        );
        assert_eq!(found[0].points[1].time, 1_700_000_002.5);
        assert!(found[0].points[1].value.is_nan());
        assert_eq!(found[0].points[2].value, f64::INFINITY);
        assert!(found[1].points.is_empty());
    }

    #[test]
    fn instant_queries_and_scalars_read_into_one_point_each() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"job":"stevedore"},"value":[1700000000.123,"3"]}]}}"#;
        let found = series(vector).unwrap();
        assert_eq!(found[0].label("job"), Some("stevedore"));
        assert_eq!(found[0].points[0].value, 3.0);
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"1700000000.5"]}}"#;
        assert_eq!(series(scalar).unwrap()[0].points[0].value, 1_700_000_000.5);
        let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#;
        assert!(matches!(series(string), Err(AnswerError::Malformed(_))));
    }

    #[test]
    fn refusals_keep_prometheus_words() {
        let malformed = |body: &str| match series(body) {
            Err(AnswerError::Malformed(message)) => message,
            other => panic!("{body}: not malformed: {other:?}"),
        };
        let body = r#"{"status":"error","errorType":"bad_data","error":"1:15: parse error: unexpected \"}\""}"#;
        match series(body) {
            Err(AnswerError::Refused { error_type, error }) => {
                assert_eq!(error_type, "bad_data");
                assert_eq!(error, "1:15: parse error: unexpected \"}\"");
            }
            other => panic!("not a refusal: {other:?}"),
        }
        assert_eq!(
            series(body).unwrap_err().to_string(),
            "bad_data: 1:15: parse error: unexpected \"}\""
        );
        let not_json = malformed("404 page not found");
        assert!(not_json.contains("404 page not found"), "{not_json}");
        assert!(!malformed(r#"{"status":"success"}"#).is_empty());
        let bad_value = malformed(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}"#,
        );
        assert!(
            bad_value.contains("\"x\" is not a sample value"),
            "{bad_value}"
        );
    }

    #[test]
    fn label_values_and_retention() {
        let body = r#"{"status":"success","data":["cadvisor","stevedore"]}"#;
        assert_eq!(strings(body).unwrap(), ["cadvisor", "stevedore"]);
        let info = |retention: &str| {
            format!(
                r#"{{"status":"success","data":{{"startTime":"2024-01-01T00:00:00Z","storageRetention":"{retention}"}}}}"#
            )
        };
        assert_eq!(
            retention(&info("15d")).unwrap(),
            Some(Duration::from_secs(15 * 86400))
        );
        assert_eq!(
            retention(&info("30d or 10GiB")).unwrap(),
            Some(Duration::from_secs(30 * 86400))
        );
        assert_eq!(retention(&info("10GiB")).unwrap(), None);
        assert_eq!(
            retention(r#"{"status":"success","data":{}}"#).unwrap(),
            None
        );
    }

    /// Any text of up to 64 characters.
    const SHORT_TEXT: &str = "\\PC{0,64}";

    proptest! {
        #[test]
        fn text_that_is_no_answer_is_refused_and_quoted(body in SHORT_TEXT) {
            // Without a status there is no answer: each reader says so, quoting the body.
            let results = [
                series(&body).map(|_| ()),
                strings(&body).map(|_| ()),
                retention(&body).map(|_| ()),
            ];
            for result in results {
                match result {
                    Err(AnswerError::Malformed(why)) => {
                        prop_assert!(why.ends_with(&excerpt(&body)), "{}", why)
                    }
                    other => prop_assert!(body.contains("status"), "{:?} from {:?}", other, body),
                }
            }
        }

        #[test]
        fn any_matrix_reads_back(points in proptest::collection::vec((0u32..2_000_000_000, -1e12f64..1e12), 0..20)) {
            let values: Vec<String> = points
                .iter()
                .map(|(time, value)| format!("[{time},\"{value}\"]"))
                .collect();
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"a":"b"}},"values":[{}]}}]}}}}"#,
                values.join(",")
            );
            let found = series(&body).unwrap();
            prop_assert_eq!(found[0].points.len(), points.len());
            for (read, (time, value)) in found[0].points.iter().zip(&points) {
                prop_assert_eq!(read.time, f64::from(*time));
                prop_assert_eq!(read.value, *value);
            }
        }
    }
}
