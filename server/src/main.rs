//! ferry-server: the reference sync server.
fn main() {}
