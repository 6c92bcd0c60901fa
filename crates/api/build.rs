//! Generates the wire types from `proto/` with a pure-Rust protobuf compiler, so
//! the build needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let schema = format!("{proto_dir}/projector.proto");
    println!("cargo:rerun-if-changed={schema}");
    let descriptors = protox::compile([&schema], [proto_dir])?;
    prost_build::Config::new()
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .type_attribute(".", "#[serde(default)]")
        .compile_fds(descriptors)?;
    Ok(())
}
