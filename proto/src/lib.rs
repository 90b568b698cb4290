//! Braid's wire contract: code generated from `proto/braid/v1` and its file descriptor set.

/// The `braid.v1` package.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("braid.v1");
}

/// Encoded `FileDescriptorSet` of every braid proto file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/braid_descriptor.bin"));
