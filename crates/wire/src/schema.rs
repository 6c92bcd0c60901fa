//! Schemas the generated messages name for fields whose rule the protobuf
//! types cannot say.

/// `risk_profile`'s schema: one of the engine's profiles, by name.
pub fn risk_profile() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(engine::RiskProfile::ALL.map(|profile| profile.name())))
        .description(Some("conservative | balanced | aggressive"))
        .build()
}
