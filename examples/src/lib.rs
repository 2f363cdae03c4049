//! Examples live beside this crate: `cargo run -p ceph-examples --example kubernetes_volume`.
