//! JSON and Protobuf are two spellings of one request: whatever a client sends,
//! both decode it to the same value and the rules accept or refuse it alike.
//! Nothing is cut to fit: a count beyond 32 bits is refused, not wrapped.

use proptest::prelude::*;
use prost::Message;
use wire::{DEFAULT_MAX_PATHS, Encoding, decode, projection_params};
use wire::{GenerateProjectionRequest, ProjectionParameters};

fn parameters() -> impl Strategy<Value = ProjectionParameters> {
    (
        "[A-Za-z0-9_ -]{0,70}",
        prop_oneof![0u64..60, Just((1 << 32) + 10), any::<u64>()],
        prop_oneof![
            Just("balanced".to_string()),
            Just("aggressive".to_string()),
            "[a-z]{0,12}"
        ],
        proptest::option::of(prop_oneof![
            0u64..300_000,
            Just((1 << 32) + 100),
            any::<u64>()
        ]),
        proptest::option::of(-1e4f64..1e6),
        proptest::option::of(-0.5f64..0.5),
        proptest::option::of(-0.5f64..0.5),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |(customer_id, horizon, risk, paths, contribution, fee, inflation, glide, seed)| {
                ProjectionParameters {
                    customer_id,
                    time_horizon_years: horizon,
                    risk_profile: risk,
                    paths,
                    monthly_contribution: contribution,
                    annual_fee: fee,
                    inflation,
                    glide_path: glide,
                    rebalance: glide.map(|glide| !glide),
                    seed,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn both_codecs_decode_the_same_request_and_the_rules_judge_it_alike(parameters in parameters()) {
        let request = GenerateProjectionRequest { job_id: "j".into(), parameters: Some(parameters) };
        let json = serde_json::to_vec(&request).unwrap();
        let from_json: GenerateProjectionRequest = decode(Encoding::Json, &json).unwrap();
        let from_protobuf: GenerateProjectionRequest =
            decode(Encoding::Protobuf, &request.encode_to_vec()).unwrap();
        prop_assert_eq!(&from_json, &request);
        prop_assert_eq!(&from_protobuf, &request);
        let judged_json = projection_params(from_json.parameters.as_ref().unwrap(), DEFAULT_MAX_PATHS);
        let judged_protobuf = projection_params(from_protobuf.parameters.as_ref().unwrap(), DEFAULT_MAX_PATHS);
        prop_assert_eq!(judged_json.is_ok(), judged_protobuf.is_ok());
        prop_assert_eq!(judged_json.err(), judged_protobuf.err());
    }

    #[test]
    fn no_byte_string_makes_a_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            if let Ok(request) = decode::<GenerateProjectionRequest>(encoding, &bytes)
                && let Some(parameters) = &request.parameters
            {
                let _ = projection_params(parameters, DEFAULT_MAX_PATHS);
            }
        }
    }
}

#[test]
fn counts_beyond_32_bits_are_refused_not_wrapped() {
    let valid = ProjectionParameters {
        customer_id: "C-000042".into(),
        time_horizon_years: 30,
        risk_profile: "balanced".into(),
        ..Default::default()
    };
    let cases = [
        (
            ProjectionParameters {
                time_horizon_years: (1 << 32) + 10,
                ..valid.clone()
            },
            "parameters.time_horizon_years",
        ),
        (
            ProjectionParameters {
                paths: Some((1 << 32) + 100),
                ..valid.clone()
            },
            "parameters.paths",
        ),
    ];
    for (parameters, field) in cases {
        let bytes = parameters.encode_to_vec();
        let decoded: ProjectionParameters = decode(Encoding::Protobuf, &bytes).unwrap();
        let error = projection_params(&decoded, DEFAULT_MAX_PATHS).unwrap_err();
        assert_eq!(error.field, field);
        assert!(error.rule.contains("got 42949673"), "{}", error.rule);
    }
}
