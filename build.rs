//! Compiles the backend contracts in `proto/` with protox (a pure-Rust
//! protobuf compiler), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Neither protox nor tonic-prost-build emits this.
    println!("cargo:rerun-if-changed=proto");
    let files = [
        "proto/auth.proto",
        "proto/character.proto",
        "proto/world.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
