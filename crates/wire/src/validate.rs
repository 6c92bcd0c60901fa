//! From a client's parameters to the engine's, with the rule named on failure.

use engine::{ProjectionParams, RiskProfile};
use thiserror::Error;

use crate::ProjectionParameters;

/// A request that breaks a rule: the field and the rule, for a 422 answer.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("invalid {field}: {rule}")]
pub struct ValidationError {
    pub field: String,
    pub rule: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl From<engine::Error> for ValidationError {
    fn from(error: engine::Error) -> Self {
        match error {
            engine::Error::Invalid { field, rule } => ValidationError { field, rule },
            other => ValidationError::new("parameters", other.to_string()),
        }
    }
}

const MAX_CUSTOMER_ID: usize = 64;
/// Largest number of paths a client may ask for unless the operator sets
/// another limit (`max_paths`, at most the engine's): bounds the cost of one job.
pub const DEFAULT_MAX_PATHS: u32 = 200_000;

/// Checks a customer id: 1 to 64 characters of letters, digits, `-` and `_`.
pub fn customer_id_rule(customer_id: &str) -> Result<(), ValidationError> {
    let field = "parameters.customer_id";
    if customer_id.is_empty() {
        return Err(ValidationError::new(
            field,
            "is required, such as \"C-000042\"",
        ));
    }
    if customer_id.len() > MAX_CUSTOMER_ID {
        return Err(ValidationError::new(
            field,
            format!(
                "must be at most {MAX_CUSTOMER_ID} characters, got {}",
                customer_id.len()
            ),
        ));
    }
    if !customer_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ValidationError::new(
            field,
            "may hold only letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

/// Validates a client's parameters, with at most `max_paths` paths, and returns
/// the engine's, with defaults filled in.
pub fn projection_params(
    parameters: &ProjectionParameters,
    max_paths: u32,
) -> Result<ProjectionParams, ValidationError> {
    customer_id_rule(&parameters.customer_id)?;
    let risk_profile: RiskProfile = parameters
        .risk_profile
        .parse()
        .map_err(|error: engine::Error| prefixed(error.into()))?;
    let defaults = ProjectionParams::default();
    let paths = parameters.paths.unwrap_or(u64::from(defaults.paths));
    let paths = within("parameters.paths", paths, 1, max_paths)?;
    let time_horizon_years = within(
        "parameters.time_horizon_years",
        parameters.time_horizon_years,
        1,
        engine::MAX_HORIZON_YEARS,
    )?;
    let params = ProjectionParams {
        time_horizon_years,
        risk_profile,
        paths,
        monthly_contribution: parameters
            .monthly_contribution
            .unwrap_or(defaults.monthly_contribution),
        annual_fee: parameters.annual_fee.unwrap_or(defaults.annual_fee),
        inflation: parameters.inflation.unwrap_or(defaults.inflation),
        glide_path: parameters.glide_path.unwrap_or(defaults.glide_path),
        rebalance: parameters.rebalance.unwrap_or(defaults.rebalance),
        seed: parameters.seed,
        target_weights: None,
    };
    params.validate().map_err(|error| prefixed(error.into()))?;
    Ok(params)
}

/// The parameters as they are stored and compared: validated, with every
/// default filled in, so that leaving a field out and sending its default value
/// are one request.
pub fn normalized(
    parameters: &ProjectionParameters,
    max_paths: u32,
) -> Result<ProjectionParameters, ValidationError> {
    let params = projection_params(parameters, max_paths)?;
    Ok(ProjectionParameters {
        customer_id: parameters.customer_id.clone(),
        time_horizon_years: u64::from(params.time_horizon_years),
        risk_profile: params.risk_profile.name().to_string(),
        paths: Some(u64::from(params.paths)),
        monthly_contribution: Some(params.monthly_contribution),
        annual_fee: Some(params.annual_fee),
        inflation: Some(params.inflation),
        glide_path: Some(params.glide_path),
        rebalance: Some(params.rebalance),
        seed: params.seed,
    })
}

/// Validates the body of `POST /reports`, naming fields as the report spells them.
pub fn report_parameters(
    parameters: &ProjectionParameters,
    max_paths: u32,
) -> Result<(), ValidationError> {
    projection_params(parameters, max_paths)
        .map(|_| ())
        .map_err(|error| ValidationError {
            field: error.field.trim_start_matches("parameters.").to_string(),
            rule: error.rule,
        })
}

/// A count from the wire (64 bits in both codecs) within `min..=max`.
fn within(field: &str, value: u64, min: u32, max: u32) -> Result<u32, ValidationError> {
    u32::try_from(value)
        .ok()
        .filter(|narrow| (min..=max).contains(narrow))
        .ok_or_else(|| {
            ValidationError::new(
                field,
                format!("must be between {min} and {max}, got {value}"),
            )
        })
}

fn prefixed(error: ValidationError) -> ValidationError {
    ValidationError {
        field: format!("parameters.{}", error.field),
        rule: error.rule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ProjectionParameters {
        ProjectionParameters {
            customer_id: "C-000042".into(),
            time_horizon_years: 30,
            risk_profile: "balanced".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_default_left_out_and_the_default_sent_normalize_alike() {
        let explicit = ProjectionParameters {
            paths: Some(10_000),
            monthly_contribution: Some(500.0),
            glide_path: Some(true),
            ..valid()
        };
        assert_eq!(
            normalized(&valid(), DEFAULT_MAX_PATHS).unwrap(),
            normalized(&explicit, DEFAULT_MAX_PATHS).unwrap()
        );
        let other = ProjectionParameters {
            paths: Some(10_001),
            ..valid()
        };
        assert_ne!(
            normalized(&valid(), DEFAULT_MAX_PATHS).unwrap(),
            normalized(&other, DEFAULT_MAX_PATHS).unwrap()
        );
        let normal = normalized(&valid(), DEFAULT_MAX_PATHS).unwrap();
        assert_eq!(
            normalized(&normal, DEFAULT_MAX_PATHS).unwrap(),
            normal,
            "normalizing is idempotent"
        );
    }

    #[test]
    fn fills_defaults() {
        let params = projection_params(&valid(), DEFAULT_MAX_PATHS).unwrap();
        assert_eq!(params.paths, 10_000);
        assert_eq!(params.monthly_contribution, 500.0);
        assert!(params.glide_path && params.rebalance);
    }

    #[test]
    fn the_operators_path_limit_is_the_one_applied_and_named() {
        let asking = |paths| ProjectionParameters {
            paths: Some(paths),
            ..valid()
        };
        assert_eq!(
            projection_params(&asking(500_000), 500_000).unwrap().paths,
            500_000
        );
        let refused = projection_params(&asking(50_001), 50_000).unwrap_err();
        assert_eq!(refused.field, "parameters.paths");
        assert_eq!(refused.rule, "must be between 1 and 50000, got 50001");
        assert!(report_parameters(&asking(50_000), 50_000).is_ok());
    }

    #[test]
    fn names_field_and_rule() {
        let cases = [
            (
                ProjectionParameters {
                    time_horizon_years: 51,
                    ..valid()
                },
                "parameters.time_horizon_years",
            ),
            (
                ProjectionParameters {
                    time_horizon_years: 0,
                    ..valid()
                },
                "parameters.time_horizon_years",
            ),
            (
                ProjectionParameters {
                    risk_profile: "yolo".into(),
                    ..valid()
                },
                "parameters.risk_profile",
            ),
            (
                ProjectionParameters {
                    customer_id: String::new(),
                    ..valid()
                },
                "parameters.customer_id",
            ),
            (
                ProjectionParameters {
                    customer_id: "C".repeat(65),
                    ..valid()
                },
                "parameters.customer_id",
            ),
            (
                ProjectionParameters {
                    customer_id: "C 1".into(),
                    ..valid()
                },
                "parameters.customer_id",
            ),
            (
                ProjectionParameters {
                    paths: Some(0),
                    ..valid()
                },
                "parameters.paths",
            ),
            (
                ProjectionParameters {
                    paths: Some(10_000_000),
                    ..valid()
                },
                "parameters.paths",
            ),
            (
                ProjectionParameters {
                    annual_fee: Some(-0.1),
                    ..valid()
                },
                "parameters.annual_fee",
            ),
        ];
        for (parameters, field) in cases {
            assert_eq!(
                projection_params(&parameters, DEFAULT_MAX_PATHS)
                    .unwrap_err()
                    .field,
                field,
                "{parameters:?}"
            );
        }
    }
}
