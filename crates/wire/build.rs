//! Generates the wire types from `proto/` with a pure-Rust protobuf compiler, so
//! the build needs no `protoc` on the machine.

/// Each request field's rule, as `validate.rs` and the engine check it.
const SCHEMA_RULES: &[(&str, &str)] = &[
    (
        "ProjectionParameters.customer_id",
        r#"required = true, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "C-000042""#,
    ),
    (
        "ProjectionParameters.time_horizon_years",
        "required = true, minimum = 1, maximum = 50",
    ),
    (
        "ProjectionParameters.risk_profile",
        "required = true, schema_with = crate::schema::risk_profile",
    ),
    (
        "ProjectionParameters.paths",
        "minimum = 1, maximum = 200000",
    ),
    ("ProjectionParameters.seed", "minimum = 0"),
    (
        "ProjectionParameters.monthly_contribution",
        "minimum = 0, maximum = 1e12",
    ),
    (
        "ProjectionParameters.annual_fee",
        "minimum = 0, exclusive_maximum = 1",
    ),
    (
        "ProjectionParameters.inflation",
        "minimum = -0.5, maximum = 1",
    ),
    (
        "GenerateProjectionRequest.job_id",
        r#"pattern = "^(?!\\.\\.?$)[!-~]{0,128}$", example = "report-42""#,
    ),
    (
        "GenerateProjectionRequest.parameters",
        "required = true, nullable = false",
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let schema = format!("{proto_dir}/projector.proto");
    println!("cargo:rerun-if-changed={schema}");
    let descriptors = protox::compile([&schema], [proto_dir])?;
    let mut config = prost_build::Config::new();
    config
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .type_attribute(".", "#[serde(default)]")
        .type_attribute(".", "#[derive(utoipa::ToSchema)]");
    // The rules requests are checked by, in the OpenAPI document too.
    for (field, rule) in SCHEMA_RULES {
        config.field_attribute(
            format!(".projector.v1.{field}"),
            format!("#[schema({rule})]"),
        );
    }
    config.compile_fds(descriptors)?;
    Ok(())
}
