//! The RPCs the server answers (from the descriptor sets it serves) and gRPC status code names: the label values of the gRPC metrics.

use prost::Message;
use std::collections::HashMap;

/// The RPCs this server answers, from the descriptor sets it serves (braid.v1, health,
/// reflection): the only `service` and `method` label values. Anything else is "unknown".
#[derive(Debug)]
pub(super) struct KnownRpcs {
    by_path: HashMap<String, usize>,
    /// (service, method, server-streaming) by index.
    labels: Vec<(String, String, bool)>,
}

impl KnownRpcs {
    pub(super) fn load() -> Self {
        let mut known = Self { by_path: HashMap::new(), labels: Vec::new() };
        let sets = [
            braid_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        for bytes in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(bytes) else { continue };
            for file in set.file {
                for service in &file.service {
                    let name = format!("{}.{}", file.package(), service.name());
                    for method in &service.method {
                        let path = format!("/{name}/{}", method.name());
                        if !known.by_path.contains_key(&path) {
                            known.by_path.insert(path, known.labels.len());
                            known.labels.push((name.clone(), method.name().to_owned(), method.server_streaming()));
                        }
                    }
                }
            }
        }
        known
    }

    /// The RPC at `path`, if this server serves it.
    pub(super) fn find(&self, path: &str) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    /// Its (service, method) label values: "unknown" for what is not served.
    pub(super) fn labels(&self, rpc: Option<usize>) -> (&str, &str) {
        rpc.and_then(|i| self.labels.get(i)).map_or(("unknown", "unknown"), |(s, m, _)| (s.as_str(), m.as_str()))
    }

    /// Whether the server answers it with a stream of messages.
    pub(super) fn streams(&self, rpc: Option<usize>) -> bool {
        rpc.and_then(|i| self.labels.get(i)).is_some_and(|(_, _, streaming)| *streaming)
    }
}

/// The canonical name of a gRPC status code, as in the gRPC spec.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}
